"""The API's one filter backend: django-filter's, refusing query parameters that no filter reads.

An unknown parameter was ignored before (`candles?start=2023-06-01` returned 2022's candles as if
unfiltered); now it is a 400 that names the parameters the endpoint knows.
"""
from django.conf import settings
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError


class StrictDjangoFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        known = self.known_parameters(request, queryset, view)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            message = f"Unknown query parameter; this endpoint reads {', '.join(sorted(known))}."
            raise ValidationError({name: [message] for name in unknown})
        return super().filter_queryset(request, queryset, view)

    def known_parameters(self, request, queryset, view) -> set[str]:
        """The filters' parameters (a range filter's `_after`/`_before` or `_min`/`_max`), paging's and `format`."""
        known = {settings.REST_FRAMEWORK.get("URL_FORMAT_OVERRIDE", "format")}
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            for name, filter_ in filterset_class.base_filters.items():
                suffixes = getattr(filter_.extra.get("widget", filter_.field_class.widget), "suffixes", None)
                if suffixes:
                    known.update(f"{name}_{suffix}" if suffix else name for suffix in suffixes)
                else:
                    known.add(name)
        paginator = getattr(view, "paginator", None)
        for attribute in ("page_query_param", "page_size_query_param", "cursor_query_param", "limit_query_param", "offset_query_param"):
            if value := getattr(paginator, attribute, None):
                known.add(value)
        return known
