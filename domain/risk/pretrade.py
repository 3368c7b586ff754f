"""The pre-trade risk check: an order that would break the order value or position weight limit is rejected."""

from collections.abc import Callable, Mapping
from fractions import Fraction

from domain.market import Quote
from domain.money import money_text
from domain.orders import Check, CheckContext, judged_price
from domain.risk.limits import RiskLimits
from domain.risk.limits import percent_text as _percent_text
from domain.trading import RejectReason, Side
from domain.valuation import value_cents

__all__ = ["pre_trade_check"]


def pre_trade_check(
    limits_for: Callable[[str], RiskLimits], quotes: Callable[[], Mapping[str, Quote]]
) -> Check:
    """An OrderEngine extra check rejecting RISK_LIMIT on maxOrderValue and maxPositionWeight.

    `limits_for(portfolio_id)` gives the portfolio's limits, `quotes()` the latest quotes (for the total value;
    the order's own quote is used for its symbol). Order value = remaining quantity × judged_price (nothing to
    value without a quote: a modify while its symbol has none passes). Rejected when:
    - the order value exceeds maxOrderValue: "order value 30,000.00 exceeds maxOrderValue 25,000.00 by 5,000.00";
    - the order grows the position's size (a buy, or a sell deeper into a short) and |position value at the
      quote's price ± order value| / total value (cash included; unchanged by a trade at value) exceeds
      maxPositionWeight: "position ACME would be 31.25% of value, over maxPositionWeight 25.00% by 6.25%".
    Other open orders are not counted; the periodic limit evaluation sees what they add once they fill.
    """

    def check(context: CheckContext) -> tuple[RejectReason, str] | None:
        ledger, request, quote = context.ledger, context.request, context.quote
        if quote is None:
            return None
        limits = limits_for(ledger.portfolio_id)
        order_value = context.remaining_quantity * judged_price(request, quote)
        cap = limits.max_order_value
        if cap is not None and order_value > cap:
            return RejectReason.RISK_LIMIT, (
                f"order value {money_text(order_value)} exceeds maxOrderValue {money_text(cap)} "
                f"by {money_text(order_value - cap)}"
            )
        weight_cap = limits.max_position_weight
        if weight_cap is None:
            return None
        held = ledger.positions.get(request.symbol)
        now = (held.quantity if held is not None else 0) * quote.price
        after = now + (order_value if request.side is Side.BUY else -order_value)
        if abs(after) <= abs(now):
            return None
        book = dict(quotes())
        book[request.symbol] = quote
        total = value_cents(ledger, book)
        if total <= 0:
            return None
        weight = Fraction(abs(after), total)
        if weight > Fraction(weight_cap):
            return RejectReason.RISK_LIMIT, (
                f"position {request.symbol} would be {_percent_text(weight)} of value, over maxPositionWeight "
                f"{_percent_text(weight_cap)} by {_percent_text(weight - Fraction(weight_cap))}"
            )
        return None

    return check
