"""API fields the project needs beyond DRF's own."""
import math

from rest_framework import serializers


class FiniteFloatField(serializers.FloatField):
    """A float that must be finite: DRF's FloatField accepts the strings "nan" and "inf"."""

    default_error_messages = {"non_finite": "Must be a finite number."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("non_finite")
        return value
