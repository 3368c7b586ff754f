"""The orders family on the wire: the Order object, a journal entry, a POSITION_DETAILS trade, order events."""

from domain.orders import OrderRules
from domain.trading import EventKind, Fill, Order, TradeEvent
from realtime.wire import iso_ms, money

__all__ = ["order", "journal_entry", "trade", "event", "rules"]


def order(o: Order) -> dict:
    """The protocol's Order object."""
    return {
        "orderId": o.order_id,
        "clientOrderId": o.client_order_id,
        "portfolioId": o.portfolio_id,
        "userId": o.user_id,
        "symbol": o.symbol,
        "side": str(o.side),
        "orderType": str(o.order_type),
        "quantity": o.quantity,
        "filledQuantity": o.filled_quantity,
        "remainingQuantity": o.remaining_quantity,
        "limitPrice": money(o.limit_price),
        "stopPrice": money(o.stop_price),
        "timeInForce": str(o.time_in_force),
        "status": str(o.status),
        "averageFillPrice": money(o.average_fill_price),
        "commission": money(o.commission_cents),
        "rejectReason": None if o.reject_reason is None else str(o.reject_reason),
        "createdAt": iso_ms(o.created_at_ms),
        "updatedAt": iso_ms(o.updated_at_ms),
        "note": o.note,
        "placedBy": o.placed_by,
    }


def journal_entry(o: Order) -> dict:
    """One entry of a student's trade journal (GET /api/journal): an order as placed, where it got to, and why."""
    return {
        "orderId": o.order_id,
        "portfolioId": o.portfolio_id,
        "time": iso_ms(o.created_at_ms),
        "symbol": o.symbol,
        "side": str(o.side),
        "orderType": str(o.order_type),
        "quantity": o.quantity,
        "filledQuantity": o.filled_quantity,
        "averageFillPrice": money(o.average_fill_price),
        "status": str(o.status),
        "note": o.note,
        "placedBy": o.placed_by,
    }


def trade(fill: Fill) -> dict:
    """A trade as POSITION_DETAILS lists it."""
    return {
        "executionId": fill.execution_id,
        "orderId": fill.order_id,
        "symbol": fill.symbol,
        "side": str(fill.side),
        "quantity": fill.quantity,
        "price": money(fill.price_cents),
        "commission": money(fill.commission_cents),
        "time": fill.time_ms,
        "marketTime": fill.market_time_ms,
    }


def event(e: TradeEvent) -> dict:
    """An order event's `data` as PROTOCOL.md defines it (the eventId is added by whoever numbered it).

    EXECUTION_REPORT is the fill with the order's totals after it; every other kind carries the Order, plus the
    `reason` and `error` of a rejection, or the system's `reason` for a cancellation (none when the user cancelled).
    """
    if e.kind is EventKind.EXECUTION_REPORT:
        fill, o = e.fill, e.order
        return {
            "orderId": o.order_id,
            "executionId": fill.execution_id,
            "portfolioId": o.portfolio_id,
            "symbol": fill.symbol,
            "side": str(fill.side),
            "fillQuantity": fill.quantity,
            "fillPrice": money(fill.price_cents),
            "cumulativeQuantity": o.filled_quantity,
            "leavesQuantity": o.remaining_quantity,
            "averagePrice": money(o.average_fill_price),
            "commission": money(fill.commission_cents),
            "time": fill.time_ms,
        }
    data = {"order": order(e.order)}
    if e.kind is EventKind.ORDER_REJECTED:
        data["reason"] = str(e.order.reject_reason)
        data["error"] = e.order.error
    elif e.kind is EventKind.ORDER_CANCELLED and e.order.error:
        data["reason"] = e.order.error
    return data


def rules(r: OrderRules) -> dict:
    """The order rules a client checks an order against before sending it (the dashboard's ticket)."""
    return {"maxQuantity": r.max_quantity, "maxPrice": money(r.max_price_cents),
            "marketBuffer": float(r.market_buffer), "allowShort": r.allow_short}
