"""The orders family on the wire, key for key: Order, a journal entry, a POSITION_DETAILS trade, events' data."""

from dataclasses import replace

from domain.trading import (
    EventKind,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    TradeEvent,
)
from realtime.protocol import encode_data
from realtime.wire import orders as wire

T0 = 1_764_126_000_123  # 2025-11-26T03:00:00.123Z


def assert_exactly(actual: dict, expected: dict) -> None:
    """Equal values, in the same key order: the bytes on the wire are the same."""
    assert list(actual.items()) == list(expected.items())
    assert encode_data(actual) == encode_data(expected)


def partly_filled() -> Order:
    # A GTC limit buy of 10, 2 filled at 100.02 and 100.03 (average 100.025, sent half-even as 100.02).
    return Order(
        order_id="O7", client_order_id="c-1", portfolio_id="P1", user_id="u1", symbol="ACME", side=Side.BUY,
        order_type=OrderType.STOP_LIMIT, quantity=10, limit_price=10_050, stop_price=10_010,
        time_in_force=TimeInForce.GTC, status=OrderStatus.PARTIALLY_FILLED, created_at_ms=T0, updated_at_ms=T0 + 61_877,
        day_index=3, filled_quantity=2, filled_notional_cents=20_005, commission_cents=495,
        reserved_cash_cents=80_400, stop_triggered=True, placed_by="u9", note="Breakout;\nsmall size first.",
    )


def fill() -> Fill:
    return Fill("E3", "O7", "P1", "u1", "ACME", Side.BUY, 1, 10_003, 0, T0 + 61_877, 5_000_000)


def test_an_order_is_the_protocols_order_object():
    assert_exactly(wire.order(partly_filled()), {
        "orderId": "O7",
        "clientOrderId": "c-1",
        "portfolioId": "P1",
        "userId": "u1",
        "symbol": "ACME",
        "side": "BUY",
        "orderType": "STOP_LIMIT",
        "quantity": 10,
        "filledQuantity": 2,
        "remainingQuantity": 8,
        "limitPrice": 100.5,
        "stopPrice": 100.1,
        "timeInForce": "GTC",
        "status": "PARTIALLY_FILLED",
        "averageFillPrice": 100.02,
        "commission": 4.95,
        "rejectReason": None,
        "createdAt": "2025-11-26T03:00:00.123Z",
        "updatedAt": "2025-11-26T03:01:02.000Z",
        "note": "Breakout;\nsmall size first.",
        "placedBy": "u9",
    })


def test_an_order_placed_by_its_owner_without_a_note_has_both_null():
    data = wire.order(replace(partly_filled(), placed_by=None, note=None))
    assert (data["note"], data["placedBy"]) == (None, None)


def test_a_journal_entry_is_the_order_as_placed_where_it_got_to_and_why():
    assert_exactly(wire.journal_entry(partly_filled()), {
        "orderId": "O7",
        "portfolioId": "P1",
        "time": "2025-11-26T03:00:00.123Z",
        "symbol": "ACME",
        "side": "BUY",
        "orderType": "STOP_LIMIT",
        "quantity": 10,
        "filledQuantity": 2,
        "averageFillPrice": 100.02,
        "status": "PARTIALLY_FILLED",
        "note": "Breakout;\nsmall size first.",
        "placedBy": "u9",
    })


def test_a_rejected_order_has_no_prices_it_was_not_given_and_nothing_left():
    rejected = replace(partly_filled(), client_order_id=None, order_type=OrderType.MARKET, limit_price=None,
                       stop_price=None, status=OrderStatus.REJECTED, filled_quantity=0, filled_notional_cents=0,
                       commission_cents=0, reject_reason=RejectReason.INSUFFICIENT_FUNDS, error="no money")
    data = wire.order(rejected)
    assert (data["clientOrderId"], data["limitPrice"], data["stopPrice"], data["averageFillPrice"]) == (
        None, None, None, None)
    assert (data["remainingQuantity"], data["commission"], data["rejectReason"]) == (0, 0.0, "INSUFFICIENT_FUNDS")


def test_a_trade_is_listed_as_position_details_lists_it():
    assert_exactly(wire.trade(fill()), {
        "executionId": "E3",
        "orderId": "O7",
        "symbol": "ACME",
        "side": "BUY",
        "quantity": 1,
        "price": 100.03,
        "commission": 0.0,
        "time": T0 + 61_877,
        "marketTime": 5_000_000,
    })


def test_an_execution_report_is_the_fill_with_the_orders_totals_after_it():
    assert_exactly(wire.event(TradeEvent(EventKind.EXECUTION_REPORT, partly_filled(), fill())), {
        "orderId": "O7",
        "executionId": "E3",
        "portfolioId": "P1",
        "symbol": "ACME",
        "side": "BUY",
        "fillQuantity": 1,
        "fillPrice": 100.03,
        "cumulativeQuantity": 2,
        "leavesQuantity": 8,
        "averagePrice": 100.02,
        "commission": 0.0,
        "time": T0 + 61_877,
    })


def test_an_average_of_fills_at_different_prices_is_sent_rounded_to_the_cent():
    three = replace(partly_filled(), quantity=3, filled_quantity=3, filled_notional_cents=30_007,
                    status=OrderStatus.FILLED)
    report = wire.event(TradeEvent(EventKind.EXECUTION_REPORT, three, fill()))
    assert (report["averagePrice"], report["cumulativeQuantity"], report["leavesQuantity"]) == (100.02, 3, 0)


def test_other_events_carry_the_order_and_a_rejection_its_reason_and_error():
    order = partly_filled()
    for kind in (EventKind.ORDER_SUBMITTED, EventKind.ORDER_MODIFIED, EventKind.ORDER_PARTIALLY_FILLED,
                 EventKind.ORDER_FILLED):
        assert_exactly(wire.event(TradeEvent(kind, order)), {"order": wire.order(order)})
    rejected = replace(order, status=OrderStatus.REJECTED, reject_reason=RejectReason.UNKNOWN_SYMBOL,
                       error="unknown symbol 'NOPE'")
    assert_exactly(wire.event(TradeEvent(EventKind.ORDER_REJECTED, rejected)), {
        "order": wire.order(rejected), "reason": "UNKNOWN_SYMBOL", "error": "unknown symbol 'NOPE'"})


def test_a_cancellation_gives_the_systems_reason_and_none_when_the_user_cancelled():
    expired = replace(partly_filled(), status=OrderStatus.EXPIRED, error="the trading day ended")
    assert_exactly(wire.event(TradeEvent(EventKind.ORDER_CANCELLED, expired)), {
        "order": wire.order(expired), "reason": "the trading day ended"})
    cancelled = replace(partly_filled(), status=OrderStatus.CANCELLED)
    assert_exactly(wire.event(TradeEvent(EventKind.ORDER_CANCELLED, cancelled)), {"order": wire.order(cancelled)})
