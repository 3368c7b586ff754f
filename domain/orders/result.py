"""What one order-engine call changed: `TradeResult`, and the `Batch` that collects it while the call runs."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.ledger import snapshot_ledger
from domain.trading import EventKind, Fill, Order, PortfolioLedger, TradeEvent

from .levels import LevelTrigger

__all__ = ["TradeResult", "Batch"]


class TradeResult(list[TradeEvent]):
    """The order events of one engine call, in the order they happened (it is a `list[TradeEvent]`), plus
    exactly what the call changed, for one storage transaction.

    `orders` holds a final snapshot of every order the call created or changed, in the order they were first
    touched, including a stop that only triggered (which has no event); `fills` every execution in order;
    `portfolios` a snapshot of every ledger whose cash, reservations, positions or levels changed (a cleared
    stop-loss with nothing to sell changes a ledger without any event); `triggers` the stop-loss and
    take-profit levels reached (on_quotes only), for the risk layer's alerts.
    `total += other` merges another result in (events and fills appended, later snapshots win).
    """

    __slots__ = ("orders", "fills", "portfolios", "triggers")

    def __init__(
        self,
        events: Iterable[TradeEvent] = (),
        orders: Iterable[Order] = (),
        fills: Iterable[Fill] = (),
        portfolios: Iterable[PortfolioLedger] = (),
        triggers: Iterable[LevelTrigger] = (),
    ):
        super().__init__(events)
        self.orders: list[Order] = list(orders)
        self.fills: list[Fill] = list(fills)
        self.portfolios: list[PortfolioLedger] = list(portfolios)
        self.triggers: list[LevelTrigger] = list(triggers)

    @property
    def events(self) -> list[TradeEvent]:
        return list(self)

    @property
    def changed(self) -> bool:
        """Whether there is anything to persist."""
        return bool(self.orders or self.portfolios)

    def __iadd__(self, other: Iterable[TradeEvent]) -> "TradeResult":
        self.extend(other)
        if isinstance(other, TradeResult):
            orders = {order.order_id: order for order in self.orders}
            orders.update((order.order_id, order) for order in other.orders)
            self.orders = list(orders.values())
            ledgers = {ledger.portfolio_id: ledger for ledger in self.portfolios}
            ledgers.update((ledger.portfolio_id, ledger) for ledger in other.portfolios)
            self.portfolios = list(ledgers.values())
            self.fills += other.fills
            self.triggers += other.triggers
        return self

    def __repr__(self) -> str:
        return (f"TradeResult({list.__repr__(self)}, orders={len(self.orders)}, fills={len(self.fills)}, "
                f"portfolios={len(self.portfolios)}, triggers={self.triggers!r})")


@dataclass(slots=True)
class Batch:
    """Collects what one engine call changes, as it happens; `result()` snapshots it into a TradeResult."""

    events: list[TradeEvent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    ledgers: dict[str, PortfolioLedger] = field(default_factory=dict)
    triggers: list[LevelTrigger] = field(default_factory=list)

    def event(self, kind: EventKind, order: Order, fill: Fill | None = None) -> None:
        self.events.append(TradeEvent(kind, order.snapshot(), fill))
        self.orders.setdefault(order.order_id, order)

    def touch(self, order: Order) -> None:
        self.orders.setdefault(order.order_id, order)

    def ledger(self, ledger: PortfolioLedger) -> None:
        self.ledgers.setdefault(ledger.portfolio_id, ledger)

    def result(self) -> TradeResult:
        return TradeResult(
            self.events,
            [order.snapshot() for order in self.orders.values()],
            self.fills,
            [snapshot_ledger(ledger) for ledger in self.ledgers.values()],
            self.triggers,
        )
