"""Matching: how many shares of an order can fill against a quote now, at what price, within the displayed size."""

from collections.abc import Callable

from domain.market import Quote
from domain.trading import Commission, Order, OrderType, PortfolioLedger, Side

from .checks import LIMIT_TYPES, STOP_TYPES

__all__ = ["Matcher"]


class Matcher:
    """Owns the displayed size each quote has left: a quote's size (one symbol, one `version`) is shared by every
    order matched against it, in the order they are matched; a newer version of the quote brings a fresh size.

    A buy is marketable when it is a MARKET order (or a triggered STOP) or the ask is at or below its limit, and
    fills at the ask; a sell likewise at the bid. A buy takes only what its buying power plus its own reservation
    can pay for while still reserving, at its reserve price, for what it leaves, at the commission
    `commission_of(portfolio_id)` says its portfolio pays.
    """

    def __init__(self, commission_of: Callable[[str], Commission]):
        self.commission_of = commission_of
        self._taken: dict[str, list[int]] = {}  # symbol -> [quote version, ask shares taken, bid shares taken]

    def displayed(self, quote: Quote, buy: bool) -> int:
        """The shares the quote still shows on the side a buy (the ask) or a sell (the bid) takes from."""
        taken = self._taken.get(quote.symbol)
        size = quote.ask_size if buy else quote.bid_size
        if taken is not None and taken[0] == quote.version:
            size -= taken[1 if buy else 2]
        return size

    def take(self, quote: Quote, buy: bool, shares: int) -> None:
        taken = self._taken.get(quote.symbol)
        if taken is None or taken[0] != quote.version:
            taken = self._taken[quote.symbol] = [quote.version, 0, 0]
        taken[1 if buy else 2] += shares

    def trigger(self, order: Order, quote: Quote) -> bool:
        """Mark a STOP or STOP_LIMIT order triggered once the price trades through its stop; whether it did now."""
        if order.order_type not in STOP_TYPES or order.stop_triggered:
            return False
        if quote.price >= order.stop_price if order.side is Side.BUY else quote.price <= order.stop_price:
            order.stop_triggered = True
        return order.stop_triggered

    def resting(self, order: Order, quote: Quote) -> bool:
        """A plain LIMIT order the quote does not reach: matching it would change nothing (a cheap first test,
        because a tick meets every open order and most of them rest)."""
        if order.order_type is not OrderType.LIMIT:
            return False
        price = quote.ask if order.side is Side.BUY else quote.bid
        return price <= 0 or (price > order.limit_price if order.side is Side.BUY else price < order.limit_price)

    def fillable(
        self, ledger: PortfolioLedger, order: Order, quote: Quote, reserve_price: int | None
    ) -> tuple[int, int, bool]:
        """(shares that can fill now, at what price, whether funds alone stopped a marketable buy).

        `reserve_price` is the per-share price a buy reserves at (None for a sell).
        """
        buy = order.side is Side.BUY
        price = quote.ask if buy else quote.bid
        if price <= 0 or (order.order_type in STOP_TYPES and not order.stop_triggered):
            return 0, price, False
        if order.order_type in LIMIT_TYPES and (price > order.limit_price if buy else price < order.limit_price):
            return 0, price, False
        shares = min(order.remaining_quantity, self.displayed(quote, buy))
        if shares <= 0:
            return 0, price, False
        if buy:
            shares = self._affordable(ledger, order, price, shares, reserve_price)
            # At or below the reserve price only per-share commission rounding (a cent) can stand in the way of
            # a partial fill, and the whole remaining quantity always fits: such an order waits, it is not cancelled.
            return shares, price, shares == 0 and price > reserve_price
        return shares, price, False

    def _affordable(self, ledger: PortfolioLedger, order: Order, price: int, most: int, reserve_price: int) -> int:
        """The most shares, up to `most`, a buy can take at `price` and still reserve for what it leaves."""
        budget = ledger.buying_power_cents + order.reserved_cash_cents
        first = order.filled_quantity == 0
        remaining = order.remaining_quantity
        commission = self.commission_of(ledger.portfolio_id)

        def cost(shares: int) -> int:
            left = remaining - shares
            keep = left * reserve_price + commission.worst_case(left, True) if left else 0
            return shares * price + commission.for_fill(shares, first) + keep

        if cost(most) <= budget:
            return most
        best, low, high = 0, 1, most - 1
        while low <= high:  # cost grows with shares when the price is above the reserve price
            middle = (low + high) // 2
            if cost(middle) <= budget:
                best, low = middle, middle + 1
            else:
                high = middle - 1
        return best
