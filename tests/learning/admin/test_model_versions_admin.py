"""Admin: model versions listed without their bytes, activated and rolled back through the services."""
import pytest
from django.urls import reverse

from learning.models import ModelVersion, TrainingExample
from learning.services.examples import ExampleInput, training_examples_add
from learning.services.retrain import batch_retrain
from tests.learning.learnable import fresh_model_state, learnable_features, store_learnable  # noqa: F401  (autouse)

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions():
    store_learnable(120)
    batch_retrain()
    batch_retrain()
    return ModelVersion.objects.get(version="batch-0001"), ModelVersion.objects.get(version="batch-0002")


def test_versions_are_listed_and_shown_without_the_artifact(admin_client, versions):
    listing = admin_client.get(reverse("admin:learning_modelversion_changelist"), {"kind": "batch", "active__exact": "1"})
    assert listing.status_code == 200
    assert b"batch-0001" in listing.content and b"batch-0002" not in listing.content and b"KiB" in listing.content
    page = admin_client.get(reverse("admin:learning_modelversion_change", args=[versions[1].pk]))
    assert page.status_code == 200 and b'name="artifact"' not in page.content and versions[1].sha256.encode() in page.content


def test_activate_and_roll_back_actions(admin_client, versions):
    first, second = versions
    url = reverse("admin:learning_modelversion_changelist")
    admin_client.post(url, {"action": "activate", "_selected_action": [second.pk]})
    assert ModelVersion.objects.get(kind="batch", active=True) == second
    response = admin_client.post(url, {"action": "roll_back", "_selected_action": [second.pk]}, follow=True)
    assert ModelVersion.objects.get(kind="batch", active=True) == first
    assert b"Rolled batch back to batch-0001" in response.content
    response = admin_client.post(url, {"action": "activate", "_selected_action": [first.pk, second.pk]}, follow=True)
    assert b"Select exactly one version" in response.content


def test_training_examples_are_listed(admin_client):
    rows, wins = learnable_features(2)
    training_examples_add(examples=[ExampleInput(features=f, target=bool(w), symbol="BTCUSDT") for f, w in zip(rows, wins)])
    listing = admin_client.get(reverse("admin:learning_trainingexample_changelist"), {"learned_at__isempty": "1"})
    assert listing.status_code == 200 and listing.content.count(b"BTCUSDT") >= 2
    assert TrainingExample.objects.count() == 2
