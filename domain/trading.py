"""The trading vocabulary shared by the order engine, the ledger, storage and the wire: orders, fills, events.

Money is integer cents and quantities are whole shares everywhere in here; conversion to JSON numbers
happens at the edge (`realtime.wire.orders` for orders, fills and events).
"""

import enum
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_EVEN, Decimal
from operator import attrgetter

__all__ = [
    "Side", "MarketState", "OrderType", "TimeInForce", "OrderStatus", "RejectReason", "EventKind", "OPEN_STATUSES",
    "OrderRequest", "Order", "Fill", "TradeEvent", "Commission", "TradingTerms", "Position", "PortfolioLedger",
    "shallow_copier", "IdSequence", "MAX_NOTE_LENGTH",
]

MAX_NOTE_LENGTH = 500  # characters of an order's journal note


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class MarketState(enum.StrEnum):
    """Whether the simulated market trades now: OPEN, PAUSED by a teacher, or CLOSED between exchange sessions."""

    OPEN = "OPEN"
    PAUSED = "PAUSED"
    CLOSED = "CLOSED"


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"


class TimeInForce(enum.StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


class RejectReason(enum.StrEnum):
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    INSUFFICIENT_SHARES = "INSUFFICIENT_SHARES"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    RISK_LIMIT = "RISK_LIMIT"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    MARKET_CLOSED = "MARKET_CLOSED"
    INVALID_NOTE = "INVALID_NOTE"
    NOTE_REQUIRED = "NOTE_REQUIRED"
    CONTEST_NOT_OPEN = "CONTEST_NOT_OPEN"
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"


class EventKind(enum.StrEnum):
    """The order events of PROTOCOL.md: each is stored with a per-user eventId and sent under this type."""

    ORDER_SUBMITTED = "ORDER_SUBMITTED"
    ORDER_REJECTED = "ORDER_REJECTED"
    ORDER_MODIFIED = "ORDER_MODIFIED"
    EXECUTION_REPORT = "EXECUTION_REPORT"
    ORDER_PARTIALLY_FILLED = "ORDER_PARTIALLY_FILLED"
    ORDER_FILLED = "ORDER_FILLED"
    ORDER_CANCELLED = "ORDER_CANCELLED"


@dataclass(frozen=True, slots=True)
class Commission:
    """The commission schedule: a fixed amount per order (charged on its first fill) plus an amount per share."""

    per_order_cents: int = 0
    per_share_cents: Decimal = Decimal(0)

    def for_fill(self, quantity: int, first_fill: bool) -> int:
        """Commission in whole cents for one fill (per-share part rounded half-even)."""
        per_share = (self.per_share_cents * quantity).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return int(per_share) + (self.per_order_cents if first_fill else 0)

    def worst_case(self, quantity: int, any_fill_yet: bool) -> int:
        """The most the remaining `quantity` can still cost in commission: what a buy reserves for it."""
        per_share = (self.per_share_cents * quantity).to_integral_value(rounding="ROUND_CEILING")
        return int(per_share) + (0 if any_fill_yet else self.per_order_cents)


@dataclass(frozen=True, slots=True)
class TradingTerms:
    """What one portfolio pays and may do where portfolios of one engine differ (a class contest's rules): its
    commission and whether it may sell short. The engine's own settings are the terms of every other portfolio."""

    commission: Commission = Commission()
    allow_short: bool = False


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated SUBMIT_ORDER (types checked at the wire; values are the engine's to judge)."""

    portfolio_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    limit_price: int | None = None  # cents
    stop_price: int | None = None   # cents
    time_in_force: TimeInForce = TimeInForce.DAY
    client_order_id: str | None = None
    note: str | None = None         # the trade journal: why, in the student's words (at most MAX_NOTE_LENGTH)


@dataclass(slots=True)
class Order:
    """One order and everything that happened to it; the engine mutates it, snapshots go out in events."""

    order_id: str
    client_order_id: str | None
    portfolio_id: str
    user_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    limit_price: int | None
    stop_price: int | None
    time_in_force: TimeInForce
    status: OrderStatus
    created_at_ms: int
    updated_at_ms: int
    day_index: int                      # the simulated day it was accepted in (DAY orders expire at its end)
    filled_quantity: int = 0
    filled_notional_cents: int = 0      # sum of fill quantity * fill price
    commission_cents: int = 0
    reserved_cash_cents: int = 0        # buys: cash still held for the unfilled part (price + worst commission)
    stop_triggered: bool = False        # STOP / STOP_LIMIT: the stop price has traded
    reject_reason: RejectReason | None = None
    error: str | None = None            # human-readable reason for REJECTED / CANCELLED by the system
    placed_by: str | None = None        # the team member who placed it for the owner `user_id`; None: the owner
    note: str | None = None             # the trade journal note sent with it

    @property
    def placer(self) -> str:
        """Who placed the order: a team member, or the portfolio's owner."""
        return self.user_id if self.placed_by is None else self.placed_by

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity if self.status in OPEN_STATUSES else 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def average_fill_price(self) -> Decimal | None:
        """Average fill price in cents (exact Decimal), None before the first fill."""
        if not self.filled_quantity:
            return None
        return Decimal(self.filled_notional_cents) / self.filled_quantity

    def snapshot(self) -> "Order":
        """An independent copy, for events and storage (the engine keeps mutating the original)."""
        return _copy_order(self)


def shallow_copier(cls):
    """A shallow copy of a dataclass whose fields all go to __init__: ~1 µs where dataclasses.replace takes ~5,
    and the engine copies every order and ledger each request changes."""
    values = attrgetter(*(f.name for f in fields(cls)))
    return lambda obj: cls(*values(obj))


_copy_order = shallow_copier(Order)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: `quantity` shares of an order at `price_cents`, with its commission."""

    execution_id: str
    order_id: str
    portfolio_id: str
    user_id: str
    symbol: str
    side: Side
    quantity: int
    price_cents: int
    commission_cents: int
    time_ms: int          # wall clock
    market_time_ms: int   # simulated clock


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """Something that happened to an order, in the order it happened: stored, numbered per user, then sent.

    `order` is a snapshot taken right after the event; `fill` is set for EXECUTION_REPORT.
    """

    kind: EventKind
    order: Order
    fill: Fill | None = None

    @property
    def user_id(self) -> str:
        return self.order.user_id


@dataclass(slots=True)
class Position:
    """Shares of one symbol in one portfolio: quantity, exact cost basis, realized P&L, protective levels."""

    symbol: str
    quantity: int = 0
    reserved_quantity: int = 0        # shares held by open sell orders
    cost_basis_cents: int = 0         # what the shares still held cost, commissions excluded
    realized_pnl_cents: int = 0       # proceeds minus cost of shares sold, commissions excluded
    stop_loss_cents: int | None = None
    take_profit_cents: int | None = None

    @property
    def average_cost(self) -> Decimal | None:
        """Average cost per share in cents (exact), None when flat."""
        return Decimal(self.cost_basis_cents) / self.quantity if self.quantity else None


@dataclass(slots=True)
class PortfolioLedger:
    """One portfolio's money and shares; changed only by fills, reservations and their releases.

    Identity (checked by the property tests), with commissions kept out of cost basis:
        starting_cash = cash + sum(cost basis of positions) - sum(realized P&L) + commissions paid
    """

    portfolio_id: str
    owner_id: str
    name: str
    starting_cash_cents: int
    cash_cents: int
    reserved_cash_cents: int = 0
    commissions_cents: int = 0
    positions: dict[str, Position] = field(default_factory=dict)

    @property
    def buying_power_cents(self) -> int:
        return self.cash_cents - self.reserved_cash_cents


class IdSequence:
    """Issues opaque ids (`O1001`, `E57`) from a counter that storage seeds past the last stored one."""

    def __init__(self, prefix: str, last: int = 0):
        self.prefix, self.last = prefix, int(last)

    def __call__(self) -> str:
        self.last += 1
        return f"{self.prefix}{self.last}"
