"""Exact money: amounts are integer cents; conversions from decimal text and into human-readable text."""

from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["to_cents", "price_to_cents", "money_text", "div_round_half_even"]


def to_cents(amount: Decimal | int | str) -> int:
    """A money amount in currency units to integer cents, rounding half-even.

    >>> to_cents(Decimal("100000.00"))
    10000000
    """
    cents = (Decimal(amount) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(cents)


def price_to_cents(amount: Decimal | None) -> tuple[int | None, str | None]:
    """A price to integer cents, or an error text when it has fractions of a cent (prices are never rounded).

    >>> price_to_cents(Decimal("101.25")), price_to_cents(Decimal("1.005"))
    ((10125, None), (None, 'price 1.005 is not a whole number of cents'))
    """
    if amount is None:
        return None, None
    cents = amount * 100
    if cents != cents.to_integral_value():
        return None, f"price {amount} is not a whole number of cents"
    return int(cents), None


def money_text(cents: int) -> str:
    """Whole cents (int or integral Decimal) as text for messages, with thousands separators: -123456 -> "-1,234.56"."""
    cents = int(cents)
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def div_round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-even to an integer, in exact integer arithmetic (denominator > 0)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient
