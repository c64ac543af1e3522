"""Number formats of the dashboard, one per kind of figure, so a test can format a database value the same way."""
from decimal import Decimal

from django import template

register = template.Library()
MISSING = "—"


def _unsigned_zero(text: str) -> str:
    # A small negative rounded to nothing shows as zero, not "-0.0%": the sign of nothing misleads.
    return text[1:] if text.startswith("-") and not any(digit in "123456789" for digit in text) else text


@register.filter
def rate(value: float | None) -> str:
    """A fraction as a percentage with one decimal: 0.5234 -> 52.3%; -0.0001 -> 0.0%."""
    return MISSING if value is None else _unsigned_zero(f"{value:.1%}")


@register.filter
def money(value: Decimal | float | None) -> str:
    """Quote-currency amounts to the cent, with thousands separators: -1234.5 -> -1,234.50; -0.001 -> 0.00."""
    return MISSING if value is None else _unsigned_zero(f"{value:,.2f}")


@register.filter
def score(value: float | None) -> str:
    """Probabilities, scores and metrics to three decimals."""
    return MISSING if value is None else _unsigned_zero(f"{value:.3f}")
