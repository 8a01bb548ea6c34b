"""Human units for the console: dollars, tokens, durations, percentages."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import template
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

register = template.Library()


@register.filter
def usd(value: Any) -> str:
    """$1,234.56; amounts under a dollar keep four decimals ($0.0042), as a finance user expects."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    places = Decimal("0.0001") if Decimal(0) < abs(amount) < Decimal(1) else Decimal("0.01")
    rounded = amount.quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,}"


@register.filter
def tokens(value: Any) -> str:
    """12,345 → 12.3k; 4,200,000 → 4.2M."""
    if value is None:
        return "—"
    n = int(value)
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


@register.filter
def ms(value: Any) -> str:
    """A duration in milliseconds: 340 ms, 1.24 s, 2 min 5 s."""
    if value is None or value == "":
        return "—"
    v = float(value)
    if v < 1000:
        return f"{v:.0f} ms"
    if v < 60_000:
        return f"{v / 1000:.2f} s"
    minutes, seconds = divmod(int(v / 1000), 60)
    return f"{minutes} min {seconds} s"


@register.filter
def percent(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):.0f} %"


@register.filter
def ago(value: datetime | date | None) -> str:
    """'3 minutes ago', 'in 2 days'; 'never' for none; a bare day as 'on Nov 30'."""
    if value is None:
        return "never"
    if not isinstance(value, datetime):
        return f"on {value:%b} {value.day}"
    if value > timezone.now():
        return f"in {timeuntil(value).split(',')[0]}"
    return f"{timesince(value).split(',')[0]} ago"


@register.filter
def get(mapping: dict[Any, Any], key: Any) -> Any:
    return mapping.get(key) if mapping else None
