"""Storage of trading: orders, fills, positions, ledgers, per-user order events, history paging, values, reconcile.

Tests taking `storage` or `open_storage` run on SQLite and on PostgreSQL; see tests/test_storage.py.
"""

import json
import multiprocessing
import os
import random
import sqlite3
import threading
from dataclasses import asdict, replace

import pytest

from domain.clock import FakeClock
from domain.errors import BadRequest, LimitExceeded, NotFound
from domain.trading import (
    EventKind,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    PortfolioLedger,
    Position,
    RejectReason,
    Side,
    TimeInForce,
    TradeEvent,
)
from domain.users import Role, UnknownUser
from realtime.protocol import encode_data
from realtime.wire import orders as wire_orders
from services.storage import (
    MAX_PORTFOLIOS_PER_USER,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    FencedOut,
    Storage,
    StorageError,
    StorageFailure,
    ValuePoint,
)
from services.storage.history import _encode_cursor

CASH = 10_000_000  # 100000.00
T0 = 1_764_126_000_000  # epoch ms

sqlite_only = pytest.mark.parametrize("storage_backend", ["sqlite"])

# The version-1 schema exactly as the first release created it, to test the upgrade from it.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NULL,
    role          TEXT    NOT NULL CHECK (role IN ('student', 'teacher', 'admin')),
    created_at    REAL    NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS portfolios (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id   INTEGER NOT NULL REFERENCES users (id),
    name       TEXT    NOT NULL,
    cash_cents INTEGER NOT NULL,
    created_at REAL    NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS portfolios_by_owner ON portfolios (owner_id);
"""


@pytest.fixture
def clock():
    return FakeClock(T0 / 1000)


def new_user(storage, name):
    """(user id, id of the user's Main portfolio), as the engine sees them: strings."""
    user = storage.create_user(name, name.title(), None, Role.STUDENT, CASH)
    return str(user.id), storage.portfolio_ids_of(user.id)[0]


@pytest.fixture
def ada(storage):
    return new_user(storage, "ada")


@pytest.fixture
def bob(storage):
    return new_user(storage, "bob")


def make_order(order_id, owner, *, symbol="ACME", side=Side.BUY, order_type=OrderType.LIMIT, quantity=10,
               limit_price=10_000, created=T0, client=None, **changes) -> Order:
    user_id, portfolio_id = owner
    order = Order(order_id=order_id, client_order_id=client, portfolio_id=portfolio_id, user_id=user_id,
                  symbol=symbol, side=side, order_type=order_type, quantity=quantity, limit_price=limit_price,
                  stop_price=None, time_in_force=TimeInForce.DAY, status=OrderStatus.NEW, created_at_ms=created,
                  updated_at_ms=created, day_index=0)
    for name, value in changes.items():
        setattr(order, name, value)
    return order


def submitted(order) -> TradeEvent:
    return TradeEvent(EventKind.ORDER_SUBMITTED, order.snapshot())


def fill_order(order, execution_id, quantity, price, commission=0, *, at=T0) -> list[TradeEvent]:
    """Fill `order` as the engine would and return its EXECUTION_REPORT and fill-status events."""
    fill = Fill(execution_id, order.order_id, order.portfolio_id, order.user_id, order.symbol, order.side,
                quantity, price, commission, at, at * 60)
    order.filled_quantity += quantity
    order.filled_notional_cents += quantity * price
    order.commission_cents += commission
    order.updated_at_ms = at
    done = order.filled_quantity == order.quantity
    order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
    return [TradeEvent(EventKind.EXECUTION_REPORT, order.snapshot(), fill),
            TradeEvent(EventKind.ORDER_FILLED if done else EventKind.ORDER_PARTIALLY_FILLED, order.snapshot())]


def ledger(owner, cash=CASH, commissions=0, *positions, name="Main") -> PortfolioLedger:
    user_id, portfolio_id = owner
    return PortfolioLedger(portfolio_id, user_id, name, CASH, cash, 0, commissions,
                           {p.symbol: p for p in positions})


def table_counts(storage):
    return {table: storage._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("orders", "fills", "positions", "order_events")}


def trade_scenario(storage, ada, bob):
    """Ada: a partly filled buy, a resting stop-limit with a clientOrderId. Bob: a filled buy and a rejection."""
    o1 = make_order("O1", ada, quantity=10, limit_price=10_000, reserved_cash_cents=40_000)
    o3 = make_order("O3", ada, order_type=OrderType.STOP_LIMIT, quantity=1, limit_price=5_000, client="c-1",
                    created=T0 + 2, time_in_force=TimeInForce.GTC, stop_triggered=True)
    o3.stop_price = 5_100
    o2 = make_order("O2", bob, symbol="ZETA", order_type=OrderType.MARKET, quantity=5, limit_price=None,
                    created=T0 + 1)
    o4 = make_order("O4", bob, quantity=10**6, created=T0 + 3, status=OrderStatus.REJECTED,
                    reject_reason=RejectReason.INSUFFICIENT_FUNDS, error="needs 100000.00 more")
    events = [submitted(o1), *fill_order(o1, "E1", 6, 9_990, 100), submitted(o2), *fill_order(o2, "E2", 5, 2_000, 50),
              submitted(o3), TradeEvent(EventKind.ORDER_REJECTED, o4.snapshot())]
    ledgers = [
        ledger(ada, CASH - 6 * 9_990 - 100, 100, Position("ACME", 6, 6, 59_940, 0, stop_loss_cents=9_000)),
        ledger(bob, CASH - 10_000 - 50, 50, Position("ZETA", 5, 0, 10_000, 0)),
    ]
    return events, ledgers, {order.order_id: order for order in (o1, o2, o3, o4)}


# -- round trip ---------------------------------------------------------------------------


def test_saved_trading_comes_back_after_reopening(open_storage):
    with open_storage() as first:
        ada, bob = new_user(first, "ada"), new_user(first, "bob")
        events, ledgers, orders = trade_scenario(first, ada, bob)
        first.save_trading(events, ledgers, now_ms=T0)

    with open_storage() as again:
        loaded, open_orders = again.load_trading(CASH)
        unreserved = [replace(book, positions={s: replace(p, reserved_quantity=0) for s, p in book.positions.items()})
                      for book in ledgers]
        assert loaded == unreserved
        assert all(book.reserved_cash_cents == 0 for book in loaded)
        # Open orders only, oldest first, each its last snapshot (with the cash it holds: see load_open_orders).
        assert open_orders == [orders["O1"], orders["O3"]] and open_orders[0].reserved_cash_cents == 40_000
        assert open_orders[1].stop_triggered is True and open_orders[1].stop_price == 5_100
        assert isinstance(open_orders[0].side, Side) and isinstance(open_orders[0].status, OrderStatus)
        assert again.order_by_id("O4") == orders["O4"]
        assert again.order_by_id("O4").reject_reason is RejectReason.INSUFFICIENT_FUNDS
        assert again.order_by_id("O2").status is OrderStatus.FILLED
        assert [f.execution_id for f in again.fills_for(bob[1])] == ["E2"]
        assert again.fills_for(bob[1])[0] == events[4].fill
        assert again.last_event_id(ada[0]) == 4 and again.last_event_id(bob[0]) == 4


def test_the_last_snapshot_of_an_order_in_a_batch_wins(storage, ada):
    order = make_order("O1", ada, quantity=10)
    events = [submitted(order), *fill_order(order, "E1", 4, 10_000), *fill_order(order, "E2", 6, 9_999)]
    storage.save_trading(events, [], now_ms=T0)
    stored = storage.order_by_id("O1")
    assert stored == order and stored.status is OrderStatus.FILLED and stored.filled_quantity == 10
    assert storage.load_trading(CASH)[1] == []


def test_later_snapshots_update_the_stored_order_in_later_calls(storage, ada):
    order = make_order("O1", ada, quantity=10)
    storage.save_trading([submitted(order)], [], now_ms=T0)
    order.quantity, order.limit_price, order.updated_at_ms = 8, 9_500, T0 + 5
    storage.save_trading([TradeEvent(EventKind.ORDER_MODIFIED, order.snapshot())], [], now_ms=T0 + 5)
    assert storage.order_by_id("O1") == order


def test_order_snapshots_without_an_event_are_stored_too(storage, ada):
    stop = make_order("O1", ada, order_type=OrderType.STOP, limit_price=None, reserved_cash_cents=12_345)
    stop.stop_price = 9_000
    storage.save_trading([submitted(stop)], [], now_ms=T0)
    triggered = replace(stop, stop_triggered=True, updated_at_ms=T0 + 9)  # a stop that only triggered: no event
    assert storage.save_trading([], [], now_ms=T0 + 9, orders=[triggered]) == []
    assert storage.load_trading(CASH)[1] == [triggered]
    assert storage.last_event_id(ada[0]) == 1 and storage.client_order(ada[0], "x") is None


def test_empty_save_stores_nothing_and_returns_nothing(storage, ada):
    assert storage.save_trading([], [], now_ms=T0) == []
    assert table_counts(storage) == {"orders": 0, "fills": 0, "positions": 0, "order_events": 0}


def test_fills_are_listed_last_executed_first_and_by_symbol(storage, ada):
    buy = make_order("O1", ada, quantity=30)
    other = make_order("O2", ada, symbol="ZETA", quantity=2)
    # E9 and E10 share a millisecond: execution order, not text order, decides.
    events = [submitted(buy), submitted(other), *fill_order(buy, "E9", 10, 10_000),
              *fill_order(other, "E10", 2, 500), *fill_order(buy, "E11", 20, 10_001, at=T0 + 1)]
    storage.save_trading(events, [], now_ms=T0)
    assert [f.execution_id for f in storage.fills_for(ada[1])] == ["E11", "E10", "E9"]
    assert [f.execution_id for f in storage.fills_for(ada[1], "ACME")] == ["E11", "E9"]
    assert [f.execution_id for f in storage.fills_for(ada[1], "ACME", limit=1)] == ["E11"]
    assert storage.fills_for(ada[1], "NOPE") == [] and storage.fills_for("999") == []
    assert storage.fills_for("x'; --") == []


def test_positions_are_rewritten_whole_and_flat_ones_kept_only_with_realized_pnl(storage, ada):
    storage.save_trading([], [ledger(ada, CASH, 0, Position("ACME", 5, 0, 500, 0), Position("ZETA", 1, 0, 7, 0))],
                         now_ms=T0)
    storage.save_trading([], [ledger(ada, CASH, 0, Position("ACME", 0, 0, 0, 120), Position("EMPTY"))], now_ms=T0)
    (book,), _ = storage.load_trading(CASH)
    assert book.positions == {"ACME": Position("ACME", 0, 0, 0, 120)}


@sqlite_only
def test_a_ledger_is_written_again_only_when_what_is_stored_of_it_changed(storage, ada):
    """Most orders change only a reservation, which is not stored: no UPDATE, DELETE or INSERT of the ledger."""
    statements = []
    storage._db.set_trace_callback(statements.append)

    def ledger_writes():
        found = [sql for sql in statements if "portfolios SET" in sql or "positions" in sql]
        statements.clear()
        return len(found)

    held = Position("ACME", 5, 0, 500, 0)
    storage.save_trading([], [ledger(ada, CASH - 500, 0, held)], now_ms=T0)
    assert ledger_writes() > 0  # the first time this process writes it
    reserved = ledger(ada, CASH - 500, 0, Position("ACME", 5, 2, 500, 0))  # two shares reserved: not stored
    reserved.reserved_cash_cents = 900
    storage.save_trading([], [reserved], now_ms=T0)
    assert ledger_writes() == 0
    storage.save_trading([], [ledger(ada, CASH - 500, 0, Position("ACME", 5, 0, 500, 0, stop_loss_cents=90))],
                         now_ms=T0)
    assert ledger_writes() > 0  # a stop-loss is stored

    storage._db.execute("PRAGMA query_only = 1")  # a write the database refuses is not remembered as written
    with pytest.raises(StorageFailure):
        storage.save_trading([], [ledger(ada, CASH - 900, 0, held)], now_ms=T0)
    storage._db.execute("PRAGMA query_only = 0")
    statements.clear()
    storage.save_trading([], [ledger(ada, CASH - 900, 0, held)], now_ms=T0)
    assert ledger_writes() > 0
    storage._db.set_trace_callback(None)
    (book,), _ = storage.load_trading(CASH)
    assert (book.cash_cents, book.positions) == (CASH - 900, {"ACME": held})


# -- the event stream -----------------------------------------------------------------------


def test_event_ids_rise_by_one_per_user_and_users_are_independent(storage, ada, bob):
    a1, a2, b1 = make_order("O1", ada), make_order("O2", ada), make_order("O3", bob)
    first = storage.save_trading([submitted(a1), submitted(b1), submitted(a2)], [], now_ms=T0)
    assert [(event.user_id, event_id) for event, event_id, _ in first] == [(ada[0], 1), (bob[0], 1), (ada[0], 2)]
    second = storage.save_trading([*fill_order(b1, "E1", 10, 10_000), *fill_order(a1, "E2", 1, 10_000)], [],
                                  now_ms=T0 + 1)
    assert [(event.user_id, event_id) for event, event_id, _ in second] == [
        (bob[0], 2), (bob[0], 3), (ada[0], 3), (ada[0], 4)]
    assert storage.last_event_id(ada[0]) == 4 and storage.last_event_id(int(bob[0])) == 3
    assert storage.last_event_id("999") == 0 and storage.last_event_id("nobody") == 0


def test_event_ids_continue_after_reopening(open_storage):
    with open_storage() as first:
        ada = new_user(first, "ada")
        first.save_trading([submitted(make_order("O1", ada))], [], now_ms=T0)
    with open_storage() as again:
        (_, event_id, _), = again.save_trading([submitted(make_order("O2", ada))], [], now_ms=T0)
        assert event_id == 2


def test_payload_is_the_wire_data_with_its_event_id_exactly_as_stored(storage, ada):
    order = make_order("O1", ada, quantity=3)
    saved = storage.save_trading([submitted(order), *fill_order(order, "E1", 3, 12_345, 7)], [], now_ms=T0)
    stored = storage.events_after(ada[0], 0, limit=100)
    assert [(event_id, payload) for _, event_id, payload in saved] == [(i, p) for i, _, p in stored]
    for event, event_id, payload in saved:
        assert payload == encode_data({**wire_orders.event(event), "eventId": event_id})
        assert json.loads(payload)["eventId"] == event_id
    assert [event_type for _, event_type, _ in stored] == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_FILLED"]
    assert json.loads(stored[1][2])["executionId"] == "E1" and json.loads(stored[1][2])["fillPrice"] == 123.45


def test_events_after_replays_in_order_with_and_without_a_portfolio(storage, ada):
    second = (ada[0], storage.create_portfolio(ada[0], "Second", CASH).portfolio_id)
    in_main, in_second = make_order("O1", ada), make_order("O2", second)
    storage.save_trading([submitted(in_main), submitted(in_second), *fill_order(in_main, "E1", 10, 10_000),
                          *fill_order(in_second, "E2", 4, 10_000)], [], now_ms=T0)
    assert [event_id for event_id, _, _ in storage.events_after(ada[0], 0, limit=100)] == [1, 2, 3, 4, 5, 6]
    assert [event_id for event_id, _, _ in storage.events_after(ada[0], 3, limit=100)] == [4, 5, 6]
    of_first = storage.events_after(ada[0], 0, portfolio_id=ada[1], limit=100)
    assert [event_id for event_id, _, _ in of_first] == [1, 3, 4]
    of_second = storage.events_after(ada[0], 1, portfolio_id=second[1], limit=100)
    assert [event_id for event_id, _, _ in of_second] == [2, 5, 6]
    assert [event_id for event_id, _, _ in storage.events_after(ada[0], 0, limit=2)] == [1, 2]
    assert storage.events_after(ada[0], 6, limit=100) == []
    assert storage.events_after(ada[0], 0, portfolio_id="nope", limit=100) == []
    assert storage.events_after("999", 0, limit=100) == []


def test_client_order_returns_the_order_now_with_its_first_event(storage, ada, bob):
    order = make_order("O1", ada, client="c-1", quantity=5)
    storage.save_trading([submitted(make_order("O0", ada))], [], now_ms=T0)
    first = storage.save_trading([submitted(order)], [], now_ms=T0)
    storage.save_trading(fill_order(order, "E1", 5, 10_000), [], now_ms=T0 + 1)
    found, event_id, payload = storage.client_order(ada[0], "c-1")
    assert found == order and found.status is OrderStatus.FILLED
    assert (event_id, payload) == first[0][1:] and event_id == 2
    assert json.loads(payload)["order"]["status"] == "NEW"
    assert storage.client_order(bob[0], "c-1") is None  # clientOrderIds belong to one user
    assert storage.client_order(ada[0], "c-2") is None and storage.client_order(ada[0], "\ud800") is None


def test_a_second_order_with_the_same_client_order_id_is_refused_and_nothing_is_stored(storage, ada, bob, refused):
    storage.save_trading([submitted(make_order("O1", ada, client="c-1"))], [], now_ms=T0)
    before = table_counts(storage)
    with pytest.raises(refused):
        storage.save_trading([submitted(make_order("O2", ada, client="c-1"))], [ledger(ada, 1)], now_ms=T0)
    assert table_counts(storage) == before and storage.last_event_id(ada[0]) == 1
    assert storage.load_trading(CASH)[0][0].cash_cents == CASH
    storage.save_trading([submitted(make_order("O3", bob, client="c-1"))], [], now_ms=T0)  # another user may


def test_a_rejected_order_keeps_a_fractional_quantity_but_no_other_order_may_have_one(storage, ada, refused):
    rejected = make_order("O1", ada, quantity=1.5, status=OrderStatus.REJECTED,
                          reject_reason=RejectReason.INVALID_QUANTITY, error="quantity must be a whole number")
    (_, _, payload), = storage.save_trading([TradeEvent(EventKind.ORDER_REJECTED, rejected.snapshot())], [], now_ms=T0)
    assert storage.order_by_id("O1") == rejected and json.loads(payload)["order"]["quantity"] == 1.5
    with pytest.raises(refused):
        storage.save_trading([submitted(make_order("O2", ada, quantity=1.5))], [], now_ms=T0)
    with pytest.raises(refused):  # a float even when whole, as SQLite keeps a REAL a REAL
        storage.save_trading([submitted(make_order("O2", ada, quantity=2.0))], [], now_ms=T0)
    assert storage.order_by_id("O2") is None
    whole = make_order("O3", ada, quantity=2.0, status=OrderStatus.REJECTED,
                       reject_reason=RejectReason.INVALID_QUANTITY, error="x")
    storage.save_trading([TradeEvent(EventKind.ORDER_REJECTED, whole.snapshot())], [], now_ms=T0)
    assert type(storage.order_by_id("O3").quantity) is float and type(storage.order_by_id("O1").quantity) is float


def test_order_by_id_finds_any_status_and_nothing_for_strangers(storage, ada):
    order = make_order("O1", ada, status=OrderStatus.CANCELLED, error="cancelled by the user")
    storage.save_trading([TradeEvent(EventKind.ORDER_CANCELLED, order.snapshot())], [], now_ms=T0)
    assert storage.order_by_id("O1") == order
    assert storage.order_by_id("O2") is None and storage.order_by_id("\ud800") is None
    assert storage.order_by_id(1) is None


# -- the trade journal: notes and who placed an order ---------------------------------------


def test_a_note_and_who_placed_an_order_are_stored_and_read_back_everywhere(open_storage):
    note = "Earnings beat; buying the dip.\nSecond line\twith a tab, ünïcödé ✓ '; DROP TABLE orders; --"
    with open_storage() as first:
        ada, bob = new_user(first, "ada"), new_user(first, "bob")
        order = make_order("O1", ada, client="c-1", note=note, placed_by=bob[0], reserved_cash_cents=100_000)
        saved = first.save_trading([submitted(order)], [], now_ms=T0)
        assert json.loads(saved[0][2])["order"]["note"] == note
        assert json.loads(saved[0][2])["order"]["placedBy"] == bob[0]
    with open_storage() as again:  # after a restart
        assert again.order_by_id("O1") == order and again.order_by_id("O1").placed_by == bob[0]
        assert again.load_trading(CASH)[1] == [order]
        assert again.client_order(ada[0], "c-1")[0].note == note
        assert again.order_history(user_ids=[ada[0]])[0] == [order]
        (_, _, payload), = again.events_after(ada[0], 0, limit=10)
        assert json.loads(payload)["order"]["note"] == note


def test_an_order_without_a_note_reads_back_with_none_placed_by_its_owner(storage, ada):
    order = make_order("O1", ada)
    (_, _, payload), = storage.save_trading([submitted(order)], [], now_ms=T0)
    stored = storage.order_by_id("O1")
    assert (stored.note, stored.placed_by, stored.placer) == (None, None, ada[0])
    assert json.loads(payload)["order"]["note"] is None and json.loads(payload)["order"]["placedBy"] is None


def test_the_note_and_the_placer_are_fixed_when_the_order_is_first_stored(storage, ada, bob):
    order = make_order("O1", ada, quantity=10, note="the first reason")
    storage.save_trading([submitted(order)], [], now_ms=T0)
    order.quantity, order.updated_at_ms = 12, T0 + 5
    storage.save_trading([TradeEvent(EventKind.ORDER_MODIFIED, order.snapshot())], [], now_ms=T0 + 5)
    storage.save_trading(fill_order(order, "E1", 12, 10_000, at=T0 + 6), [], now_ms=T0 + 6)
    assert storage.order_by_id("O1") == order and storage.order_by_id("O1").note == "the first reason"
    rewritten = replace(order, note="rewritten later", placed_by=bob[0], updated_at_ms=T0 + 7)
    storage.save_trading([], [], now_ms=T0 + 7, orders=[rewritten])  # no later snapshot changes either
    stored = storage.order_by_id("O1")
    assert (stored.note, stored.placed_by, stored.updated_at_ms) == ("the first reason", None, T0 + 7)


def test_an_order_placed_by_someone_who_is_not_a_user_is_refused_and_nothing_is_stored(storage, ada, refused):
    with pytest.raises(refused):
        storage.save_trading([submitted(make_order("O1", ada, placed_by="999"))], [ledger(ada, 1)], now_ms=T0)
    assert table_counts(storage) == {"orders": 0, "fills": 0, "positions": 0, "order_events": 0}
    with pytest.raises(ValueError):
        storage.save_trading([submitted(make_order("O2", ada, placed_by="not-an-id"))], [], now_ms=T0)
    assert storage.order_by_id("O2") is None


def test_history_with_note_pages_through_only_the_orders_placed_with_a_note(storage, ada, bob):
    second = (ada[0], storage.create_portfolio(ada[0], "Second", CASH).portfolio_id)
    orders = [make_order(f"O{n}", second if n % 4 == 0 else ada, created=T0 + (5 if n in (7, 8) else n * 10),
                         note=f"reason {n}" if n % 3 else None) for n in range(1, 13)]
    orders.append(make_order("O13", bob, created=T0 + 500, note="bob's reason"))
    storage.save_trading([submitted(order) for order in orders], [], now_ms=T0)
    noted = [o.order_id for o in newest_first(orders) if o.user_id == ada[0] and o.note is not None]
    pages = page_through(storage, user_ids=[ada[0]], with_note=True, limit=3)
    assert [len(page) for page in pages] == [3, 3, 2] and sum(pages, []) == noted
    assert {"O4", "O7", "O8"} <= set(noted)  # both portfolios; two in one millisecond
    every = sum(page_through(storage, user_ids=[ada[0]], limit=5), [])
    assert len(every) == 12  # without with_note, every order
    assert storage.order_history(user_ids=[bob[0]], with_note=True)[0][0].note == "bob's reason"


# -- history ------------------------------------------------------------------------------


@pytest.fixture
def history(storage, ada, bob):
    """25 of Ada's orders over two portfolios and 3 of Bob's; several share a millisecond (O9, O10, O11)."""
    second = (ada[0], storage.create_portfolio(ada[0], "Second", CASH).portfolio_id)
    orders = []
    for n in range(1, 26):
        owner = second if n % 5 == 0 else ada
        created = T0 + (5 if 8 <= n <= 12 else n * 10)
        order = make_order(f"O{n}", owner, symbol="ZETA" if n % 3 == 0 else "ACME", created=created)
        if n % 4 == 0:
            order.status = OrderStatus.FILLED
        orders.append(order)
    orders += [make_order(f"O{n}", bob, created=T0 + n) for n in (26, 27, 28)]
    storage.save_trading([submitted(order) for order in orders], [], now_ms=T0)
    return {"orders": orders, "second": second[1]}


def newest_first(orders):
    return sorted(orders, key=lambda o: (o.created_at_ms, int(o.order_id[1:])), reverse=True)


def page_through(storage, **filters):
    pages, cursor = [], None
    while True:
        orders, cursor = storage.order_history(before=cursor, **filters)
        pages.append([order.order_id for order in orders])
        if cursor is None:
            return pages


def test_history_pages_newest_first_through_every_page(storage, ada, history):
    mine = [o for o in history["orders"] if o.user_id == ada[0]]
    pages = page_through(storage, user_ids=[ada[0]], limit=7)
    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert sum(pages, []) == [o.order_id for o in newest_first(mine)]
    assert sum(pages, []).index("O11") < sum(pages, []).index("O10") < sum(pages, []).index("O9")


def test_history_of_an_exact_multiple_of_the_limit_ends_without_a_cursor(storage, bob, history):
    orders, cursor = storage.order_history(user_ids=[bob[0]], limit=3)
    assert [o.order_id for o in orders] == ["O28", "O27", "O26"] and cursor is None


@pytest.mark.parametrize("filters", [
    {"symbol": "ZETA"}, {"status": "FILLED"}, {"status": OrderStatus.NEW}, {"portfolio": "second"},
    {"symbol": "ACME", "status": "NEW", "portfolio": "main"},
])
def test_history_filters_by_symbol_status_and_portfolio(storage, ada, history, filters):
    filters = dict(filters)
    portfolio = {"second": history["second"], "main": ada[1], None: None}[filters.pop("portfolio", None)]
    expected = [o.order_id for o in newest_first(history["orders"]) if o.user_id == ada[0]
                and (portfolio is None or o.portfolio_id == portfolio)
                and o.symbol == filters.get("symbol", o.symbol) and o.status == filters.get("status", o.status)]
    pages = page_through(storage, user_ids=[ada[0]], portfolio_id=portfolio, limit=4, **filters)
    assert expected and sum(pages, []) == expected


def test_history_of_several_users_or_everyone(storage, ada, bob, history):
    everyone = [o.order_id for o in newest_first(history["orders"])]
    assert sum(page_through(storage, user_ids=None, limit=10), []) == everyone
    assert sum(page_through(storage, user_ids=[ada[0], bob[0], "junk"], limit=6), []) == everyone
    assert storage.order_history(user_ids=[]) == ([], None)
    assert storage.order_history(user_ids=["999"]) == ([], None)
    assert storage.order_history(user_ids=[ada[0]], portfolio_id=bob[1]) == ([], None)


@pytest.mark.parametrize("cursor", [
    "", "!!!!", "not base64 at all", "MTIz",  # "123": no order id
    _encode_cursor(5, "O1") + "=", _encode_cursor(5, "O1")[:-1], "eDpPMQ",  # "x:O1"
    "OjA", "\ud800", "A" * 1000, 17,
])
def test_a_cursor_we_did_not_issue_is_a_bad_request(storage, history, cursor):
    with pytest.raises(BadRequest):
        storage.order_history(user_ids=None, before=cursor)


@pytest.mark.parametrize("bad", [{"status": "OPEN"}, {"limit": 0}, {"limit": 501}, {"limit": "10"}])
def test_bad_status_or_limit_is_a_bad_request(storage, bad):
    with pytest.raises(BadRequest):
        storage.order_history(user_ids=None, **bad)


# -- all or nothing, and durability -------------------------------------------------------------


class ExplodingOrder(Order):
    """An order whose event fails while being encoded, after the orders, fills and ledgers were written."""

    @property
    def remaining_quantity(self) -> int:
        raise RuntimeError("cannot encode")


def test_a_batch_that_fails_midway_stores_nothing(storage, ada, bob):
    events, ledgers, _ = trade_scenario(storage, ada, bob)
    storage.save_trading(events[:1], [], now_ms=T0)
    before = table_counts(storage)
    doomed = events + [TradeEvent(EventKind.ORDER_SUBMITTED, ExplodingOrder(**asdict(make_order("O9", ada))))]
    with pytest.raises(RuntimeError):
        storage.save_trading(doomed, ledgers, now_ms=T0)
    assert table_counts(storage) == before
    assert [book.cash_cents for book in storage.load_trading(CASH)[0]] == [CASH, CASH]
    assert storage.last_event_id(ada[0]) == 1 and storage.order_by_id("O1").status is OrderStatus.NEW
    assert not storage._db.in_transaction
    assert storage.save_trading(events, ledgers, now_ms=T0)[-1][1] == 4  # and the next batch works


def test_a_ledger_of_an_unknown_portfolio_stores_nothing(storage, ada):
    with pytest.raises(StorageError):
        storage.save_trading([submitted(make_order("O1", ada))], [ledger(ada, 5), ledger(("1", "999"))], now_ms=T0)
    assert table_counts(storage)["orders"] == 0
    with pytest.raises(ValueError):
        storage.save_trading([], [ledger(("1", "main"))], now_ms=T0)


def test_an_engine_step_of_an_engine_fenced_out_stores_nothing(open_storage):
    old = open_storage()
    ada = new_user(old, "ada")
    old.fence(1)
    order = make_order("O1", ada)
    old.save_trading([submitted(order)], [ledger(ada, CASH - 1)], now_ms=T0)
    new = open_storage()
    new.fence(2)
    new.save_trading([], [ledger(ada, CASH - 2)], now_ms=T0)
    before = table_counts(new)
    with pytest.raises(FencedOut):
        old.save_trading(fill_order(order, "E1", 10, 10_000), [ledger(ada, CASH - 100_000)], now_ms=T0)
    assert table_counts(new) == before and new.last_event_id(ada[0]) == 1
    assert new.load_trading(CASH)[0][0].cash_cents == CASH - 2


def test_an_engine_fenced_again_writes_its_ledgers_again_as_another_may_have_changed_them(open_storage):
    first, other = open_storage(), open_storage()
    ada = new_user(first, "ada")
    first.fence(1)
    first.save_trading([], [ledger(ada, CASH - 5)], now_ms=T0)
    other.fence(2)
    other.save_trading([], [ledger(ada, CASH - 7)], now_ms=T0)
    first.fence(3)  # leadership back: what it last wrote is no longer what is stored
    first.save_trading([], [ledger(ada, CASH - 5)], now_ms=T0)
    assert other.load_trading(CASH)[0][0].cash_cents == CASH - 5


def _trade_and_die(path):
    store = Storage(path, FakeClock(T0 / 1000))
    ada = new_user(store, "ada")
    order = make_order("O1", ada, quantity=4)
    store.save_trading([submitted(order), *fill_order(order, "E1", 4, 2_500, 10)],
                       [ledger(ada, CASH - 10_010, 10, Position("ACME", 4, 0, 10_000, 0))], now_ms=T0)
    os._exit(0)  # no close(), no checkpoint: as abrupt as kill -9 for what was committed


def test_committed_trading_survives_a_process_that_never_closed(db_path, clock):
    Storage(db_path, clock).close()
    proc = multiprocessing.get_context("spawn").Process(target=_trade_and_die, args=(db_path,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    with Storage(db_path, clock) as store:
        (book,), _ = store.load_trading(CASH)
        assert book.cash_cents == CASH - 10_010 and book.positions["ACME"].quantity == 4
        assert store.last_event_id(book.owner_id) == 3
        assert store.reconcile(book.portfolio_id) == {"ok": True, "fills": 1, "differences": []}


def test_trading_ids_are_the_highest_numbers_stored(storage, ada):
    assert storage.trading_ids() == (0, 0)
    orders = [make_order(f"O{n}", ada, quantity=1) for n in (9, 10, 2)]
    events = [submitted(o) for o in orders]
    events += fill_order(orders[0], "E99", 1, 100) + fill_order(orders[1], "E100", 1, 100)
    storage.save_trading(events, [], now_ms=T0)
    assert storage.trading_ids() == (10, 100)


# -- reconcile ----------------------------------------------------------------------------------


RECONCILED_CASH = CASH - 2 - 1 - 3 + 4 - 1 - 20_002 - 5 - 10_002 + 10_100  # = CASH - 19_912


def reconcile_scenario(storage, ada):
    """ZETA: buy 1 @ 0.02 and 1 @ 0.03 (cost 5), sell 1, which removes 5/2 = 2.5 rounded half-even: 2.

    ACME: buy 2 @ 100.01 and 1 @ 100.02 (cost 300.04), sell 1, which removes 100.0133.. rounded: 100.01.
    """
    zeta_buy = make_order("O1", ada, symbol="ZETA", quantity=2)
    zeta_sell = make_order("O2", ada, symbol="ZETA", side=Side.SELL, quantity=2, created=T0 + 1)
    acme_buy = make_order("O3", ada, quantity=3, created=T0 + 2)
    acme_sell = make_order("O4", ada, side=Side.SELL, quantity=1, created=T0 + 3)
    events = [submitted(zeta_buy), *fill_order(zeta_buy, "E1", 1, 2, 1), *fill_order(zeta_buy, "E2", 1, 3),
              submitted(zeta_sell), *fill_order(zeta_sell, "E3", 1, 4, 1), submitted(acme_buy),
              *fill_order(acme_buy, "E4", 2, 10_001, 5), *fill_order(acme_buy, "E5", 1, 10_002),
              submitted(acme_sell), *fill_order(acme_sell, "E6", 1, 10_100)]
    book = ledger(ada, RECONCILED_CASH, 7, Position("ZETA", 1, 0, 3, 4 - 2),
                  Position("ACME", 2, 0, 30_004 - 10_001, 10_100 - 10_001))
    storage.save_trading(events, [book], now_ms=T0)


def test_reconcile_agrees_with_consistent_data(storage, ada, bob):
    reconcile_scenario(storage, ada)
    assert storage.reconcile(ada[1]) == {"ok": True, "fills": 6, "differences": []}
    assert storage.reconcile(bob[1]) == {"ok": True, "fills": 0, "differences": []}


@pytest.mark.parametrize(("tamper", "difference"), [
    ("UPDATE portfolios SET cash_cents = cash_cents + 1 WHERE id = :p",
     {"field": "cash_cents", "expected": RECONCILED_CASH, "stored": RECONCILED_CASH + 1}),
    ("UPDATE portfolios SET commissions_cents = 0 WHERE id = :p",
     {"field": "commissions_cents", "expected": 7, "stored": 0}),
    ("UPDATE positions SET quantity = 1 WHERE portfolio_id = :p AND symbol = 'ACME'",
     {"field": "quantity", "symbol": "ACME", "expected": 2, "stored": 1}),
    ("UPDATE positions SET cost_basis_cents = 2 WHERE portfolio_id = :p AND symbol = 'ZETA'",  # rounded half-up
     {"field": "cost_basis_cents", "symbol": "ZETA", "expected": 3, "stored": 2}),
    ("DELETE FROM positions WHERE portfolio_id = :p AND symbol = 'ZETA'",
     {"field": "realized_pnl_cents", "symbol": "ZETA", "expected": 2, "stored": 0}),
    ("UPDATE orders SET filled_quantity = 1 WHERE order_id = 'O3'",
     {"field": "filled_quantity", "orderId": "O3", "expected": 3, "stored": 1}),
    ("DELETE FROM fills WHERE execution_id = 'E4'",
     {"field": "cash_cents", "expected": RECONCILED_CASH + 20_002 + 5, "stored": RECONCILED_CASH}),
])
def test_reconcile_reports_what_was_tampered_with(storage, ada, tamper, difference):
    reconcile_scenario(storage, ada)
    storage._db.execute(tamper.replace(":p", ada[1]))
    report = storage.reconcile(ada[1])
    assert report["ok"] is False and difference in report["differences"]


def test_reconcile_replays_like_the_ledger_through_random_trading_and_shorts(storage, ada):
    from domain.ledger import apply_fill

    rng = random.Random(7)
    book = ledger(ada)
    events = []
    for n in range(1, 301):
        quantity = rng.randint(1, 7)
        order = make_order(f"O{n}", ada, symbol=rng.choice(["ACME", "ZETA", "QUUX"]),
                           side=rng.choice([Side.BUY, Side.SELL]), quantity=quantity, created=T0 + n)
        events += [submitted(order), *fill_order(order, f"E{n}", quantity, rng.randint(1, 20_000), rng.randint(0, 3))]
        apply_fill(book, events[-2].fill)
        if n % 50 == 0:
            storage.save_trading(events, [book], now_ms=T0 + n)
            events = []
    assert any(p.quantity < 0 for p in book.positions.values())  # shorts were opened along the way
    assert storage.reconcile(ada[1]) == {"ok": True, "fills": 300, "differences": []}
    (stored,), _ = storage.load_trading(CASH)
    assert stored == book


def test_reconcile_of_an_unknown_portfolio_is_not_found(storage):
    for portfolio_id in ("999", "x"):
        with pytest.raises(NotFound):
            storage.reconcile(portfolio_id)


# -- portfolios ---------------------------------------------------------------------------------


def test_a_user_may_open_up_to_the_limit_of_portfolios(storage, ada, bob):
    made = [storage.create_portfolio(ada[0], f"P{n}", 500_000) for n in range(MAX_PORTFOLIOS_PER_USER - 1)]
    assert made[0] == PortfolioLedger(made[0].portfolio_id, ada[0], "P0", 500_000, 500_000)
    with pytest.raises(LimitExceeded):
        storage.create_portfolio(ada[0], "one too many", 500_000)
    assert storage.portfolio_ids_of(ada[0]) == [ada[1], *(p.portfolio_id for p in made)]
    assert storage.portfolio_owner(made[-1].portfolio_id) == ada[0]
    assert storage.create_portfolio(bob[0], "Bob's second", 0).owner_id == bob[0]
    loaded = {book.portfolio_id: book for book in storage.load_trading(CASH)[0]}
    assert loaded[made[1].portfolio_id] == made[1]


def test_portfolio_lookups_of_strangers_find_nothing(storage):
    assert storage.portfolio_owner("999") is None and storage.portfolio_owner("01") is None
    assert storage.portfolio_owner("abc") is None and storage.portfolio_ids_of("nobody") == []
    with pytest.raises(UnknownUser):
        storage.create_portfolio("999", "Ghost", CASH)


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "\ud800", None])
def test_a_portfolio_needs_a_sensible_name(storage, ada, name):
    with pytest.raises(BadRequest):
        storage.create_portfolio(ada[0], name, CASH)
    assert storage.portfolio_ids_of(ada[0]) == [ada[1]]


# -- value history ------------------------------------------------------------------------------


def test_values_are_recorded_and_old_ones_pruned(open_storage, ada, refused):
    with open_storage(values_retention_ms=1_000) as store:
        store.record_values([(ada[1], T0, 60 * T0, CASH, CASH), ("SQX", T0, 60 * T0, 500_000, 0)])
        store.record_values([(ada[1], T0 + 500, 1, CASH + 1, CASH), (ada[1], T0 + 500, 2, CASH + 2, CASH)])
        assert store.values_of(ada[1]) == [ValuePoint(T0, 60 * T0, CASH, CASH), ValuePoint(T0 + 500, 2, CASH + 2, CASH)]
        store.record_values([(ada[1], T0 + 1_200, 3, CASH + 3, CASH)])
        assert [p.time_ms for p in store.values_of(ada[1])] == [T0 + 500, T0 + 1_200]
        assert [p.time_ms for p in store.values_of(ada[1], since_ms=T0 + 501)] == [T0 + 1_200]
        assert store.values_of("SQX") == [ValuePoint(T0, 60 * T0, 500_000, 0)]  # another series is pruned by its own
        with pytest.raises(refused):
            store.record_values([(ada[1], T0 + 2_000, 4, 1.5, CASH)])
        assert len(store.values_of(ada[1])) == 2


# -- schema -------------------------------------------------------------------------------------


@sqlite_only
def test_money_columns_are_integers(storage):
    for table in ("portfolios", "positions", "orders", "fills", "portfolio_values"):
        for _, column, kind, *_ in storage._db.execute(f"PRAGMA table_info({table})"):
            if column.endswith("_cents"):
                assert kind == "INTEGER", (table, column)


def test_a_fraction_in_a_money_column_is_refused_not_rounded(storage, ada, refused):
    with pytest.raises(refused):
        storage.save_trading([submitted(make_order("O1", ada, limit_price=100.5))], [], now_ms=T0)
    assert storage.order_by_id("O1") is None


def _columns(db, table):
    return [tuple(row) for row in db.execute(f"PRAGMA table_info({table})")]


def test_a_version_1_database_is_upgraded_keeping_users_and_portfolios(db_path, clock):
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.executescript(SCHEMA_V1 + """
        INSERT INTO users (username, display_name, role, created_at) VALUES ('ada', 'Ada', 'teacher', 1.5);
        INSERT INTO portfolios (owner_id, name, cash_cents, created_at) VALUES (1, 'Main', 250055, 1.5);
        PRAGMA user_version = 1;
    """)
    raw.close()
    with Storage(db_path, clock) as store:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        user = store.user_by_name("ada")
        assert (user.id, user.role, user.created_at) == (1, Role.TEACHER, 1.5)
        (book,), open_orders = store.load_trading(CASH)
        assert book == PortfolioLedger("1", "1", "Main", 250_055, 250_055)
        assert open_orders == []
        store.save_trading([submitted(make_order("O1", ("1", "1")))], [book], now_ms=T0)
        assert store.create_user("bob", "Bob", None, Role.STUDENT, CASH).id == 2
        with Storage(":memory:", clock) as fresh:
            for table in ("users", "portfolios", "positions", "orders", "fills", "order_events", "portfolio_values"):
                assert _columns(store._db, table) == _columns(fresh._db, table)
            indexes = "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
            assert store._db.execute(indexes).fetchall() == fresh._db.execute(indexes).fetchall()
    with Storage(db_path, clock) as again:  # and opening it again changes nothing
        assert again.order_by_id("O1") is not None


# Version 4, the last before the trade journal: the orders table without note and placed_by.
_JOURNAL_COLUMNS = """,
    note                  TEXT    NULL,
    placed_by             INTEGER NULL REFERENCES users (id)
) STRICT;"""
SCHEMA_V4 = SCHEMA.replace(_JOURNAL_COLUMNS, "\n) STRICT;")


# What version 7 added (portfolios.contest_id and the contest tables), taken out of a database made by this version.
_WITHOUT_CONTESTS = """
    ALTER TABLE portfolios DROP COLUMN contest_id;
    DROP TABLE contest_assignments; DROP TABLE contest_team_members; DROP TABLE contest_teams;
    DROP TABLE contest_members; DROP TABLE contests;
"""


def test_a_version_4_database_gets_the_journal_columns_and_its_orders_stay_readable(db_path, clock):
    assert SCHEMA_V4 != SCHEMA and "placed_by             INTEGER" not in SCHEMA_V4
    db_path.parent.mkdir(parents=True)
    with Storage(db_path, clock) as current:  # users and portfolios as a version-4 server made them
        ada = new_user(current, "ada")
    raw = sqlite3.connect(db_path)
    raw.executescript("DROP TABLE order_events; DROP TABLE fills; DROP TABLE orders;" + _WITHOUT_CONTESTS + SCHEMA_V4
                      + f"""
        INSERT INTO orders VALUES ('O1', 'c-1', {ada[1]}, {ada[0]}, 'ACME', 'BUY', 'LIMIT', 10, 10000, NULL, 'GTC',
                                   'NEW', {T0}, {T0}, 0, 0, 0, 0, 100000, 0, NULL, NULL, 1);
        INSERT INTO order_events VALUES ({ada[0]}, 1, {ada[1]}, 'O1', 'ORDER_SUBMITTED', '{{"old": true}}', {T0});
        PRAGMA user_version = 4;
    """)
    raw.close()
    with Storage(db_path, clock) as store:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        old = store.order_by_id("O1")
        assert (old.note, old.placed_by, old.client_order_id, old.reserved_cash_cents) == (None, None, "c-1", 100_000)
        assert store.load_trading(CASH)[1] == [old]
        assert store.client_order(ada[0], "c-1") == (old, 1, '{"old": true}')  # stored events stay as stored
        noted = make_order("O2", ada, note="after the upgrade")
        (_, event_id, payload), = store.save_trading([submitted(noted)], [], now_ms=T0 + 1)
        assert event_id == 2 and json.loads(payload)["order"]["note"] == "after the upgrade"
        assert store.order_history(user_ids=[ada[0]], with_note=True) == ([noted], None)
        with Storage(":memory:", clock) as fresh:
            assert _columns(store._db, "orders") == _columns(fresh._db, "orders")
    with Storage(db_path, clock) as again:  # and opening it again changes nothing
        assert again.order_by_id("O2").note == "after the upgrade"


def _statements(script):
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def test_an_upgrade_done_meanwhile_by_another_process_is_accepted(db_path, clock):
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.executescript(SCHEMA_V1 + "PRAGMA user_version = 1;")
    raw.close()
    other = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # a second server upgrading the file right now

        def finish_upgrade():
            for statement in _statements(MIGRATIONS[1] + SCHEMA):
                other.execute(statement)
            other.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            other.execute("COMMIT")

        timer = threading.Timer(0.3, finish_upgrade)
        timer.start()
        with Storage(db_path, clock) as store:  # read version 1, then waited for the lock
            timer.join()
            assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert store.load_trading(CASH) == ([], [])
    finally:
        other.close()
