"""One error shape for the whole API: {"message": str, "extra": {"fields": {...}}}.

Django's ValidationError (raised by services) becomes a 400 with field messages, exactly as
a serializer's would, and so does a DataError (input the database cannot store); any other DRF
error keeps its status and gains the same shape.
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DataError):
        # A value that passed the filters and serializers but that the database cannot hold (an
        # ISO time with a +17:00 offset or in year 45, a number past its column): bad input, so a
        # 400, not a 500. Found by the API fuzz test (tests/reliability/test_api_fuzz.py).
        exc = exceptions.ValidationError({"non_field_errors": [f"A value is out of the range the database can store: {str(exc).splitlines()[0]}"]})

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"message": "Validation error", "extra": {"fields": fields}}
    else:
        response.data = {"message": str(exc.detail), "extra": {}}
    return response


# Django answers a path no route matches (`/api/v1/trades/-1/` for an `<int:pk>` route), or a
# request it refuses before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE), with its own HTML
# pages; under the API's prefixes these keep the one error shape instead.
API_PREFIXES = ("/api/", "/ml/")


def not_found(request, exception=None):
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"message": str(exceptions.NotFound.default_detail), "extra": {}}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"message": str(exception) if exception else "Bad request.", "extra": {}}, status=400)
    return defaults.bad_request(request, exception)
