"""/ws/orders: submit, cancel, modify, status, history, and the durable per-user event stream (PROTOCOL.md, Orders)."""

from dataclasses import dataclass

from domain.errors import BadRequest
from domain.money import price_to_cents
from domain.orders.checks import note_problem
from domain.trading import MAX_NOTE_LENGTH, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from realtime import channels
from realtime.schema import Id, Int, Money, Number, Str, Symbol
from realtime.wire import orders as wire
from services.trading import ORDER_HISTORY_LIMIT, Origin

from .base import Endpoint, Reply, handles

__all__ = ["OrdersEndpoint"]


def _whole(quantity):
    """1.0 from JSON is 1; 1.5 stays 1.5 and the engine rejects it INVALID_QUANTITY (a record, not an ERROR)."""
    return int(quantity) if isinstance(quantity, float) and quantity.is_integer() else quantity


REPLAY_WAIT_S = 0.05  # a replay waits this long at a time for the client to read what it has been sent


@dataclass(slots=True)
class _Replay:
    """A SUBSCRIBE_ORDERS {sinceEventId} in progress: where it has got to, and what to confirm at the end."""

    channel: str
    portfolio_id: str | None
    after: int
    request_id: str | None


class OrdersEndpoint(Endpoint):
    """One connection's order session: its order requests, and the order events it hears.

    It always hears the events of orders it placed (its session channel), and, after SUBSCRIBE_ORDERS,
    those of all the user's orders or of one of their portfolios.
    """

    name = "orders"
    auth_required = True
    replay_page = 500  # stored events per page of a SUBSCRIBE_ORDERS replay

    @property
    def trading(self):
        return self.services.trading

    remote_attributes = ("_sent_through",)

    def __init__(self, services, transport, request):
        super().__init__(services, transport, request)
        self._sent_through = 0  # the highest eventId this connection has sent
        self._held: list | None = None  # live events waiting for a replay (or the engine's answer) to finish

    def ready(self) -> None:
        self._follow(None)
        orders = self.trading.open_orders(self.user_id)
        self.send("ACTIVE_ORDERS", {"orders": [wire.order(order) for order in orders]})

    def _follow(self, channel: str | None) -> None:
        """Follow one more stream of order events besides this session's own (None: only its own)."""
        own = channels.orders_of_session(self.session_id)
        self.hold("orders:", [own] if channel is None else [own, channel])

    @property
    def origin(self) -> Origin:
        """This connection and the request being handled: the hub delivers the answer of a trading call to it."""
        return Origin(self.session_id, self.request_id, self.request_type, self.received_at)

    def deliver(self, message_type, data_json, request_id, offset) -> bool:
        """Order events arrive in eventId order; drop one already replayed, unless it answers a request.

        While a replay runs, live events wait for it to finish, so that nothing overtakes the replay.
        """
        if offset is None:
            return self.send_json(message_type, data_json, request_id)
        if self._held is not None:
            self._held.append((message_type, data_json, request_id, offset))
            return True
        if offset <= self._sent_through and request_id is None:
            return True
        self._sent_through = max(self._sent_through, offset)
        return self.send_json(message_type, data_json, request_id)

    @handles("SUBSCRIBE_ORDERS", portfolioId=Id(), sinceEventId=Int(min=0))
    def subscribe_orders(self, portfolio_id, since_event_id):
        if portfolio_id is not None:
            self.services.book.tradable(self.user, portfolio_id)
        held = self._finish_replay()  # a replay this one replaces: what it held back waits for this one
        channel = (channels.orders_of_user(self.user_id) if portfolio_id is None
                   else channels.orders_of_portfolio(portfolio_id))
        last = self.trading.last_event_id(self.user_id)
        if since_event_id is None or since_event_id >= last:
            self._follow(channel)
            self._deliver_held(held)
            return Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "portfolioId": portfolio_id,
                                                    "recovered": since_event_id is None or since_event_id <= last,
                                                    "lastEventId": last})
        self._follow(None)  # only this connection's own events meanwhile, and those are held
        self._held = held
        self._replay(_Replay(channel, portfolio_id, since_event_id, self.request_id))
        return None

    def _replay(self, replay: _Replay) -> None:
        """Send the next page of stored events, or wait while the client has not read the last one."""
        if not self.is_open:
            return
        if self.buffered_bytes() > self.config.max_buffered_bytes // 4:
            self._arm_timer("replay", REPLAY_WAIT_S, lambda: self._replay(replay))
            return
        page = self.trading.events_after(self.user_id, replay.after, replay.portfolio_id, limit=self.replay_page)
        for event_id, event_type, payload in page:
            self.send_json(event_type, payload)
            replay.after, self._sent_through = event_id, max(self._sent_through, event_id)
        if len(page) == self.replay_page:
            self._arm_timer("replay", 0, lambda: self._replay(replay))
            return
        held = self._finish_replay()
        self._follow(replay.channel)
        last = self.trading.last_event_id(self.user_id)
        self.send("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "portfolioId": replay.portfolio_id,
                                             "recovered": True, "lastEventId": last}, request_id=replay.request_id)
        self._deliver_held(held)

    def _finish_replay(self) -> list:
        """Stop a replay in progress (if any); the live events it held back, in order."""
        self._cancel_timer("replay")
        held, self._held = self._held or [], None
        return held

    def _deliver_held(self, held: list) -> None:
        for message in held:
            self.deliver(*message)

    @handles("UNSUBSCRIBE_ORDERS")
    def unsubscribe_orders(self):
        self._follow(None)
        self._deliver_held(self._finish_replay())
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE"})

    @handles("SUBMIT_ORDER", portfolioId=Id(required=True), symbol=Symbol(required=True),
             side=Str(required=True, upper=True, choices=tuple(Side)),
             orderType=Str(required=True, upper=True, choices=tuple(OrderType)),
             quantity=Number(required=True), limitPrice=Money(), stopPrice=Money(),
             timeInForce=Str(default="DAY", upper=True, choices=tuple(TimeInForce)),
             clientOrderId=Str(max_len=64), note=Str(max_len=MAX_NOTE_LENGTH))
    def submit_order(self, portfolio_id, symbol, side, order_type, quantity, limit_price, stop_price,
                     time_in_force, client_order_id, note):
        problem = note_problem(note)  # the engine's own rule, here so that nothing of a bad note is ever stored
        if problem is not None:
            raise BadRequest(problem)
        limit_cents, limit_error = price_to_cents(limit_price)
        stop_cents, stop_error = price_to_cents(stop_price)
        request = OrderRequest(portfolio_id=portfolio_id, symbol=symbol, side=Side(side),
                               order_type=OrderType(order_type), quantity=_whole(quantity),
                               limit_price=limit_cents, stop_price=stop_cents,
                               time_in_force=TimeInForce(time_in_force), client_order_id=client_order_id or None,
                               note=note or None)
        self.trading.submit(self.user, request, origin=self.origin, price_error=limit_error or stop_error)

    @handles("CANCEL_ORDER", orderId=Id(required=True))
    def cancel_order(self, order_id):
        self.trading.cancel(self.user, order_id, origin=self.origin)

    @handles("MODIFY_ORDER", orderId=Id(required=True), quantity=Number(), limitPrice=Money(), stopPrice=Money())
    def modify_order(self, order_id, quantity, limit_price, stop_price):
        if quantity is None and limit_price is None and stop_price is None:
            raise BadRequest("MODIFY_ORDER needs quantity, limitPrice or stopPrice")
        limit_cents, limit_error = price_to_cents(limit_price)
        stop_cents, stop_error = price_to_cents(stop_price)
        if limit_error or stop_error:
            raise BadRequest(limit_error or stop_error)
        quantity = _whole(quantity)
        if quantity is not None and not isinstance(quantity, int):
            raise BadRequest("quantity must be a whole number of shares")
        self.trading.modify(self.user, order_id, quantity=quantity, limit_price=limit_cents,
                            stop_price=stop_cents, origin=self.origin)

    @handles("REQUEST_ORDER_STATUS", orderId=Id(required=True))
    def request_order_status(self, order_id):
        return Reply("ORDER_STATUS", {"order": wire.order(self.trading.readable_order(self.user, order_id))})

    @handles("REQUEST_ORDER_HISTORY", portfolioId=Id(), symbol=Symbol(),
             status=Str(upper=True, choices=tuple(OrderStatus)),
             limit=Int(default=100, min=1, max=ORDER_HISTORY_LIMIT), before=Str(max_len=200))
    def request_order_history(self, portfolio_id, symbol, status, limit, before):
        orders, cursor = self.trading.order_history(self.user, portfolio_id=portfolio_id, symbol=symbol,
                                                    status=status, limit=limit, before=before)
        return Reply("ORDER_HISTORY", {"orders": [wire.order(order) for order in orders], "nextCursor": cursor})

