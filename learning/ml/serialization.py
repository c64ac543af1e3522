"""Model persistence with skops (never pickle): checksummed, version-pinned, allow-listed types."""

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass

# skops and scikit-learn (~2 s together) are imported when a model is saved or loaded, not when
# a command starts: the services import this module, and every command imports the services.

# Every type a saved online ensemble or batch model contains, and nothing else. skops itself
# trusts any scikit-learn estimator; this list is narrower so an artifact can only hold our models.
DEFAULT_ALLOWED = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.str",
        "builtins.tuple",
        "numpy.float64",
        "numpy.ndarray",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
        "numpy.uint64",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._sgd_fast.Hinge",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.preprocessing._label.LabelEncoder",
    }
)


class ModelArtifactError(ValueError):
    """A stored model that must not be loaded: corrupted, from another scikit-learn, or untrusted."""


@dataclass(frozen=True)
class Artifact:
    """Serialized model bytes with what is needed to load them safely later."""

    blob: bytes
    sha256: str
    sklearn_version: str


def dump_estimator(obj) -> Artifact:
    """Serialize a model state (sklearn estimators, numpy arrays, builtins) with skops."""
    import sklearn
    import skops.io

    blob = skops.io.dumps(obj)
    return Artifact(blob=blob, sha256=hashlib.sha256(blob).hexdigest(), sklearn_version=sklearn.__version__)


def _stored_types(blob: bytes) -> set[str]:
    """Every type named anywhere in the artifact's skops schema, not only those skops distrusts."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        schema = json.loads(archive.read("schema.json"))
    found, pending = set(), [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def load_estimator(
    blob: bytes, *, sha256: str, sklearn_version: str, allowed_types: frozenset[str] = DEFAULT_ALLOWED
):
    """Load a model state, refusing tampered bytes, another scikit-learn version or unknown types."""
    import sklearn
    import skops.io

    actual_sha256 = hashlib.sha256(blob).hexdigest()
    if actual_sha256 != sha256:
        raise ModelArtifactError(f"model artifact checksum mismatch: expected {sha256}, got {actual_sha256}")
    if sklearn_version != sklearn.__version__:
        raise ModelArtifactError(
            f"model artifact was saved with scikit-learn {sklearn_version} but {sklearn.__version__} is "
            "installed; retrain the model or install the matching version"
        )
    try:
        skops_untrusted = skops.io.get_untrusted_types(data=blob)
        stored_types = _stored_types(blob) | set(skops_untrusted)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ModelArtifactError(f"model artifact is not a readable skops file: {error}") from error
    untrusted = sorted(stored_types - allowed_types)
    if untrusted:
        raise ModelArtifactError(f"model artifact contains types that are not allowed: {', '.join(untrusted)}")
    return skops.io.loads(blob, trusted=skops_untrusted)
