"""Pre-trade checks: the one list of rules that submit and modify both run, and the prices an order is judged at."""

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import NamedTuple

from domain.market import Quote
from domain.money import money_text
from domain.trading import (
    MAX_NOTE_LENGTH,
    Commission,
    MarketState,
    Order,
    OrderRequest,
    OrderType,
    PortfolioLedger,
    RejectReason,
    Side,
    TimeInForce,
    TradingTerms,
)

__all__ = [
    "Rejection",
    "CheckContext",
    "Check",
    "OrderRules",
    "judged_price",
    "first_rejection",
    "note_problem",
    "LIMIT_TYPES",
    "STOP_TYPES",
]

LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)
STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT)
_AT_ONCE = (TimeInForce.IOC, TimeInForce.FOK)


class Rejection(NamedTuple):
    """Why an order is refused: a submit records both (ORDER_REJECTED), a modify raises BadRequest(message)."""

    reason: RejectReason
    message: str


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a pre-trade check judges: an order as proposed, against its portfolio's ledger, quote and market.

    For a submit `request` is the order as sent and `replacing` is None. For a modify `request` is the open order
    `replacing` as it would become (new total quantity and prices, everything else unchanged), `quote` is None when
    its symbol has no quote now, and `replaced_reserve_price` is the per-share price the order reserves at (a buy).
    Checks run in order and the first rejection wins, so a check may rely on every check before it having passed.
    """

    ledger: PortfolioLedger
    request: OrderRequest
    quote: Quote | None
    market_state: MarketState
    replacing: Order | None = None
    replaced_reserve_price: int = 0

    @property
    def remaining_quantity(self) -> int:
        """What is left to trade: the quantity, less what the order being replaced has already filled."""
        return self.request.quantity - (0 if self.replacing is None else self.replacing.filled_quantity)


Check = Callable[[CheckContext], "Rejection | tuple[RejectReason | str, str] | None"]
"""A pre-trade rule: a Rejection (or any (reason, message) pair) refuses the order, None passes it on."""


def first_rejection(checks: Iterable[Check], context: CheckContext) -> Rejection | None:
    """Run `checks` in order; the first rejection, or None when every check passes the order."""
    for check in checks:
        verdict = check(context)
        if verdict is not None:
            reason, message = verdict
            return Rejection(RejectReason(reason), message)
    return None


def judged_price(request: OrderRequest, quote: Quote) -> int:
    """The per-share price an order is judged at: its limit price (LIMIT, STOP_LIMIT), else the ask for a buy
    (for a STOP buy the higher of the ask and the stop) and the bid for a sell."""
    if request.order_type in LIMIT_TYPES and request.limit_price is not None:
        return request.limit_price
    if request.side is Side.BUY:
        if request.order_type is OrderType.STOP and request.stop_price is not None:
            return max(quote.ask, request.stop_price)
        return quote.ask
    return quote.bid


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_NOTE_CONTROLS_ALLOWED = frozenset("\n\r\t")


def note_problem(note: object) -> str | None:
    """What is wrong with an order's journal note: not text, longer than MAX_NOTE_LENGTH characters, or holding a
    control character other than a line break or tab (a teacher reads it as written, in a browser)."""
    if note is None:
        return None
    if not isinstance(note, str):
        return "the note must be text"
    if len(note) > MAX_NOTE_LENGTH:
        return f"the note has {len(note)} characters; at most {MAX_NOTE_LENGTH} are allowed"
    if any(unicodedata.category(c) == "Cc" and c not in _NOTE_CONTROLS_ALLOWED for c in note):
        return "the note must not contain control characters"
    return None


@dataclass(frozen=True, slots=True)
class OrderRules:
    """The engine's own order rules: the limits it holds orders to, what a buy reserves, and the checks of both.

    `checks()` are the engine's entries of the check list, in order: the symbol is known (submit only), the
    quantity and prices are valid, the note is valid (submit only), the market state accepts the order (submit
    only), a sell has the shares (unless shorting is allowed) and a buy the funds for its reservation. Each has its
    submit text (recorded with ORDER_REJECTED) and, where modify checks it too, its modify text.

    `commission` and `allow_short` hold for every portfolio unless `terms_for(portfolio_id)` gives that
    portfolio its own TradingTerms (a contest's); read them through `commission_of` and `allow_short_of`.
    """

    commission: Commission = Commission()
    allow_short: bool = False
    max_quantity: int = 1_000_000
    market_buffer: Decimal = Decimal("0.05")
    price_tick_cents: int = 1
    max_price_cents: int = 100_000_000
    terms_for: Callable[[str], TradingTerms | None] | None = None

    def __post_init__(self):
        if not _whole(self.max_quantity) or self.max_quantity < 1:
            raise ValueError("max_quantity must be a positive integer")
        if not _whole(self.price_tick_cents) or self.price_tick_cents < 1:
            raise ValueError("price_tick_cents must be a positive integer")
        if not _whole(self.max_price_cents) or self.max_price_cents < self.price_tick_cents:
            raise ValueError("max_price_cents must be an integer of at least one tick")
        market_buffer = Decimal(self.market_buffer)
        if not market_buffer.is_finite() or market_buffer < 0:
            raise ValueError("market_buffer must be a non-negative Decimal")
        object.__setattr__(self, "market_buffer", market_buffer)
        object.__setattr__(self, "allow_short", bool(self.allow_short))

    def checks(self) -> tuple[Check, ...]:
        return (self.known_symbol, self.valid_quantity, self.valid_prices, self.valid_note, self.market_accepts,
                self.enough_shares, self.enough_funds)

    # ----- per-portfolio terms -----------------------------------------------------------------------------

    def commission_of(self, portfolio_id: str) -> Commission:
        """The commission `portfolio_id` pays: its own terms', else the engine's."""
        terms = None if self.terms_for is None else self.terms_for(portfolio_id)
        return self.commission if terms is None else terms.commission

    def allow_short_of(self, portfolio_id: str) -> bool:
        """Whether `portfolio_id` may sell shares it does not hold: its own terms say, else the engine's setting."""
        terms = None if self.terms_for is None else self.terms_for(portfolio_id)
        return self.allow_short if terms is None else terms.allow_short

    # ----- the checks --------------------------------------------------------------------------------------

    def known_symbol(self, check: CheckContext) -> Rejection | None:
        if check.quote is None and check.replacing is None:
            return Rejection(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {check.request.symbol!r}")
        return None

    def valid_quantity(self, check: CheckContext) -> Rejection | None:
        filled = 0 if check.replacing is None else check.replacing.filled_quantity
        problem = self.quantity_problem(check.request.quantity, filled + 1)
        if problem is None:
            return None
        if filled:
            problem = f"{problem} (more than the {filled} already filled)"
        return Rejection(RejectReason.INVALID_QUANTITY, problem)

    def valid_prices(self, check: CheckContext) -> Rejection | None:
        """Both prices on a submit; on a modify only the ones it changes (the others were judged at submission)."""
        request, replacing = check.request, check.replacing
        order_type = request.order_type
        for name, attr, needed in (("limit price", "limit_price", order_type in LIMIT_TYPES),
                                   ("stop price", "stop_price", order_type in STOP_TYPES)):
            value = getattr(request, attr)
            if replacing is not None and value == getattr(replacing, attr):
                continue
            if value is None:
                problem = f"a {order_type} order needs a {name}" if needed else None
            elif not needed:
                problem = f"a {order_type} order {'takes' if replacing is None else 'has'} no {name}"
            else:
                problem = self.price_problem(name, value)
            if problem:
                return Rejection(RejectReason.INVALID_PRICE, problem)
        return None

    def valid_note(self, check: CheckContext) -> Rejection | None:
        """A note is judged when the order is placed; a modify cannot change it."""
        if check.replacing is not None:
            return None
        problem = note_problem(check.request.note)
        return None if problem is None else Rejection(RejectReason.INVALID_NOTE, problem)

    def market_accepts(self, check: CheckContext) -> Rejection | None:
        """A PAUSED market takes every order but IOC and FOK; a CLOSED one also refuses MARKET (submit only)."""
        if check.replacing is not None:
            return None
        tif = check.request.time_in_force
        if check.market_state is MarketState.PAUSED and tif in _AT_ONCE:
            return Rejection(RejectReason.MARKET_CLOSED,
                             f"the market is paused: {tif} orders cannot rest until it resumes")
        if check.market_state is MarketState.CLOSED and (check.request.order_type is OrderType.MARKET
                                                          or tif in _AT_ONCE):
            return Rejection(RejectReason.MARKET_CLOSED, "the market is closed: MARKET, IOC and FOK orders cannot rest")
        return None

    def enough_shares(self, check: CheckContext) -> Rejection | None:
        """A sell needs unreserved shares for what it has left to sell (a modify counts the shares it holds)."""
        request, replacing = check.request, check.replacing
        if request.side is not Side.SELL or self.allow_short_of(check.ledger.portfolio_id):
            return None
        held = check.ledger.positions.get(request.symbol)
        available = 0 if held is None else held.quantity - held.reserved_quantity
        if replacing is not None:
            available += replacing.remaining_quantity
        if check.remaining_quantity <= available:
            return None
        if replacing is not None:
            return Rejection(RejectReason.INSUFFICIENT_SHARES, "insufficient shares for the modified order")
        return Rejection(RejectReason.INSUFFICIENT_SHARES,
                         f"only {max(available, 0)} {request.symbol} shares are available to sell")

    def enough_funds(self, check: CheckContext) -> Rejection | None:
        """A buy needs buying power for its reservation (a modify counts the cash it holds)."""
        if check.request.side is not Side.BUY:
            return None
        replacing, buying_power = check.replacing, check.ledger.buying_power_cents
        any_fill_yet = replacing is not None and replacing.filled_quantity > 0
        needed = self.buy_reservation(check.ledger.portfolio_id, self.reserve_price(check), check.remaining_quantity,
                                      any_fill_yet)
        if replacing is not None:
            if needed > buying_power + replacing.reserved_cash_cents:
                return Rejection(RejectReason.INSUFFICIENT_FUNDS, "insufficient funds for the modified order")
            return None
        if needed > buying_power:
            return Rejection(RejectReason.INSUFFICIENT_FUNDS, f"the order needs {money_text(needed)} including "
                             f"commission; buying power is {money_text(buying_power)}")
        return None

    # ----- the limits and the reservation ------------------------------------------------------------------

    def quantity_problem(self, quantity: object, minimum: int) -> str | None:
        if not _whole(quantity) or not minimum <= quantity <= self.max_quantity:
            return f"quantity must be a whole number from {minimum} to {self.max_quantity}"
        return None

    def price_problem(self, name: str, cents: object) -> str | None:
        """What is wrong with a price called `name` (not a positive whole number of ticks up to the maximum)."""
        if not _whole(cents) or cents <= 0:
            return f"{name} must be positive"
        if cents > self.max_price_cents:
            return f"{name} must be at most {money_text(self.max_price_cents)}"
        if cents % self.price_tick_cents:
            return f"{name} must be a multiple of {money_text(self.price_tick_cents)}"
        return None

    def buffered(self, cents: int) -> int:
        """`cents` plus the market buffer, rounded up to a cent."""
        return int((Decimal(cents) * (1 + self.market_buffer)).to_integral_value(rounding=ROUND_CEILING))

    def reserve_price(self, check: CheckContext) -> int:
        """The per-share price a buy reserves at: its judged price, plus the market buffer (at least a cent in all)
        for a MARKET or STOP buy, whose fill price is unknown; a modify with no quote keeps the price it has."""
        request, quote = check.request, check.quote
        if request.order_type in LIMIT_TYPES:
            return request.limit_price
        if quote is None:
            return check.replaced_reserve_price
        return max(1, self.buffered(judged_price(request, quote)))

    def buy_reservation(self, portfolio_id: str, reserve_price: int, remaining: int, any_fill_yet: bool) -> int:
        """What a buy holds for the `remaining` shares it may still buy: their price and their worst-case commission
        (at the commission `portfolio_id` pays)."""
        if remaining <= 0:
            return 0
        return remaining * reserve_price + self.commission_of(portfolio_id).worst_case(remaining, any_fill_yet)
