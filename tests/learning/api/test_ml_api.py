"""The seed's /ml/ endpoints and the model-version API: good input answered, bad input a 4xx naming the field."""
from datetime import UTC, datetime

import pytest
import redis
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from learning.ml.schema import feature_range
from learning.models import ModelVersion, TrainingExample
from learning.services.online import online_update
from learning.services.retrain import batch_retrain
from tests.learning.learnable import fresh_model_state, learnable_features, store_learnable  # noqa: F401
from tradelearn.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    user = get_user_model().objects.create_user("quant", password="x")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.fixture
def features() -> dict[str, float]:
    """A synthetic vector brought into each feature's valid range (the API refuses impossible values)."""
    row = learnable_features(1, seed=5)[0][0]
    return {name: min(max(value, feature_range(name)[0]), feature_range(name)[1]) for name, value in row.items()}


def fields_of(response) -> str:
    body = response.json()
    assert set(body) == {"message", "extra"}, body
    return str(body["extra"]["fields"])


def test_add_training_data_one_or_a_list(client, features):
    one = client.post("/ml/online/add_training_data", {"features": features, "target": True, "symbol": "BTCUSDT"}, format="json")
    assert one.status_code == 201 and one.json() == {"added": 1}
    many = [{"features": features, "target": index % 2 == 0, "symbol": "ETHUSDT"} for index in range(5)]
    assert client.post("/ml/online/add_training_data", many, format="json").json() == {"added": 5}
    assert TrainingExample.objects.count() == 6


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body: body["features"].update(rsi_14="NaN"), "rsi_14"),
        (lambda body: body["features"].update(rsi_14="Infinity"), "rsi_14"),
        (lambda body: body["features"].pop("atr_pct"), "atr_pct"),
        (lambda body: body["features"].update(moon_phase=0.5), "moon_phase"),
        (lambda body: body["features"].update(roc_1="fast"), "roc_1"),
        (lambda body: body.update(target="perhaps"), "target"),
        (lambda body: body.pop("symbol"), "symbol"),
    ],
)
def test_add_training_data_rejects_bad_examples_naming_the_field(client, features, change, field):
    body = {"features": dict(features), "target": True, "symbol": "BTCUSDT"}
    change(body)
    response = client.post("/ml/online/add_training_data", body, format="json")
    assert response.status_code == 400 and field in fields_of(response)
    assert TrainingExample.objects.count() == 0


def test_oversized_batches_and_anonymous_writes_are_refused(client, features, settings):
    settings.LEARNING_MAX_EXAMPLES_PER_REQUEST = 3
    body = [{"features": features, "target": True, "symbol": "BTCUSDT"}] * 4
    assert client.post("/ml/online/add_training_data", body, format="json").status_code == 400
    anonymous = APIClient().post("/ml/online/add_training_data", body[:1], format="json")
    assert anonymous.status_code == 401
    assert APIClient().post("/ml/hybrid/predict", {"features": features}, format="json").status_code == 401
    assert APIClient().post("/ml/online/update").status_code == 401
    assert TrainingExample.objects.count() == 0


def test_online_update_runs_in_process_without_a_broker_and_stats_follow(client):
    store_learnable(120)
    response = client.post("/ml/online/update")
    assert response.status_code == 200
    assert response.json()["queued"] is False and response.json()["learned"] == 120
    stats = client.get("/ml/online/stats").json()
    assert stats["models"]["sgd"]["samples_seen"] == 120 and stats["version"] == response.json()["version"]


