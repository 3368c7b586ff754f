"""The trading flow: the engine decides, storage makes it durable, the broker delivers it to the user."""

import logging
from dataclasses import dataclass, replace

from domain.errors import BadRequest, Forbidden, NotFound
from domain.orders import TradeResult
from domain.trading import EventKind, MarketState, Order, OrderRequest, RejectReason
from domain.users import CLASS_ROLES, Role

__all__ = ["TradingService", "StoredEvent", "ORDER_EVENTS", "PORTFOLIOS_CHANGED", "LEVEL_TRIGGERS"]

log = logging.getLogger(__name__)

ORDER_EVENTS = "orders.events"              # message: StoredEvent
LEVEL_TRIGGERS = "orders.level_triggers"    # message: list of domain.orders.LevelTrigger (stop-loss / take-profit)
PORTFOLIOS_CHANGED = "portfolios.changed"   # message: frozenset of portfolio ids whose ledger changed



@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An order event after its commit: its per-user eventId and the exact stored `data` JSON."""

    user_id: str
    event_id: int
    type: str
    payload: str
    order_id: str
    portfolio_id: str
    origin_session: str | None  # the connection whose request or order caused it
    direct: bool = False         # produced by a request of origin_session, which sends it itself


class TradingService:
    """Owns the trading flow: access checks, engine calls, one durable commit per call, then publishing.

    Nothing is acknowledged before it is committed: every method commits the engine's events (orders,
    fills, ledgers) in one transaction and only then returns or publishes them.
    """

    def __init__(self, *, engine, storage, market, broker, clock, starting_cash_cents: int):
        self.engine = engine
        self.storage = storage
        self.market = market
        self.broker = broker
        self.clock = clock
        self.starting_cash_cents = starting_cash_cents
        self._origin: dict[str, str] = {}  # open order id -> session that submitted it

    # start-up ---------------------------------------------------------------
    def restore(self) -> None:
        """Load every portfolio and open order from storage into the engine (after a restart too)."""
        ledgers, orders = self.storage.load_trading(0)
        for ledger in ledgers:
            self.engine.add_portfolio(ledger)
        self.engine.load_open_orders(orders)
        log.info("restored %d portfolios and %d open orders", len(ledgers), len(orders))

    # access -----------------------------------------------------------------
    def role_of(self, user) -> Role:
        """The role as stored now (a demoted teacher loses rights at once), not as the connection began."""
        current = self.storage.user_by_id(int(user.id))
        return current.role if current is not None else Role.STUDENT

    def ledger(self, portfolio_id: str):
        """The engine's ledger, loading a portfolio created behind its back (operator CLI, registration)."""
        try:
            return self.engine.portfolio(portfolio_id)
        except NotFound:
            ledger = self.storage.load_portfolio(portfolio_id)
            if ledger is None:
                raise NotFound(f"portfolio {portfolio_id} not found") from None
            self.engine.add_portfolio(ledger)
            return ledger

    def create_portfolio(self, user, name: str):
        """Another portfolio for `user` with the configured starting cash (LimitExceeded past the limit)."""
        created = self.storage.create_portfolio(str(user.id), name, self.starting_cash_cents)
        return self.ledger(created.portfolio_id)

    def portfolio_ids_of(self, user_id: str) -> list[str]:
        return self.storage.portfolio_ids_of(user_id)

    def readable_portfolio(self, user, portfolio_id: str):
        """The ledger of `portfolio_id` if `user` may read it (owner, or teacher/admin), else Forbidden/NotFound."""
        ledger = self.ledger(portfolio_id)
        if ledger.owner_id != str(user.id) and self.role_of(user) not in CLASS_ROLES:
            raise Forbidden(f"portfolio {portfolio_id} is not yours")
        return ledger

    def own_portfolio(self, user, portfolio_id: str):
        ledger = self.readable_portfolio(user, portfolio_id)
        if ledger.owner_id != str(user.id):
            raise Forbidden(f"portfolio {portfolio_id} is not yours to trade")
        return ledger

    def readable_order(self, user, order_id: str) -> Order:
        order = self.engine.order(order_id) or self.storage.order_by_id(order_id)
        if order is None:
            raise NotFound(f"order {order_id} not found")
        if order.user_id != str(user.id) and self.role_of(user) not in CLASS_ROLES:
            raise Forbidden(f"order {order_id} is not yours")
        return order

    # trading ----------------------------------------------------------------
    def _market_state(self) -> str:
        return self.market.status

    def submit(self, user, request: OrderRequest, *, session_id: str | None,
               price_error: str | None = None) -> list[StoredEvent]:
        """SUBMIT_ORDER: always records an order (accepted or REJECTED) unless it names someone else's portfolio.

        An identical repeat of a clientOrderId returns the original order's first event; nothing is stored.
        """
        user_id = str(user.id)
        self.own_portfolio(user, request.portfolio_id)
        now_ms = self.clock.now_ms()
        day_index = self.market.simulator.day_index
        if request.client_order_id is not None:
            previous = self.storage.client_order(user_id, request.client_order_id)
            if previous is not None:
                order, event_id, payload = previous
                if _same_request(order, request):
                    return [StoredEvent(user_id, event_id, _first_event_type(order), payload, order.order_id,
                                        order.portfolio_id, session_id)]
                events = self.engine.reject(
                    user_id, _without_client_id(request), RejectReason.DUPLICATE_CLIENT_ORDER_ID,
                    f"clientOrderId {request.client_order_id!r} was already used for a different order",
                    now_ms=now_ms, day_index=day_index)
                return self._commit(events, session_id)
        if price_error is not None:
            events = self.engine.reject(user_id, request, RejectReason.INVALID_PRICE, price_error,
                                        now_ms=now_ms, day_index=day_index)
            return self._commit(events, session_id)
        quote = self.market.simulator.quote(request.symbol) if self.market.simulator.has(request.symbol) else None
        events = self.engine.submit(user_id, request, quote, now_ms=now_ms,
                                    market_ms=int(self.market.clock.now() * 1000), day_index=day_index,
                                    market_state=self._market_state())
        return self._commit(events, session_id)

    def cancel(self, user, order_id: str, *, session_id: str | None) -> list[StoredEvent]:
        self._check_open_order(user, order_id)
        return self._commit(self.engine.cancel(str(user.id), order_id, now_ms=self.clock.now_ms()), session_id)

    def modify(self, user, order_id: str, *, quantity=None, limit_price=None, stop_price=None,
               session_id: str | None) -> list[StoredEvent]:
        order = self._check_open_order(user, order_id)
        quote = self.market.simulator.quote(order.symbol)
        events = self.engine.modify(str(user.id), order_id, quantity=quantity, limit_price=limit_price,
                                    stop_price=stop_price, quote=quote, now_ms=self.clock.now_ms(),
                                    market_ms=int(self.market.clock.now() * 1000),
                                    market_state=self._market_state())
        return self._commit(events, session_id)

    def _check_open_order(self, user, order_id: str) -> Order:
        """The open order `order_id` of `user`: Forbidden for someone else's (teachers too), BAD_REQUEST if closed."""
        order = self.engine.order(order_id) or self.storage.order_by_id(order_id)
        if order is None:
            raise NotFound(f"order {order_id} not found")
        if order.user_id != str(user.id):
            raise Forbidden(f"order {order_id} is not yours")
        if not order.is_open or self.engine.order(order_id) is None:
            raise BadRequest(f"order {order_id} is no longer open ({order.status})")
        return order

    def set_position_levels(self, user, portfolio_id: str, symbol: str, **levels):
        """UPDATE_POSITION: set the given levels (stop_loss_cents, take_profit_cents; None clears), keep the rest."""
        self.own_portfolio(user, portfolio_id)
        position = self.engine.set_position_levels(str(user.id), portfolio_id, symbol, **levels)
        self.storage.save_trading([], [self.engine.portfolio(portfolio_id)], now_ms=self.clock.now_ms())
        self.broker.publish(PORTFOLIOS_CHANGED, frozenset({portfolio_id}))
        return position

    def on_tick(self, tick) -> list[StoredEvent]:
        """One market tick: expire DAY orders when a day rolled, then match open orders against the quotes."""
        now_ms = self.clock.now_ms()
        result = TradeResult()
        if tick.day_rolled:
            result += self.engine.expire_day(tick.day_index, now_ms=now_ms)
        if self.market.status is MarketState.OPEN:
            result += self.engine.on_quotes(self.market.simulator.quotes(), now_ms=now_ms,
                                            market_ms=tick.market_ms)
        stored = self._commit(result, None)
        if result.triggers:
            self.broker.publish(LEVEL_TRIGGERS, list(result.triggers))
        return stored

    # commit and publish -----------------------------------------------------
    def _commit(self, result: TradeResult, session_id: str | None) -> list[StoredEvent]:
        """Store what one engine call changed in one transaction, then publish its events."""
        if not result.changed:
            return []
        portfolio_ids = {ledger.portfolio_id for ledger in result.portfolios}
        saved = self.storage.save_trading(list(result), result.portfolios, now_ms=self.clock.now_ms(),
                                          orders=result.orders)
        stored = []
        for event, event_id, payload in saved:
            order = event.order
            origin = session_id or self._origin.get(order.order_id)
            stored.append(StoredEvent(order.user_id, event_id, str(event.kind), payload, order.order_id,
                                      order.portfolio_id, origin, direct=session_id is not None))
        for order in result.orders:  # remember who placed an order until it closes: later fills go there too
            if order.is_open and session_id is not None:
                self._origin[order.order_id] = session_id
            elif not order.is_open:
                self._origin.pop(order.order_id, None)
        for event in stored:
            self.broker.publish(ORDER_EVENTS, event)
        if portfolio_ids:
            self.broker.publish(PORTFOLIOS_CHANGED, frozenset(portfolio_ids))
        return stored


def _first_event_type(order: Order) -> str:
    return str(EventKind.ORDER_REJECTED if order.reject_reason is not None else EventKind.ORDER_SUBMITTED)


def _without_client_id(request: OrderRequest) -> OrderRequest:
    return replace(request, client_order_id=None)


def _same_request(order: Order, request: OrderRequest) -> bool:
    """Whether a repeat of a clientOrderId asks for exactly the original order."""
    return (order.portfolio_id, order.symbol, order.side, order.order_type, order.quantity, order.limit_price,
            order.stop_price, order.time_in_force) == (
        request.portfolio_id, request.symbol, request.side, request.order_type, request.quantity,
        request.limit_price, request.stop_price, request.time_in_force)
