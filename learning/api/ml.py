"""The seed's model endpoints under /ml/, and model versions under /api/v1/."""
from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from learning.api.serializers import (
    FeaturesInputSerializer,
    HybridPredictionOutputSerializer,
    TrainingExampleInputSerializer,
    one_or_many,
)
from learning.models import ModelVersion
from learning.selectors import hybrid_status, online_stats
from learning.services.examples import ExampleInput, training_examples_add
from learning.services.online import online_update
from learning.services.prediction import hybrid_predict
from learning.services.versions import model_version_activate, model_version_rollback
from learning.tasks import online_update_task


class AddTrainingDataApi(APIView):
    """Labelled feature vectors (one or a list) for the next online update; they never enter the aggregates."""

    @extend_schema(request=TrainingExampleInputSerializer, responses={201: dict})
    def post(self, request):
        items, _ = one_or_many(TrainingExampleInputSerializer, request.data, limit=settings.LEARNING_MAX_EXAMPLES_PER_REQUEST)
        added = training_examples_add(examples=[ExampleInput(**item) for item in items])
        return Response({"added": added}, status=status.HTTP_201_CREATED)


class OnlineUpdateApi(APIView):
    """Run the online update over records not yet learned: queued when a broker is configured."""

    @extend_schema(request=None, responses={200: dict, 202: dict})
    def post(self, request):
        if settings.CELERY_BROKER_URL:
            task = online_update_task.delay()
            return Response({"queued": True, "task_id": task.id}, status=status.HTTP_202_ACCEPTED)
        return Response({"queued": False, **asdict(online_update())})


class OnlineStatsApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(online_stats())


class HybridPredictApi(APIView):
    """Features (exactly the model's schema) → probability, per-model probabilities, confidence, versions."""

    # Built once: a serializer deep-copies its fields whenever it is made, which cost more than rendering.
    output = HybridPredictionOutputSerializer()

    @extend_schema(request=FeaturesInputSerializer, responses=HybridPredictionOutputSerializer)
    def post(self, request):
        serializer = FeaturesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            prediction = hybrid_predict(features=serializer.validated_data["features"])
        except DjangoValidationError as error:
            raise ValidationError({"features": error.message_dict}) from None
        return Response(self.output.to_representation(asdict(prediction)))


class HybridStatusApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(hybrid_status())


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = (
            "id", "kind", "version", "sha256", "sklearn_version", "feature_schema", "samples_seen", "metrics",
            "validation_window", "trained_through_record_id", "trained_through_exit_time", "active", "created_at",
        )  # fmt: skip


class ModelVersionListApi(generics.ListAPIView):
    queryset = ModelVersion.objects.order_by("-id")
    serializer_class = ModelVersionOutputSerializer
    filterset_fields = ("kind", "active")


class ModelVersionDetailApi(generics.RetrieveAPIView):
    queryset = ModelVersion.objects.all()
    serializer_class = ModelVersionOutputSerializer


class ModelVersionActivateApi(APIView):
    # Changing which model trades is an operator's decision, not any API user's.
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses=ModelVersionOutputSerializer)
    def post(self, request, pk: int):
        generics.get_object_or_404(ModelVersion, pk=pk)
        return Response(ModelVersionOutputSerializer(model_version_activate(version_id=pk)).data)


class RollbackInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ModelVersion._meta.get_field("kind").choices)


class ModelVersionRollbackApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=RollbackInputSerializer, responses=ModelVersionOutputSerializer)
    def post(self, request):
        serializer = RollbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(ModelVersionOutputSerializer(model_version_rollback(kind=serializer.validated_data["kind"])).data)
