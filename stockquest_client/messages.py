"""The server's messages as typed values: the envelope, and one dataclass per protocol object (docs/protocol.md).

Pure parsing, no I/O, so every shape check is testable without a server. Frames are read with the standard
`json` module and `parse_float=Decimal`, so money arrives exactly as the server wrote it (the server keeps
integer cents; a float would turn 0.1 + 0.2 into 0.30000000000000004). Ratios and scores become floats.
Every parser raises MalformedMessage naming the field, never KeyError or TypeError, so a reader can skip a
hostile frame and go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import MalformedMessage, ServerError

__all__ = [
    "Envelope", "parse_envelope", "ErrorReply", "Quote", "Bar", "SymbolInfo", "Order", "ExecutionReport",
    "OrderEvent", "OrderResult", "Position", "Portfolio", "Trade", "PositionDetails", "Signal", "ModelPerformance",
    "RiskSnapshot", "RiskAlert", "ORDER_EVENT_TYPES", "OPEN_STATUSES",
]

ORDER_EVENT_TYPES = frozenset({"ORDER_SUBMITTED", "ORDER_REJECTED", "ORDER_MODIFIED", "EXECUTION_REPORT",
                               "ORDER_PARTIALLY_FILLED", "ORDER_FILLED", "ORDER_CANCELLED"})
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
MAX_FRAME_CHARS = 16 * 1024 * 1024  # far above anything the server sends; a bigger frame is hostile


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON the server sends")


# field readers: each names the field it refuses ---------------------------------------------------------

def _get(obj: dict, key: str, optional: bool):
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise MalformedMessage(f"missing field {key!r}")
    return obj[key]


def _str(obj: dict, key: str, optional: bool = False) -> str | None:
    value = _get(obj, key, optional)
    if value is None:
        return None
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)  # ids: "a number is read as its string"
    if not isinstance(value, str):
        raise MalformedMessage(f"{key!r} is not a string: {value!r:.80}")
    return value


def _int(obj: dict, key: str, optional: bool = False) -> int | None:
    value = _get(obj, key, optional)
    if value is None:
        return None
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessage(f"{key!r} is not a whole number: {value!r:.80}")
    return value


def _money(obj: dict, key: str, optional: bool = False) -> Decimal | None:
    value = _get(obj, key, optional)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise MalformedMessage(f"{key!r} is not an amount: {value!r:.80}")
    return Decimal(value)


def _float(obj: dict, key: str, optional: bool = False) -> float | None:
    value = _get(obj, key, optional)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise MalformedMessage(f"{key!r} is not a number: {value!r:.80}")
    return float(value)


def _dict(obj: dict, key: str, optional: bool = False) -> dict | None:
    value = _get(obj, key, optional)
    if value is not None and not isinstance(value, dict):
        raise MalformedMessage(f"{key!r} is not an object")
    return value


def _list(obj: dict, key: str, optional: bool = False) -> list:
    value = _get(obj, key, optional)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedMessage(f"{key!r} is not a list")
    return value


def _objects(obj: dict, key: str, parse, optional: bool = False) -> list:
    items = _list(obj, key, optional)
    if not all(isinstance(item, dict) for item in items):
        raise MalformedMessage(f"{key!r} holds something that is not an object")
    return [parse(item) for item in items]


def _floats(mapping: dict | None) -> dict[str, float | None]:
    """A map of ratios (features, weights, exposures): numbers as floats, anything else dropped."""
    return {str(k): (None if v is None else float(v)) for k, v in (mapping or {}).items()
            if v is None or (isinstance(v, (int, Decimal)) and not isinstance(v, bool))}


# the envelope ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Envelope:
    """One server frame: `type`, its `data`, and `request_id` when it answers a request (pushes have none)."""

    type: str
    data: dict
    request_id: str | None = None
    seq: int | None = None
    id: str | None = None
    timestamp: str | None = None

    def raise_if_error(self) -> Envelope:
        """This envelope, or ServerError if it is an ERROR reply."""
        if self.type == "ERROR":
            raise ErrorReply.from_wire(self.data, self.request_id).exception()
        return self


def parse_envelope(text: str | bytes) -> Envelope:
    """Read one frame; MalformedMessage for anything that is not a JSON object with a string `type`."""
    if not isinstance(text, str):
        raise MalformedMessage("binary frame: the protocol speaks JSON text")
    if len(text) > MAX_FRAME_CHARS:
        raise MalformedMessage(f"frame of {len(text)} characters")
    try:
        message = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise MalformedMessage(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("frame is not a JSON object")
    message_type = message.get("type")
    if not isinstance(message_type, str) or not message_type:
        raise MalformedMessage("frame has no string 'type'")
    data = message.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MalformedMessage(f"{message_type}: 'data' is not an object")
    request_id = message.get("requestId")
    seq = message.get("seq")
    return Envelope(type=message_type.upper(), data=data,
                    request_id=None if request_id is None else str(request_id),
                    seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
                    id=message.get("id") if isinstance(message.get("id"), str) else None,
                    timestamp=message.get("timestamp") if isinstance(message.get("timestamp"), str) else None)


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An ERROR frame's data: the protocol `code`, the server's sentence, and which request it refused."""

    code: str
    error: str
    request_type: str | None
    request_id: str | None
    retry_after: float | None  # seconds, when a RATE_LIMITED reply says how long to wait

    @classmethod
    def from_wire(cls, data: dict, request_id: str | None = None) -> ErrorReply:
        return cls(code=_str(data, "code", True) or "UNKNOWN", error=_str(data, "error", True) or "",
                   request_type=_str(data, "requestType", True), request_id=request_id,
                   retry_after=_float(data, "retryAfter", True))

    def exception(self) -> ServerError:
        return ServerError(self.code, self.error, self.request_type, self.request_id)


