"""The trading flow: the engine decides, storage makes it durable, then the order channels and the feed hear of it."""

import logging
import time
from collections.abc import Callable, Set
from dataclasses import dataclass, replace

from domain.errors import BadRequest, Forbidden, NotFound, Unavailable
from domain.orders import LevelTrigger, OrderEngine, OrderRules, TradeResult
from domain.trading import EventKind, MarketState, Order, OrderRequest, RejectReason
from domain.users import User
from realtime import channels
from realtime.hub import Publisher
from realtime.protocol import encode_data

from .metrics import Histogram
from .portfolio_book import PortfolioBook
from .storage import MAX_HISTORY_LIMIT, StorageFailure, Stores

__all__ = ["TradingService", "Origin", "ORDER_HISTORY_LIMIT"]

ORDER_HISTORY_LIMIT = MAX_HISTORY_LIMIT  # orders per REQUEST_ORDER_HISTORY page

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Origin:
    """The connection whose request caused a trading call, and that request's id and type: the call's first event
    answers it (or an ERROR, when what it did could not be stored)."""

    session_id: str
    request_id: str | None = None
    request_type: str | None = None
    received_at: float | None = None  # time.perf_counter() when the request arrived: its ack's latency starts there


class TradingService:
    """Owns the trading flow: access checks, engine calls, durable commits, then publishing.

    Nothing is acknowledged before it is committed: the engine's events (orders, fills, ledgers) are stored in
    one transaction; only then is each event published to the user's order channels and the portfolio feed
    (`on_ledgers_changed`) told which ledgers changed. An event reaches the connection that caused it (as its
    direct reply when it is one, else on its session channel) and every connection following the user's
    orders or that portfolio's.

    The answer to a request travels the same way, marked as the reply to it: a connection hears its replies
    and the other events in eventId order, whichever arrives first.

    Group commit (`commit_later`, the server's loop): the requests handled in one turn of the loop share one
    transaction, run on the next turn, because a commit costs more than an order. Until then their changes
    live only in the engine; a storage read, a market tick or a position update commits them first, so no
    read or later write sees the engine ahead of storage. When the database refuses the transaction, the
    engine goes back to what is stored and every request in it is answered INTERNAL: nothing was done.
    Without `commit_later` (tests, tools) each call commits before it returns.
    """

    def __init__(self, *, engine: OrderEngine, book: PortfolioBook, storage: Stores, market, hub: Publisher,
                 clock, on_ledgers_changed: Callable[[Set[str]], None], order_ack: Histogram | None = None):
        self._engine, self._book, self._storage, self._market = engine, book, storage, market
        self._hub, self._clock, self._on_ledgers_changed = hub, clock, on_ledgers_changed
        self._order_ack = order_ack  # SUBMIT_ORDER receipt -> its first event published, in ms
        self._origin: dict[str, str] = {}  # open order id -> session that submitted it
        self._commit_later: Callable[[Callable[[], None]], object] | None = None
        self._pending: list[tuple[TradeResult, Origin | None]] = []  # changed in the engine, not yet stored
        self._pending_client_ids: set[tuple[str, str]] = set()  # (user id, clientOrderId) among them
        self._ahead = False  # a refused write left the engine holding what storage does not, and it is not reloaded
        self._observers: list[Callable[[list, list], None]] = []

    def observe(self, callback: Callable[[list, list], None]) -> None:
        """Call `callback(events, ledgers)` after each commit, once its events are published (contest checklists)."""
        self._observers.append(callback)

    def commit_later(self, schedule: Callable[[Callable[[], None]], object]) -> None:
        """Group commit from now on: `schedule(callback)` runs the callback on the loop's next turn."""
        self._commit_later = schedule

    # start-up ---------------------------------------------------------------
    def restore(self) -> None:
        """Load every portfolio and open order from storage into the engine: at start-up, and after a write the
        database refused, so that the engine never holds what storage does not."""
        ledgers, orders = self._storage.load_trading(0)
        self._engine.reload(ledgers, orders)
        log.info("restored %d portfolios and %d open orders", len(ledgers), len(orders))

    def _save(self, events, ledgers, **kwargs):
        """`storage.save_trading`; when the database refuses it, the engine goes back to what is stored and the
        request is answered INTERNAL (nothing was done).

        When the database cannot even be read then (PostgreSQL gone away), every save is refused until the engine
        is reloaded (each tick tries, see `match`), as what it computed rests on what storage never got.
        """
        try:
            if self._ahead:
                raise StorageFailure("the engine is not back to what is stored yet")
            return self._storage.save_trading(events, ledgers, now_ms=self._clock.now_ms(), **kwargs)
        except StorageFailure as failure:
            log.error("%s; the engine goes back to what is stored", failure)
            self._ahead = True
            if not self._catch_up():
                log.error("cannot read the database to reload the engine: nothing is stored until it can")
            raise Unavailable("the server could not store this, so nothing was done; try again later") from None

    def _catch_up(self) -> bool:
        """Reload the engine after a refused write; False while the database cannot be read."""
        try:
            self.restore()
        except StorageFailure:
            return False
        self._ahead = False
        return True

    # reading ----------------------------------------------------------------
    @property
    def rules(self) -> OrderRules:
        """The order engine's own rules (quantity and price limits, the market buffer, short selling)."""
        return self._engine.rules

    def open_orders(self, user_id: str) -> list[Order]:
        """The user's open orders, in time priority (ACTIVE_ORDERS)."""
        return self._engine.open_orders(user_id=user_id)

    def readable_order(self, user: User, order_id: str) -> Order:
        """An order, open or closed, that `user` may read (theirs, or anyone's for a teacher or admin)."""
        order = self._engine.order(order_id) or self._stored().order_by_id(order_id)
        if order is None and self._book.reads_everyone(user):  # nothing to hide from them
            raise NotFound(f"order {order_id} not found")
        if order is None or not self._book.may_read(user, order.user_id):
            raise Forbidden(f"order {order_id} is not yours")  # unknown or someone else's: one answer
        return order

    def order_history(self, user: User, *, portfolio_id: str | None, symbol: str | None, status: str | None,
                      limit: int, before: str | None) -> tuple[list[Order], str | None]:
        """A page of orders, newest first: of a portfolio `user` may read, else of `user` themself."""
        owner = self._book.readable(user, portfolio_id).owner_id if portfolio_id is not None else str(user.id)
        return self._stored().order_history(user_ids=[owner], portfolio_id=portfolio_id, symbol=symbol,
                                           status=status, limit=limit, before=before)

    def journal(self, reader: User, user_id: str, *, limit: int,
                before: str | None) -> tuple[User, list[Order], str | None]:
        """A page of `user_id`'s trade journal, newest first: their orders placed with a note, in every portfolio.

        For teachers and admins only (Forbidden for anyone else, even about themselves); NotFound for an id that
        names no user. Returns the user, the page and the next page's cursor (None: no more).
        """
        if not self._book.reads_everyone(reader):
            raise Forbidden("only teachers and admins read students' journals")
        canonical = user_id.isascii() and user_id.isdigit() and str(int(user_id)) == user_id  # "17", not "017"
        owner = self._stored().user_by_id(int(user_id)) if canonical else None
        if owner is None:
            raise NotFound(f"user {user_id} not found")
        orders, cursor = self._storage.order_history(user_ids=[str(owner.id)], with_note=True, limit=limit,
                                                     before=before)
        return owner, orders, cursor

    def last_event_id(self, user_id: str) -> int:
        return self._stored().last_event_id(user_id)

    def events_after(self, user_id: str, event_id: int, portfolio_id: str | None, *,
                     limit: int) -> list[tuple[int, str, str]]:
        """The user's first `limit` stored events after `event_id` (of one portfolio, if given): (id, type, payload)."""
        return self._stored().events_after(user_id, event_id, portfolio_id=portfolio_id, limit=limit)

    # trading ----------------------------------------------------------------
    def submit(self, user: User, request: OrderRequest, *, origin: Origin | None,
               price_error: str | None = None) -> None:
        """SUBMIT_ORDER: always records an order (accepted or REJECTED) unless it names someone else's portfolio.

        Its events reach the connections through the hub, the first as the answer to `origin`'s request. An
        identical repeat of a clientOrderId is answered with the original order's first event; nothing is stored.
        """
        trader = self._book.trader(user, request.portfolio_id)
        user_id, placed_by = trader.owner_id, trader.placed_by  # a team member places orders for its captain
        if any("\x00" in (text or "") for text in (request.symbol, request.client_order_id, request.note)):
            # even a rejection is stored
            raise BadRequest("symbol, clientOrderId and note cannot hold a NUL character (PostgreSQL's text cannot)")
        now_ms = self._clock.now_ms()
        day_index = self._market.day_index
        if request.client_order_id is not None:
            if (user_id, request.client_order_id) in self._pending_client_ids:
                self.flush()  # its first use is not stored yet: a repeat must find it
            previous = self._storage.client_order(user_id, request.client_order_id)
            if previous is not None:
                order, _, payload = previous
                if _same_request(order, request):
                    if origin is not None:  # an answer only: the event is not new to anyone else
                        self._hub.publish(channels.orders_of_session(origin.session_id), _first_event_type(order),
                                          payload, reply_to=(origin.session_id, origin.request_id))
                        self._acked(origin)
                    return
                events = self._engine.reject(
                    user_id, _without_client_id(request), RejectReason.DUPLICATE_CLIENT_ORDER_ID,
                    f"clientOrderId {request.client_order_id!r} was already used for a different order",
                    now_ms=now_ms, day_index=day_index, placed_by=placed_by)
                self._commit(events, origin)
                return
        if price_error is not None:
            events = self._engine.reject(user_id, request, RejectReason.INVALID_PRICE, price_error,
                                         now_ms=now_ms, day_index=day_index, placed_by=placed_by)
            self._commit(events, origin)
            return
        quote = self._market.quote(request.symbol) if self._market.has(request.symbol) else None
        events = self._engine.submit(user_id, request, quote, now_ms=now_ms, market_ms=self._market.market_ms,
                                     day_index=day_index, market_state=self._market.status, placed_by=placed_by)
        self._commit(events, origin)

    def cancel(self, user: User, order_id: str, *, origin: Origin | None) -> None:
        order = self._check_open_order(user, order_id)
        self._commit(self._engine.cancel(order.user_id, order_id, now_ms=self._clock.now_ms()), origin)

    def modify(self, user: User, order_id: str, *, quantity=None, limit_price=None, stop_price=None,
               origin: Origin | None) -> None:
        order = self._check_open_order(user, order_id)
        events = self._engine.modify(order.user_id, order_id, quantity=quantity, limit_price=limit_price,
                                     stop_price=stop_price, quote=self._market.quote(order.symbol),
                                     now_ms=self._clock.now_ms(), market_ms=self._market.market_ms,
                                     market_state=self._market.status)
        self._commit(events, origin)

    def _check_open_order(self, user: User, order_id: str) -> Order:
        """The open order `order_id` of `user` (or of their team): Forbidden for someone else's (teachers too),
        BAD_REQUEST if closed."""
        order = self._engine.order(order_id) or self._stored().order_by_id(order_id)
        if order is None or (order.user_id != str(user.id) and not self._trades_for(user, order)):
            raise Forbidden(f"order {order_id} is not yours")  # unknown or someone else's: one answer
        if not order.is_open or self._engine.order(order_id) is None:
            raise BadRequest(f"order {order_id} is no longer open ({order.status})")
        return order

    def _trades_for(self, user: User, order: Order) -> bool:
        """Whether `user` trades the portfolio of someone else's `order` (a member of its team)."""
        try:
            return self._book.trader(user, order.portfolio_id).owner_id == order.user_id
        except (Forbidden, NotFound):
            return False

    def set_position_levels(self, user: User, portfolio_id: str, symbol: str, **levels):
        """UPDATE_POSITION: set the given levels (stop_loss_cents, take_profit_cents; None clears), keep the rest."""
        owner_id = self._book.trader(user, portfolio_id).owner_id
        self.flush()  # a refused write below reloads the engine: nothing pending may be lost with it
        position = self._engine.set_position_levels(owner_id, portfolio_id, symbol, **levels)
        ledger = self._engine.portfolio(portfolio_id)
        self._save([], [ledger])
        self._changed([], [ledger])
        return position

    def stop_trading(self, portfolio_ids, *, reason: str) -> None:
        """These portfolios trade no more (their contest ended): their open orders expire, their levels clear."""
        self._commit(self._engine.stop_trading(portfolio_ids, now_ms=self._clock.now_ms(), reason=reason), None,
                     at_once=True)

    def match(self, tick) -> list[LevelTrigger]:
        """One market tick: expire DAY orders when a day rolled, then match open orders against the new quotes.

        Returns the stop-loss and take-profit levels the prices reached (each has placed its market sell).
        """
        if self._ahead and not self._catch_up():
            return []
        now_ms = self._clock.now_ms()
        result = TradeResult()
        if tick.day_rolled:
            result += self._engine.expire_day(tick.day_index, now_ms=now_ms)
        if self._market.status is MarketState.OPEN:
            result += self._engine.on_quotes(self._market.quotes(), now_ms=now_ms, market_ms=tick.market_ms)
        try:
            self._commit(result, None, at_once=True)  # with what requests left pending: the triggers act on it
        except Unavailable:
            return []  # logged; the next tick matches again what storage holds
        return list(result.triggers)

    # commit and publish -----------------------------------------------------
    def _stored(self) -> Stores:
        """Storage, once what is pending is in it."""
        self.flush()
        return self._storage

    def _commit(self, result: TradeResult, origin: Origin | None, *, at_once: bool = False) -> None:
        """Store what one engine call changed, then publish its events (see the class): in this call, or with the
        others of this turn of the loop (group commit). Unavailable when a commit in this call fails."""
        if result.changed:
            self._pending.append((result, origin))
            self._pending_client_ids.update((order.user_id, order.client_order_id) for order in result.orders
                                            if order.client_order_id is not None)
        if at_once or self._commit_later is None:
            self._flush(caller=origin)
        elif len(self._pending) == 1:
            self._commit_later(self.flush)

    def flush(self) -> None:
        """Commit and publish what is pending; a refusal answers each request in it INTERNAL."""
        try:
            self._flush(caller=None)
        except Unavailable:
            pass  # the requests have their answers; the engine is back to what is stored

    def _flush(self, *, caller: Origin | None) -> None:
        """Commit what is pending in one transaction, then publish. When the database refuses it, every request
        in it but `caller`'s is answered INTERNAL, and Unavailable is raised for the caller to answer."""
        batch, self._pending = self._pending, []
        self._pending_client_ids.clear()
        if not batch:
            return
        events = [event for result, _ in batch for event in result]
        ledgers = [ledger for result, _ in batch for ledger in result.portfolios]
        orders = [order for result, _ in batch for order in result.orders]
        try:
            saved = iter(self._save(events, ledgers, orders=orders))
        except Unavailable as refusal:
            for _, origin in batch:
                if origin is not None and origin is not caller:
                    self._answer_refused(origin, refusal)
            raise
        for result, origin in batch:
            self._publish([next(saved) for _ in result], result, origin)
        self._changed(events, ledgers)

    def _changed(self, events: list, ledgers: list) -> None:
        """Tell the portfolio feed and the observers what a commit changed."""
        changed = frozenset(ledger.portfolio_id for ledger in ledgers)
        if changed:
            self._on_ledgers_changed(changed)
        for observer in self._observers:
            try:
                observer(events, ledgers)
            except Exception:  # what is stored and published stands; an observer's fault is only logged
                log.exception("a trading observer failed")

    def _publish(self, saved, result: TradeResult, origin: Origin | None) -> None:
        """Each stored event to the user's and the portfolio's order channels and to the session that placed its
        order, the first as the answer to `origin`'s request."""
        for index, (event, event_id, payload) in enumerate(saved):
            order = event.order
            session_id = origin.session_id if origin is not None else self._origin.get(order.order_id)
            names = [channels.orders_of_user(order.user_id), channels.orders_of_portfolio(order.portfolio_id)]
            if session_id is not None:
                names.append(channels.orders_of_session(session_id))
            reply_to = (origin.session_id, origin.request_id) if origin is not None and index == 0 else None
            self._hub.publish(names, str(event.kind), payload, reply_to=reply_to, offset=event_id)
            if reply_to is not None:
                self._acked(origin)
        for order in result.orders:  # remember who placed an order until it closes: later fills go there too
            if order.is_open and origin is not None:
                self._origin[order.order_id] = origin.session_id
            elif not order.is_open:
                self._origin.pop(order.order_id, None)

    def _acked(self, origin: Origin) -> None:
        """An order's acknowledgement (ORDER_SUBMITTED or ORDER_REJECTED) has been published: its latency."""
        if self._order_ack is not None and origin.received_at is not None and origin.request_type == "SUBMIT_ORDER":
            self._order_ack.observe((time.perf_counter() - origin.received_at) * 1000)

    def _answer_refused(self, origin: Origin, refusal: Unavailable) -> None:
        """The ERROR a request gets when what it did could not be stored (the handler answers it when at once)."""
        self._hub.publish(channels.orders_of_session(origin.session_id), "ERROR",
                          encode_data({"code": refusal.code, "error": refusal.message,
                                       "requestType": origin.request_type}),
                          reply_to=(origin.session_id, origin.request_id))


def _first_event_type(order: Order) -> str:
    return str(EventKind.ORDER_REJECTED if order.reject_reason is not None else EventKind.ORDER_SUBMITTED)


def _without_client_id(request: OrderRequest) -> OrderRequest:
    return replace(request, client_order_id=None)


def _same_request(order: Order, request: OrderRequest) -> bool:
    """Whether a repeat of a clientOrderId asks for exactly the original order."""
    return (order.portfolio_id, order.symbol, order.side, order.order_type, order.quantity, order.limit_price,
            order.stop_price, order.time_in_force, order.note) == (
        request.portfolio_id, request.symbol, request.side, request.order_type, request.quantity,
        request.limit_price, request.stop_price, request.time_in_force, request.note)
