"""The wire format at the edge: domain values mapped to the protocol's JSON objects (PROTOCOL.md).

Domain engines return dataclasses with snake_case attributes, money in integer cents and times in
epoch milliseconds; nothing below `realtime` knows a camelCase name. One module here per endpoint
family (market, orders, portfolio, risk, signals) builds each protocol object from them, field by
field, so this package is the one place to read what goes on the wire. The helpers below are the
conversions every family shares.
"""

import math
from decimal import ROUND_HALF_EVEN, Decimal

from realtime.protocol import iso_ms

__all__ = ["money", "ratio", "iso_ms"]

_CENT = Decimal("0.01")


def money(cents: int | Decimal | None) -> float | None:
    """Integer cents (or an exact Decimal of cents) as a JSON number of currency units, rounded half-even to cents.

    >>> money(12345), money(Decimal("1000.5")), money(None)
    (123.45, 10.0, None)
    """
    if cents is None:
        return None
    return float((Decimal(cents) / 100).quantize(_CENT, rounding=ROUND_HALF_EVEN))


def ratio(value: float | None, places: int = 4) -> float | None:
    """A ratio for the wire: rounded to `places` decimals, None instead of NaN or infinity, never -0.0."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), places) + 0.0