def test_online_update_is_queued_on_the_broker_when_one_is_configured(client, settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    previous = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = redis_url, False
    # An eager task run earlier in the session made pools for no broker: this one must make its own.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    queue = redis.Redis.from_url(redis_url)
    queue.delete("celery")
    try:
        response = client.post("/ml/online/update")
        assert response.status_code == 202 and response.json()["queued"] is True and response.json()["task_id"]
        assert queue.llen("celery") == 1
    finally:
        queue.delete("celery")
        celery_app.conf.broker_url, celery_app.conf.task_always_eager = previous
        # Forget the pools made for this broker (closing them would poison kombu's shared
        # producer registry), so later tasks connect to their own broker.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


def test_hybrid_predict_and_status(client, features):
    store_learnable(300)
    batch_retrain()
    online_update()
    response = client.post("/ml/hybrid/predict", {"features": features}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert 0.0 <= body["probability"] <= 1.0 and set(body["model_probabilities"]) >= {"batch"}
    assert body["versions"]["batch"] == ModelVersion.objects.get(kind="batch", active=True).version
    status = client.get("/ml/hybrid/status").json()
    assert status["health"]["database"]["status"] == "ok"
    assert status["active_versions"]["batch"]["version"] == body["versions"]["batch"]
    assert status["records"]["training_records"] == 300


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda f: f.update(rsi_14="nan"), "rsi_14"),
        (lambda f: f.pop("cci_20"), "cci_20"),
        (lambda f: f.update(extra_feature=1.0), "extra_feature"),
        (lambda f: f.update(side="long"), "side"),
    ],
)
def test_hybrid_predict_rejects_bad_features_naming_them(client, features, change, field):
    body = dict(features)
    change(body)
    response = client.post("/ml/hybrid/predict", {"features": body}, format="json")
    assert response.status_code == 400 and field in fields_of(response)


IMPOSSIBLE = [
    ("rsi_14", 1e308, "outside its valid range [0, 100]"),
    ("rsi_14", -3.0, "outside its valid range [0, 100]"),
    ("side", 7.0, "not one of -1, 1"),
    ("side", 0.5, "not one of -1, 1"),
    ("is_profit_scraping", 2.0, "not one of 0, 1"),
    ("roc_1", -1.5, "outside its valid range [-1, 10]"),
    ("volume_ratio", 1e9, "outside its valid range [0, 24]"),
    ("stoch_k", "42", "Must be a number, not a string."),
]


@pytest.mark.parametrize(("name", "value", "message"), IMPOSSIBLE)
@pytest.mark.parametrize("path", ["/ml/hybrid/predict", "/ml/online/add_training_data"])
def test_impossible_feature_values_are_a_400_naming_the_feature(client, features, path, name, value, message):
    """Before any model is asked: RSI 1e308 answered probability 0.0, side 7.0 and "42" were taken."""
    body = {"features": {**features, name: value}, "target": True, "symbol": "BTCUSDT"}
    response = client.post(path, body, format="json")
    assert response.status_code == 400, response.json()
    errors = response.json()["extra"]["fields"]["features"]
    assert list(errors) == [name] and message in errors[name][0]
    assert not TrainingExample.objects.exists()


def test_every_feature_of_the_schema_has_a_documented_range():
    from learning.ml.schema import FEATURE_SCHEMA_V1, FEATURE_SCHEMA_V2

    for name in FEATURE_SCHEMA_V1.names + FEATURE_SCHEMA_V2.names:
        low, high = feature_range(name)
        assert low < high, name


def test_model_versions_list_activate_and_roll_back(client):
    store_learnable(300, seed=1)
    champion = batch_retrain().version
    store_learnable(300, seed=2, start=datetime(2025, 1, 1, tzinfo=UTC))
    challenger = batch_retrain().version
    listed = client.get("/api/v1/model-versions/", {"kind": "batch"}).json()["results"]
    assert {row["version"] for row in listed} == {champion, challenger}
    assert "artifact" not in listed[0]
    other = ModelVersion.objects.get(version=challenger)
    assert client.post(f"/api/v1/model-versions/{other.pk}/activate/").status_code == 403  # not staff
    get_user_model().objects.filter(username="quant").update(is_staff=True)
    activated = client.post(f"/api/v1/model-versions/{other.pk}/activate/")
    assert activated.status_code == 200 and activated.json()["active"] is True
    assert ModelVersion.objects.get(kind="batch", active=True).version == challenger
    rolled = client.post("/api/v1/model-versions/rollback/", {"kind": "batch"}, format="json")
    assert rolled.status_code == 200 and rolled.json()["version"] == champion
    assert ModelVersion.objects.get(kind="batch", active=True).version == champion
    nothing_left = client.post("/api/v1/model-versions/rollback/", {"kind": "batch"}, format="json")
    assert nothing_left.status_code == 400 and "kind" in fields_of(nothing_left)
    assert client.post("/api/v1/model-versions/rollback/", {"kind": "nonsense"}, format="json").status_code == 400
    assert client.post("/api/v1/model-versions/999999/activate/").status_code == 404
    assert APIClient().post(f"/api/v1/model-versions/{other.pk}/activate/").status_code == 401
