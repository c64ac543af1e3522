"""OpenAPI generation: every operation documents the API's one error shape."""
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    extra = serializers.DictField(help_text='Details; validation errors put field messages under "fields".')


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {"401": "Not authenticated", "403": "Not allowed", "429": "Throttled"}
        if self.method in ("POST", "PUT", "PATCH"):
            errors["400"] = "Invalid input, with a message per field"
        if "{" in self.path:
            errors["404"] = "Not found"
        for status, description in errors.items():
            if status not in responses:
                responses[status] = {
                    "content": {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}},
                    "description": description,
                }
        return responses