# market data --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: Decimal
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int
    volume: int
    market_time: int  # epoch ms on the simulated clock
    name: str | None = None
    sector: str | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    previous_close: Decimal | None = None
    change: Decimal | None = None
    change_percent: float | None = None
    time: int | None = None  # epoch ms on the server's wall clock

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @classmethod
    def from_wire(cls, q: dict) -> Quote:
        return cls(symbol=_str(q, "symbol"), price=_money(q, "price"), bid=_money(q, "bid"), ask=_money(q, "ask"),
                   bid_size=_int(q, "bidSize"), ask_size=_int(q, "askSize"), volume=_int(q, "volume"),
                   market_time=_int(q, "marketTime"), name=_str(q, "name", True), sector=_str(q, "sector", True),
                   open=_money(q, "open", True), high=_money(q, "high", True), low=_money(q, "low", True),
                   previous_close=_money(q, "previousClose", True), change=_money(q, "change", True),
                   change_percent=_float(q, "changePercent", True), time=_int(q, "time", True))


@dataclass(frozen=True, slots=True)
class Bar:
    time: int  # the bar's start, epoch ms on the simulated clock
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    @classmethod
    def from_wire(cls, b: dict) -> Bar:
        return cls(time=_int(b, "time"), open=_money(b, "open"), high=_money(b, "high"), low=_money(b, "low"),
                   close=_money(b, "close"), volume=_int(b, "volume"))


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    name: str
    sector: str

    @classmethod
    def from_wire(cls, s: dict) -> SymbolInfo:
        return cls(symbol=_str(s, "symbol"), name=_str(s, "name"), sector=_str(s, "sector"))


