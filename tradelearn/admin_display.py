"""Admin list columns shared by the apps: numbers to their precision, times short, shadow trades hidden until asked for."""
from collections.abc import Callable
from decimal import Decimal

from django.contrib import admin
from django.utils.html import format_html, format_html_join

MISSING = "—"


def plain(value: Decimal | float) -> str:
    """A price or quantity to its own precision, without padding zeros: 2284.2630560000 -> 2,284.263056."""
    if isinstance(value, Decimal):
        text = f"{value.normalize():,f}"
        return text if text not in ("-0", "") else "0"
    return f"{value:,.6g}"


def money(value: Decimal | float) -> str:
    """Quote-currency amounts to the cent: -1234.5678 -> -1,234.57."""
    text = f"{value:,.2f}"
    return text[1:] if text == "-0.00" else text


def percent(fraction: Decimal | float) -> str:
    """A fraction (every *_pct field) as a percentage: -0.01234 -> -1.23%."""
    text = f"{float(fraction):.2%}"
    return text[1:] if text == "-0.00%" else text


def score(value: float) -> str:
    """Probabilities and scores to three decimals: 0.5727182562961404 -> 0.573."""
    text = f"{value:.3f}"
    return text[1:] if text == "-0.000" else text


def minute(value) -> str:
    """A UTC time to the minute, short enough to keep a list one line per row: 2023-12-31 22:00."""
    return f"{value:%Y-%m-%d %H:%M}"


def column(field: str, show: Callable[[object], str], description: str | None = None) -> Callable:
    """A list column showing `field` formatted by `show`, sortable by the field."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def shown(obj):
        value = getattr(obj, field)
        return MISSING if value is None else show(value)

    shown.__name__ = field
    return shown


class RealOrShadowFilter(admin.SimpleListFilter):
    """Real trades unless asked otherwise: shadow trades (skipped signals followed to their would-be
    exit) outnumber the real ones several times and move no balance. One click shows them."""

    title = "real or shadow"
    parameter_name = "trades"

    def lookups(self, request, model_admin):
        return (("shadow", "Shadow trades"), ("all", "Real and shadow"))

    def queryset(self, request, queryset):
        if self.value() == "shadow":
            return queryset.filter(is_shadow=True)
        if self.value() == "all":
            return queryset
        return queryset.filter(is_shadow=False)

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Real trades",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


def metrics_table(metrics: dict | None):
    """Model metrics as an HTML table: one row per learner (or one for a batch model), one column per score."""
    if not metrics:
        return MISSING
    rows = {name: scores for name, scores in metrics.items() if isinstance(scores, dict)}
    flat = {name: value for name, value in metrics.items() if not isinstance(value, dict)}
    if flat:
        rows = {"model": flat, **rows}
    columns = list(dict.fromkeys(name for scores in rows.values() for name in scores))

    def cell(value) -> str:
        if value is None:
            return MISSING
        if isinstance(value, bool) or isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    head = format_html_join("", "<th>{}</th>", ((name.replace("_", " "),) for name in columns))
    body = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        (
            (learner, format_html_join("", '<td style="text-align:right">{}</td>', ((cell(scores.get(name)),) for name in columns)))
            for learner, scores in rows.items()
        ),
    )
    return format_html('<table class="metrics"><thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table>', head, body)
