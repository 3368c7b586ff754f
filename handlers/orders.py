"""/ws/orders: submit, cancel, modify, status, history, and the durable per-user event stream (PROTOCOL.md, Orders)."""

from domain.errors import BadRequest
from domain.money import price_to_cents
from domain.trading import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from realtime.schema import Id, Int, Money, Number, Str
from realtime.wire import orders as wire_orders
from services.trading import StoredEvent

from .base import Endpoint, Reply, handles

__all__ = ["OrdersEndpoint", "deliver_order_event"]

SYMBOL = dict(upper=True, max_len=12)
MAX_HISTORY = 500
ALL = "*"


def _whole(quantity):
    """1.0 from JSON is 1; 1.5 stays 1.5 and the engine rejects it INVALID_QUANTITY (a record, not an ERROR)."""
    return int(quantity) if isinstance(quantity, float) and quantity.is_integer() else quantity


class OrdersEndpoint(Endpoint):
    """One connection's order session: its event subscription and its order requests."""

    name = "orders"
    auth_required = True

    def __init__(self, services, transport, request):
        super().__init__(services, transport, request)
        self.subscription: str | None = None  # None, ALL, or one portfolio id

    @property
    def trading(self):
        return self.services.trading

    def ready(self) -> None:
        orders = self.trading.engine.open_orders(user_id=self.user_id)
        self.send("ACTIVE_ORDERS", {"orders": [wire_orders.order(order) for order in orders]})

    def wants(self, event: StoredEvent) -> bool:
        return self.subscription == ALL or self.subscription == event.portfolio_id

    @staticmethod
    def _replies(stored: list[StoredEvent]) -> list[Reply]:
        """The first event is the direct reply; the rest (immediate fills) are pushes on this connection."""
        return [Reply(event.type, data_json=event.payload, direct=index == 0) for index, event in enumerate(stored)]

    @handles("SUBSCRIBE_ORDERS", portfolioId=Id(), sinceEventId=Int(min=0))
    def subscribe_orders(self, portfolio_id, since_event_id):
        if portfolio_id is not None:
            self.trading.own_portfolio(self.user, portfolio_id)
        storage = self.trading.storage
        last = storage.last_event_id(self.user_id)
        replies = []
        if since_event_id is not None:
            replies = [Reply(event_type, data_json=payload, direct=False) for _, event_type, payload
                       in storage.events_after(self.user_id, since_event_id, portfolio_id=portfolio_id)]
        self.subscription = portfolio_id or ALL
        recovered = since_event_id is None or since_event_id <= last
        return replies + [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "portfolioId": portfolio_id,
                                                           "recovered": recovered, "lastEventId": last})]

    @handles("UNSUBSCRIBE_ORDERS")
    def unsubscribe_orders(self):
        self.subscription = None
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE"})

    @handles("SUBMIT_ORDER", portfolioId=Id(required=True), symbol=Str(required=True, **SYMBOL),
             side=Str(required=True, upper=True, choices=tuple(Side)),
             orderType=Str(required=True, upper=True, choices=tuple(OrderType)),
             quantity=Number(required=True), limitPrice=Money(), stopPrice=Money(),
             timeInForce=Str(default="DAY", upper=True, choices=tuple(TimeInForce)),
             clientOrderId=Str(max_len=64))
    def submit_order(self, portfolio_id, symbol, side, order_type, quantity, limit_price, stop_price,
                     time_in_force, client_order_id):
        limit_cents, limit_error = price_to_cents(limit_price)
        stop_cents, stop_error = price_to_cents(stop_price)
        request = OrderRequest(portfolio_id=portfolio_id, symbol=symbol, side=Side(side),
                               order_type=OrderType(order_type), quantity=_whole(quantity),
                               limit_price=limit_cents, stop_price=stop_cents,
                               time_in_force=TimeInForce(time_in_force), client_order_id=client_order_id or None)
        stored = self.trading.submit(self.user, request, session_id=self.session_id,
                                     price_error=limit_error or stop_error)
        return self._replies(stored)

    @handles("CANCEL_ORDER", orderId=Id(required=True))
    def cancel_order(self, order_id):
        return self._replies(self.trading.cancel(self.user, order_id, session_id=self.session_id))

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
        return self._replies(self.trading.modify(self.user, order_id, quantity=quantity, limit_price=limit_cents,
                                                 stop_price=stop_cents, session_id=self.session_id))

    @handles("REQUEST_ORDER_STATUS", orderId=Id(required=True))
    def request_order_status(self, order_id):
        return Reply("ORDER_STATUS", {"order": wire_orders.order(self.trading.readable_order(self.user, order_id))})

    @handles("REQUEST_ORDER_HISTORY", portfolioId=Id(), symbol=Str(**SYMBOL),
             status=Str(upper=True, choices=tuple(OrderStatus)), limit=Int(default=100, min=1, max=MAX_HISTORY),
             before=Str(max_len=200))
    def request_order_history(self, portfolio_id, symbol, status, limit, before):
        if portfolio_id is not None:
            ledger = self.trading.readable_portfolio(self.user, portfolio_id)
            user_ids = [ledger.owner_id]
        else:
            user_ids = [self.user_id]
        orders, cursor = self.trading.storage.order_history(user_ids=user_ids, portfolio_id=portfolio_id,
                                                            symbol=symbol, status=status, limit=limit,
                                                            before=before)
        return Reply("ORDER_HISTORY", {"orders": [wire_orders.order(order) for order in orders], "nextCursor": cursor})


def deliver_order_event(hub, event: StoredEvent) -> None:
    """Send a committed order event to the user's other subscribed connections and to the order's submitter."""
    for conn in hub.of_user(event.user_id, OrdersEndpoint.name):
        is_origin = conn.session_id == event.origin_session
        if event.direct and is_origin:
            continue  # the requesting connection already sent it (with its requestId)
        if is_origin or conn.wants(event):
            conn.send_json(event.type, event.payload)