# orders -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    portfolio_id: str
    symbol: str
    side: str
    order_type: str
    quantity: int
    filled_quantity: int
    remaining_quantity: int
    time_in_force: str
    status: str
    client_order_id: str | None = None
    user_id: str | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    average_fill_price: Decimal | None = None
    commission: Decimal | None = None
    reject_reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    note: str | None = None  # the trade journal's "why", as sent with SUBMIT_ORDER
    placed_by: str | None = None  # the team member who placed it for its owner (None: the owner)

    @property
    def is_open(self) -> bool:
        """Still able to fill: NEW or PARTIALLY_FILLED."""
        return self.status in OPEN_STATUSES

    @classmethod
    def from_wire(cls, o: dict) -> Order:
        return cls(order_id=_str(o, "orderId"), portfolio_id=_str(o, "portfolioId"), symbol=_str(o, "symbol"),
                   side=_str(o, "side"), order_type=_str(o, "orderType"), quantity=_int(o, "quantity"),
                   filled_quantity=_int(o, "filledQuantity"), remaining_quantity=_int(o, "remainingQuantity"),
                   time_in_force=_str(o, "timeInForce"), status=_str(o, "status"),
                   client_order_id=_str(o, "clientOrderId", True), user_id=_str(o, "userId", True),
                   limit_price=_money(o, "limitPrice", True), stop_price=_money(o, "stopPrice", True),
                   average_fill_price=_money(o, "averageFillPrice", True), commission=_money(o, "commission", True),
                   reject_reason=_str(o, "rejectReason", True), created_at=_str(o, "createdAt", True),
                   updated_at=_str(o, "updatedAt", True), note=_str(o, "note", True),
                   placed_by=_str(o, "placedBy", True))


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One fill: `fill_quantity` shares at `fill_price`, and the order's totals after it."""

    order_id: str
    execution_id: str
    portfolio_id: str
    symbol: str
    side: str
    fill_quantity: int
    fill_price: Decimal
    cumulative_quantity: int
    leaves_quantity: int
    average_price: Decimal | None
    commission: Decimal
    time: int

    @classmethod
    def from_wire(cls, e: dict) -> ExecutionReport:
        return cls(order_id=_str(e, "orderId"), execution_id=_str(e, "executionId"),
                   portfolio_id=_str(e, "portfolioId"), symbol=_str(e, "symbol"), side=_str(e, "side"),
                   fill_quantity=_int(e, "fillQuantity"), fill_price=_money(e, "fillPrice"),
                   cumulative_quantity=_int(e, "cumulativeQuantity"), leaves_quantity=_int(e, "leavesQuantity"),
                   average_price=_money(e, "averagePrice", True),
                   commission=_money(e, "commission", True) or Decimal(0), time=_int(e, "time"))


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One stored order event, numbered per user by `event_id` (1, 2, 3...): the unit of resume after a reconnect.

    EXECUTION_REPORT carries `execution`; every other type carries the `order` as it stands after the event.
    """

    type: str
    event_id: int
    order: Order | None = None
    execution: ExecutionReport | None = None
    reason: str | None = None
    error: str | None = None

    @property
    def order_id(self) -> str:
        return self.execution.order_id if self.execution else self.order.order_id

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> OrderEvent:
        if envelope.type not in ORDER_EVENT_TYPES:
            raise MalformedMessage(f"{envelope.type} is not an order event")
        data = envelope.data
        event_id = _int(data, "eventId")
        if envelope.type == "EXECUTION_REPORT":
            return cls(type=envelope.type, event_id=event_id, execution=ExecutionReport.from_wire(data))
        return cls(type=envelope.type, event_id=event_id, order=Order.from_wire(_dict(data, "order")),
                   reason=_str(data, "reason", True), error=_str(data, "error", True))


@dataclass(frozen=True, slots=True)
class OrderResult:
    """The answer to SUBMIT_ORDER: placed (ORDER_SUBMITTED) or stored as rejected (ORDER_REJECTED, with why)."""

    accepted: bool
    order: Order
    event_id: int
    reason: str | None = None
    error: str | None = None

    @classmethod
    def from_event(cls, event: OrderEvent) -> OrderResult:
        return cls(accepted=event.type == "ORDER_SUBMITTED", order=event.order, event_id=event.event_id,
                   reason=event.reason, error=event.error)


# portfolio ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: int
    sector: str | None = None
    average_cost: Decimal | None = None
    cost_basis: Decimal | None = None
    market_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None
    weight: float | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None

    @classmethod
    def from_wire(cls, p: dict) -> Position:
        return cls(symbol=_str(p, "symbol"), quantity=_int(p, "quantity"), sector=_str(p, "sector", True),
                   average_cost=_money(p, "averageCost", True), cost_basis=_money(p, "costBasis", True),
                   market_price=_money(p, "marketPrice", True), market_value=_money(p, "marketValue", True),
                   unrealized_pnl=_money(p, "unrealizedPnL", True), realized_pnl=_money(p, "realizedPnL", True),
                   weight=_float(p, "weight", True), stop_loss=_money(p, "stopLoss", True),
                   take_profit=_money(p, "takeProfit", True))


@dataclass(frozen=True, slots=True)
class Portfolio:
    """A portfolio's values; `positions` is None when the message did not carry them (PORTFOLIO_UPDATE, lists)."""

    portfolio_id: str
    cash: Decimal
    reserved_cash: Decimal
    buying_power: Decimal
    positions_value: Decimal
    total_value: Decimal
    name: str | None = None
    owner_id: str | None = None
    realized_pnl: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    total_return: Decimal | None = None
    total_return_percent: float | None = None
    positions: tuple[Position, ...] | None = None

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions or () if p.symbol == symbol), None)

    @classmethod
    def from_wire(cls, p: dict) -> Portfolio:
        positions = None if p.get("positions") is None else tuple(_objects(p, "positions", Position.from_wire))
        return cls(portfolio_id=_str(p, "portfolioId"), cash=_money(p, "cash"), reserved_cash=_money(p, "reservedCash"),
                   buying_power=_money(p, "buyingPower"), positions_value=_money(p, "positionsValue"),
                   total_value=_money(p, "totalValue"), name=_str(p, "name", True), owner_id=_str(p, "ownerId", True),
                   realized_pnl=_money(p, "realizedPnL", True), unrealized_pnl=_money(p, "unrealizedPnL", True),
                   total_return=_money(p, "totalReturn", True),
                   total_return_percent=_float(p, "totalReturnPercent", True), positions=positions)


