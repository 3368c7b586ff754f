"""The order book: the portfolios' ledgers, the open orders in time priority and the price each buy reserves at."""

from collections import OrderedDict
from collections.abc import Iterable

from domain.errors import BadRequest, Forbidden, NotFound
from domain.ledger import position
from domain.trading import Order, OrderType, PortfolioLedger, Side

from .checks import LIMIT_TYPES, OrderRules

__all__ = ["OrderBook"]

_CLOSED_MEMORY = 100_000  # closed order ids remembered, so a late CANCEL/MODIFY gets "no longer open"


class OrderBook:
    """Owns what the order engine holds between calls: the portfolios' ledgers, the open orders in time priority,
    the per-share price each open buy reserves at, and who owned the recently closed orders.

    Buys reserve `remaining x reserve price + Commission.worst_case(remaining)` (see `OrderRules.reserve_price`);
    sells reserve their remaining shares. `OrderEngine` is the book plus everything that changes it.
    """

    def __init__(self, rules: OrderRules):
        self.rules = rules
        self._ledgers: dict[str, PortfolioLedger] = {}
        self._open: dict[str, Order] = {}  # insertion order is time priority
        self._reserve_price: dict[str, int] = {}  # open buys: the per-share price their reservation is based on
        self._closed: OrderedDict[str, str] = OrderedDict()  # recently closed order id -> user id

    # ----- portfolios --------------------------------------------------------------------------------------

    def add_portfolio(self, ledger: PortfolioLedger) -> None:
        """Take a ledger over (the engine mutates it from now on); ValueError if its id is taken."""
        if ledger.portfolio_id in self._ledgers:
            raise ValueError(f"portfolio {ledger.portfolio_id} is already in the engine")
        self._ledgers[ledger.portfolio_id] = ledger

    def portfolio(self, portfolio_id: str) -> PortfolioLedger:
        """The live ledger (read it, do not change it); NotFound if unknown."""
        ledger = self._ledgers.get(portfolio_id) if isinstance(portfolio_id, str) else None
        if ledger is None:
            raise NotFound(f"unknown portfolio {portfolio_id!r}")
        return ledger

    def portfolios(self) -> list[PortfolioLedger]:
        """Every live ledger, in the order they were added."""
        return list(self._ledgers.values())

    def _owned(self, user_id: str, portfolio_id: str) -> PortfolioLedger:
        ledger = self.portfolio(portfolio_id)
        if ledger.owner_id != user_id:
            raise Forbidden("that portfolio belongs to someone else")
        return ledger

    # ----- open orders -------------------------------------------------------------------------------------

    def _own_open_order(self, user_id: str, order_id: str) -> Order:
        order = self._open.get(order_id) if isinstance(order_id, str) else None
        if order is None:
            owner = self._closed.get(order_id) if isinstance(order_id, str) else None
            if owner is None:
                raise NotFound(f"unknown order {order_id!r}")
            if owner != user_id:
                raise Forbidden("that order belongs to someone else")
            raise BadRequest("order is no longer open")
        if order.user_id != user_id:
            raise Forbidden("that order belongs to someone else")
        return order

    def _reservation(self, order: Order) -> int:
        """What an open buy holds: its remaining shares at its reserve price, plus their worst-case commission."""
        return self.rules.buy_reservation(order.portfolio_id, self._reserve_price[order.order_id],
                                          order.remaining_quantity, order.filled_quantity > 0)

    def _forget(self, order: Order) -> None:
        self._open.pop(order.order_id, None)
        self._reserve_price.pop(order.order_id, None)
        self._remember_closed(order)

    def _remember_closed(self, order: Order) -> None:
        self._closed[order.order_id] = order.user_id
        if len(self._closed) > _CLOSED_MEMORY:
            self._closed.popitem(last=False)

    # ----- restore -----------------------------------------------------------------------------------------

    def reload(self, ledgers: Iterable[PortfolioLedger], orders: Iterable[Order]) -> None:
        """Forget every ledger and open order held and take these over instead (what storage holds)."""
        self._ledgers.clear()
        self._open.clear()
        self._reserve_price.clear()
        for ledger in ledgers:
            self.add_portfolio(ledger)
        self.load_open_orders(orders)

    def load_open_orders(self, orders: Iterable[Order]) -> None:
        """Take over the open orders storage kept (after a restart) and recompute every reservation from them.

        The engine mutates the given Order objects from now on; closed ones are ignored. Their ledgers must have
        been added. Time priority follows `created_at_ms` (ties keep the given order). A MARKET or STOP buy keeps
        the reserve price implied by its stored `reserved_cash_cents`.
        """
        incoming = [order for order in orders if order.is_open]
        for order in incoming:
            if order.portfolio_id not in self._ledgers:
                raise NotFound(f"order {order.order_id} belongs to unknown portfolio {order.portfolio_id!r}")
            if order.order_id in self._open:
                raise ValueError(f"order {order.order_id} is already open in the engine")
        merged = sorted([*self._open.values(), *incoming], key=lambda order: order.created_at_ms)
        self._open = {order.order_id: order for order in merged}
        for order in incoming:
            if order.side is Side.BUY:
                self._reserve_price[order.order_id] = self._restored_reserve_price(order)
                order.reserved_cash_cents = self._reservation(order)
            else:
                order.reserved_cash_cents = 0
        for ledger in self._ledgers.values():
            ledger.reserved_cash_cents = 0
            for held in ledger.positions.values():
                held.reserved_quantity = 0
        for order in self._open.values():
            ledger = self._ledgers[order.portfolio_id]
            if order.side is Side.BUY:
                ledger.reserved_cash_cents += order.reserved_cash_cents
            else:
                position(ledger, order.symbol).reserved_quantity += order.remaining_quantity

    def _restored_reserve_price(self, order: Order) -> int:
        if order.order_type in LIMIT_TYPES:
            return order.limit_price
        remaining = order.remaining_quantity
        commission = self.rules.commission_of(order.portfolio_id)
        for_price = order.reserved_cash_cents - commission.worst_case(remaining, order.filled_quantity > 0)
        price = max(0, -(-for_price // remaining))
        if order.order_type is OrderType.STOP and not price:
            price = self.rules.buffered(order.stop_price)
        return price

    # ----- reading -----------------------------------------------------------------------------------------

    def open_orders(self, *, user_id: str | None = None, portfolio_id: str | None = None) -> list[Order]:
        """Snapshots of the open orders, in time priority, optionally of one user and/or one portfolio."""
        return [
            order.snapshot()
            for order in self._open.values()
            if (user_id is None or order.user_id == user_id)
            and (portfolio_id is None or order.portfolio_id == portfolio_id)
        ]

    def order(self, order_id: str) -> Order | None:
        """A snapshot of an open order, None for anything else (closed orders live in storage only)."""
        order = self._open.get(order_id) if isinstance(order_id, str) else None
        return None if order is None else order.snapshot()
