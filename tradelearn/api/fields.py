"""API fields the project needs beyond DRF's own."""
import math

from rest_framework import serializers


class FiniteFloatField(serializers.FloatField):
    """A finite JSON number: DRF's FloatField accepts the strings "nan" and "inf", and "42" for 42."""

    default_error_messages = {"non_finite": "Must be a finite number.", "string": "Must be a number, not a string."}

    def to_internal_value(self, data):
        if isinstance(data, str):
            self.fail("string")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("non_finite")
        return value