@dataclass(frozen=True, slots=True)
class Trade:
    """A fill as POSITION_DETAILS lists it."""

    execution_id: str
    order_id: str
    symbol: str
    side: str
    quantity: int
    price: Decimal
    commission: Decimal
    time: int

    @classmethod
    def from_wire(cls, t: dict) -> Trade:
        return cls(execution_id=_str(t, "executionId"), order_id=_str(t, "orderId"), symbol=_str(t, "symbol"),
                   side=_str(t, "side"), quantity=_int(t, "quantity"), price=_money(t, "price"),
                   commission=_money(t, "commission", True) or Decimal(0), time=_int(t, "time"))


@dataclass(frozen=True, slots=True)
class PositionDetails:
    portfolio_id: str
    position: Position
    trades: tuple[Trade, ...]  # newest first

    @classmethod
    def from_wire(cls, d: dict) -> PositionDetails:
        return cls(portfolio_id=_str(d, "portfolioId"), position=Position.from_wire(_dict(d, "position")),
                   trades=tuple(_objects(d, "trades", Trade.from_wire)))


# signals and risk ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Signal:
    """A model's call on a symbol: BUY, SELL or HOLD, with `score` in [-1, 1] (positive: up)."""

    symbol: str
    model: str
    signal: str
    score: float
    confidence: float
    horizon: str | None = None
    generated_at: str | None = None
    features: dict[str, float | None] | None = None

    @classmethod
    def from_wire(cls, s: dict) -> Signal:
        return cls(symbol=_str(s, "symbol"), model=_str(s, "model"), signal=_str(s, "signal"),
                   score=_float(s, "score"), confidence=_float(s, "confidence"), horizon=_str(s, "horizon", True),
                   generated_at=_str(s, "generatedAt", True), features=_floats(_dict(s, "features", True)))


@dataclass(frozen=True, slots=True)
class ModelPerformance:
    model: str
    predictions: int
    hit_rate: float | None
    average_return: float | None

    @classmethod
    def from_wire(cls, m: dict) -> ModelPerformance:
        return cls(model=_str(m, "model"), predictions=_int(m, "predictions"), hit_rate=_float(m, "hitRate", True),
                   average_return=_float(m, "averageReturn", True))


@dataclass(frozen=True, slots=True)
class RiskAlert:
    alert_id: str
    portfolio_id: str
    severity: str
    rule: str
    message: str
    symbol: str | None = None

    @classmethod
    def from_wire(cls, a: dict) -> RiskAlert:
        return cls(alert_id=_str(a, "alertId"), portfolio_id=_str(a, "portfolioId"), severity=_str(a, "severity"),
                   rule=_str(a, "rule"), message=_str(a, "message", True) or "", symbol=_str(a, "symbol", True))


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """RISK_SNAPSHOT: `metrics` and `limits` as the wire names them (amounts Decimal, ratios Decimal too)."""

    portfolio_id: str
    metrics: dict[str, Any]
    limits: dict[str, Any]
    breaches: tuple[dict, ...]
    alerts: tuple[RiskAlert, ...]

    @classmethod
    def from_wire(cls, r: dict) -> RiskSnapshot:
        return cls(portfolio_id=_str(r, "portfolioId"), metrics=_dict(r, "metrics", True) or {},
                   limits=_dict(r, "limits", True) or {}, breaches=tuple(_objects(r, "breaches", dict, True)),
                   alerts=tuple(_objects(r, "alerts", RiskAlert.from_wire, True)))
