"""What trading stores: orders, fills, order events and ledgers per engine step, loaded at start-up, reconciled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.errors import NotFound
from domain.ledger import replay_fills
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
from realtime.protocol import encode_data
from realtime.wire import orders as wire_orders
from services.storage.database import Connection, Database, StorageError, _key, _need_key

__all__ = ["EXECUTION_ID_PREFIX", "ORDER_ID_PREFIX", "TradingStore"]

ORDER_ID_PREFIX = "O"      # the engine's IdSequence prefixes, for trading_ids
EXECUTION_ID_PREFIX = "E"

_POSITION_FIELDS = ("quantity", "cost_basis_cents", "realized_pnl_cents")  # Position's attributes, as reconciled
_ORDER_FILL_FIELDS = ("filled_quantity", "filled_notional_cents", "commission_cents")

_LAST_EVENT_SQL = "SELECT coalesce(max(event_id), 0) FROM order_events WHERE user_id = ?"

_ORDER_COLUMNS = (
    "order_id, client_order_id, portfolio_id, user_id, symbol, side, order_type, quantity, limit_price_cents,"
    " stop_price_cents, time_in_force, status, created_at_ms, updated_at_ms, day_index, filled_quantity,"
    " filled_notional_cents, commission_cents, reserved_cash_cents, stop_triggered, reject_reason, error, note,"
    " placed_by"
)
# What an order's later snapshots may change; the rest (its note and who placed it among them) is fixed when it is
# first stored.
_ORDER_MUTABLE = (
    "quantity", "limit_price_cents", "stop_price_cents", "status", "updated_at_ms", "filled_quantity",
    "filled_notional_cents", "commission_cents", "reserved_cash_cents", "stop_triggered", "reject_reason", "error",
)
_UPSERT_ORDER_SQL = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}, first_event_id) VALUES ({', '.join('?' * 25)})"
    " ON CONFLICT (order_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _ORDER_MUTABLE)
)
_FILL_COLUMNS = (
    "execution_id, order_id, portfolio_id, user_id, symbol, side, quantity, price_cents, commission_cents,"
    " time_ms, market_time_ms"
)
_INSERT_FILL_SQL = f"INSERT INTO fills ({_FILL_COLUMNS}) VALUES ({', '.join('?' * 11)})"


def numbered_max(column: str, prefix: str) -> str:
    """SQL for the highest number in `column`'s ids made of `prefix` and digits ("O123"), 0 when there is none.

    Only such ids are cast (another id would make PostgreSQL's CAST fail), on any engine.
    """
    digits = f"substr({column}, {len(prefix) + 1})"
    return (f"coalesce(max(CASE WHEN substr({column}, 1, {len(prefix)}) = '{prefix}' AND {digits} <> ''"
            f" AND ltrim({digits}, '0123456789') = '' THEN CAST({digits} AS BIGINT) END), 0)")


class TradingStore(Database):
    """Owns what trading writes: orders, fills, order events, positions, and each portfolio's cash and commissions.

    One transaction per engine step (`save_trading`); read back whole at start-up (`load_trading`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What this process last committed of each portfolio (cash, commissions, positions): most orders change
        # only a reservation, which is not stored, and their ledger need not be written again. Only
        # `_write_ledgers` writes these columns, so what it committed is what the database holds, as long as this
        # process is the only engine writing (see `fence`).
        self._ledgers_committed: dict[int, tuple] = {}

    def fence(self, token: int) -> None:
        """`Database.fence`; forgets what this process committed, as another engine may have written since."""
        super().fence(token)
        self._ledgers_committed.clear()

    # -- the hot path: one engine step ------------------------------------------------

    def save_trading(
        self,
        events: Sequence[TradeEvent],
        ledgers: Sequence[PortfolioLedger],
        *,
        now_ms: int,
        orders: Sequence[Order] = (),
    ) -> list[tuple[TradeEvent, int, str]]:
        """Store what a submit, cancel or market tick did, in one transaction; returns (event, eventId, payload).

        Upserts the last snapshot of every order in `events`, then those in `orders` (changes
        without an event, such as a stop that only triggered; these win), inserts the fill of
        every EXECUTION_REPORT, writes each ledger's cash, commissions and whole set of
        positions, and appends every event to the user's event stream with the next eventId
        (MAX + 1 of that user, read once per user per call). The payload is the exact JSON to send:
        ``encode_data({**wire_orders.event(event), "eventId": event_id})``. Anything that fails (an
        unknown portfolio, a repeated execution id, a second order with the same
        clientOrderId, an event that cannot be encoded) stores nothing and re-raises.
        """
        latest: dict[str, Order] = {}
        for event in events:
            latest[event.order.order_id] = event.order  # the last snapshot wins, in first-seen order
        for order in orders:
            latest[order.order_id] = order
        unique_ledgers = {ledger.portfolio_id: ledger for ledger in ledgers}
        with self._transaction() as db:
            user_keys: dict[str, int] = {}
            last_ids: dict[int, int] = {}
            event_ids: list[int] = []
            first_ids: dict[str, int] = {}
            for event in events:
                user_id = event.order.user_id
                key = user_keys.get(user_id)
                if key is None:
                    key = user_keys[user_id] = _need_key(user_id, "user id")
                    last_ids[key] = db.execute(_LAST_EVENT_SQL, (key,)).fetchone()[0]
                event_id = last_ids[key] = last_ids[key] + 1
                event_ids.append(event_id)
                first_ids.setdefault(event.order.order_id, event_id)

            db.executemany(_UPSERT_ORDER_SQL, [
                # An order with no event here is already stored, so its first_event_id is kept (0 is unused).
                _order_params(order, first_ids.get(order_id, 0)) for order_id, order in latest.items()
            ])
            db.executemany(_INSERT_FILL_SQL, [
                _fill_params(event.fill) for event in events if event.kind is EventKind.EXECUTION_REPORT
            ])
            written = self._write_ledgers(db, unique_ledgers.values()) if unique_ledgers else {}

            saved, rows = [], []
            for event, event_id in zip(events, event_ids, strict=True):
                order = event.order
                payload = encode_data({**wire_orders.event(event), "eventId": event_id})
                rows.append((user_keys[order.user_id], event_id, _need_key(order.portfolio_id, "portfolio id"),
                             order.order_id, str(event.kind), payload, now_ms))
                saved.append((event, event_id, payload))
            db.executemany(
                "INSERT INTO order_events (user_id, event_id, portfolio_id, order_id, type, payload, created_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        self._ledgers_committed.update(written)  # committed: nothing of it is remembered when it failed
        return saved

    def _write_ledgers(self, db: Connection, ledgers: Iterable[PortfolioLedger]) -> dict[int, tuple]:
        """Write each ledger's stored columns unless they are what this process last committed; returns what it
        wrote, by portfolio key, for the caller to remember once the transaction has committed."""
        money, keys, positions, written = [], [], [], {}
        for ledger in ledgers:
            key = _need_key(ledger.portfolio_id, "portfolio id")
            held = tuple(
                (key, p.symbol, p.quantity, p.cost_basis_cents, p.realized_pnl_cents, p.stop_loss_cents,
                 p.take_profit_cents)
                for p in ledger.positions.values()
                if p.quantity or p.cost_basis_cents or p.realized_pnl_cents
                or p.stop_loss_cents is not None or p.take_profit_cents is not None
            )
            stored = (ledger.cash_cents, ledger.commissions_cents, held)
            if self._ledgers_committed.get(key) == stored:
                continue
            written[key] = stored
            money.append((ledger.cash_cents, ledger.commissions_cents, key))
            keys.append((key,))
            positions.extend(held)
        if not money:
            return written
        cur = db.executemany("UPDATE portfolios SET cash_cents = ?, commissions_cents = ? WHERE id = ?", money)
        if cur.rowcount != len(money):
            raise StorageError("a ledger names a portfolio that is not stored")
        # Rewriting a portfolio's few positions whole also removes those the ledger dropped.
        db.executemany("DELETE FROM positions WHERE portfolio_id = ?", keys)
        db.executemany(
            "INSERT INTO positions (portfolio_id, symbol, quantity, cost_basis_cents, realized_pnl_cents,"
            " stop_loss_cents, take_profit_cents) VALUES (?, ?, ?, ?, ?, ?, ?)",
            positions,
        )
        return written

    # -- start-up ---------------------------------------------------------------------

    def trading_ids(self) -> tuple[int, int]:
        """The highest numbers in stored order ids ("O123") and execution ids ("E45"), to seed `IdSequence`."""
        db = self._db
        orders = db.execute(f"SELECT {numbered_max('order_id', ORDER_ID_PREFIX)} FROM orders").fetchone()[0]
        fills = db.execute(f"SELECT {numbered_max('execution_id', EXECUTION_ID_PREFIX)} FROM fills").fetchone()[0]
        return orders, fills

    def load_trading(self, starting_cash_default_cents: int) -> tuple[list[PortfolioLedger], list[Order]]:
        """Every portfolio as a ledger with its positions, and every open order oldest first.

        Ledgers' reserved cash and shares come back zero: the engine recomputes them from the open
        orders, which keep their own `reserved_cash_cents`.
        `starting_cash_default_cents` is not needed any more (every row carries its own starting
        cash since version 2) and is accepted so callers need not change.
        """
        orders = [_order(row) for row in self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IN ('NEW', 'PARTIALLY_FILLED')"
            " ORDER BY created_at_ms, length(order_id), order_id"
        )]
        return self._ledgers(), orders

    def load_portfolio(self, portfolio_id: str) -> PortfolioLedger | None:
        """One portfolio as a ledger (reservations zero), e.g. one the operator CLI created while running."""
        key = _key(portfolio_id)
        found = [] if key is None else self._ledgers(key)
        return found[0] if found else None

    def _ledgers(self, key: int | None = None) -> list[PortfolioLedger]:
        where, params = ("WHERE portfolio_id = ?", (key,)) if key is not None else ("", ())
        positions: dict[int, dict[str, Position]] = {}
        for pid, symbol, quantity, cost, realized, stop_loss, take_profit in self._db.execute(
            "SELECT portfolio_id, symbol, quantity, cost_basis_cents, realized_pnl_cents, stop_loss_cents,"
            f" take_profit_cents FROM positions {where} ORDER BY portfolio_id, symbol", params
        ):
            positions.setdefault(pid, {})[symbol] = Position(
                symbol, quantity, 0, cost, realized, stop_loss, take_profit
            )
        where = where.replace("portfolio_id", "id")
        return [
            PortfolioLedger(str(pid), str(owner), name, starting, cash, 0, commissions, positions.get(pid, {}))
            for pid, owner, name, starting, cash, commissions in self._db.execute(
                "SELECT id, owner_id, name, starting_cash_cents, cash_cents, commissions_cents"
                f" FROM portfolios {where} ORDER BY id", params
            )
        ]

    # -- reconciliation ----------------------------------------------------------------

    def reconcile(self, portfolio_id: str) -> dict:
        """Replay the portfolio's fills through the ledger's own arithmetic and compare the result with storage.

        Cash, commissions and each position's quantity, cost basis and realized P&L are expected to be
        what `domain.ledger.replay_fills` makes of the fills from the starting cash; each order's filled
        quantity, notional and commission the sums of its fills.
        Returns ``{"ok": bool, "fills": n, "differences": [...]}``, each difference a dict with
        "field", "expected" (from the fills) and "stored", plus "symbol" or "orderId" where it
        belongs to one. Raises `NotFound`.
        """
        book = self.load_portfolio(portfolio_id)
        if book is None:
            raise NotFound(f"portfolio {portfolio_id} not found")
        key = int(book.portfolio_id)
        # Execution order within each symbol is all the replay needs (positions do not touch each other;
        # cash and commissions are sums), and it is the order the fills_by_position index keeps.
        fills = [_fill(row) for row in self._db.execute(
            f"SELECT {_FILL_COLUMNS} FROM fills WHERE portfolio_id = ?"
            " ORDER BY symbol, length(execution_id), execution_id",
            (key,),
        )]
        replayed = replay_fills(book.portfolio_id, book.owner_id, book.name, book.starting_cash_cents, fills)
        by_order: dict[str, list[int]] = {}   # order id -> [quantity, notional, commission]
        for fill in fills:
            totals = by_order.setdefault(fill.order_id, [0, 0, 0])
            totals[0] += fill.quantity
            totals[1] += fill.quantity * fill.price_cents
            totals[2] += fill.commission_cents

        differences: list[dict] = []

        def compare(field_name: str, expected: int, stored: int, **where) -> None:
            if expected != stored:
                differences.append({"field": field_name, **where, "expected": expected, "stored": stored})

        compare("cash_cents", replayed.cash_cents, book.cash_cents)
        compare("commissions_cents", replayed.commissions_cents, book.commissions_cents)
        for symbol in sorted(replayed.positions.keys() | book.positions.keys()):
            expected = replayed.positions.get(symbol, Position(symbol))
            stored = book.positions.get(symbol, Position(symbol))
            for name in _POSITION_FIELDS:
                compare(name, getattr(expected, name), getattr(stored, name), symbol=symbol)
        for order_id, filled, notional, commission in self._db.execute(
            "SELECT order_id, filled_quantity, filled_notional_cents, commission_cents FROM orders"
            " WHERE portfolio_id = ? ORDER BY created_at_ms, length(order_id), order_id",
            (key,),
        ):
            expected = by_order.pop(order_id, (0, 0, 0))
            for name, want, have in zip(_ORDER_FILL_FIELDS, expected, (filled, notional, commission), strict=True):
                compare(name, want, have, orderId=order_id)
        for order_id in by_order:  # fills of an order stored under another portfolio, or of none
            differences.append({"field": "order", "orderId": order_id, "expected": "stored", "stored": None})
        return {"ok": not differences, "fills": len(fills), "differences": differences}


def _order_params(order: Order, first_event_id: int) -> tuple:
    return (
        order.order_id, order.client_order_id, _need_key(order.portfolio_id, "portfolio id"),
        _need_key(order.user_id, "user id"), order.symbol, str(order.side), str(order.order_type),
        order.quantity, order.limit_price, order.stop_price, str(order.time_in_force), str(order.status),
        order.created_at_ms, order.updated_at_ms, order.day_index, order.filled_quantity,
        order.filled_notional_cents, order.commission_cents, order.reserved_cash_cents, int(order.stop_triggered),
        None if order.reject_reason is None else str(order.reject_reason), order.error, order.note,
        None if order.placed_by is None else _need_key(order.placed_by, "user id"), first_event_id,
    )


def _order(row) -> Order:
    (order_id, client_order_id, portfolio_id, user_id, symbol, side, order_type, quantity, limit_price,
     stop_price, time_in_force, status, created_at_ms, updated_at_ms, day_index, filled_quantity,
     filled_notional_cents, commission_cents, reserved_cash_cents, stop_triggered, reject_reason,
     error, note, placed_by) = tuple(row)[:24]
    return Order(
        order_id=order_id, client_order_id=client_order_id, portfolio_id=str(portfolio_id), user_id=str(user_id),
        symbol=symbol, side=Side(side), order_type=OrderType(order_type), quantity=quantity,
        limit_price=limit_price, stop_price=stop_price, time_in_force=TimeInForce(time_in_force),
        status=OrderStatus(status), created_at_ms=created_at_ms, updated_at_ms=updated_at_ms, day_index=day_index,
        filled_quantity=filled_quantity, filled_notional_cents=filled_notional_cents,
        commission_cents=commission_cents, reserved_cash_cents=reserved_cash_cents, stop_triggered=bool(stop_triggered),
        reject_reason=None if reject_reason is None else RejectReason(reject_reason), error=error,
        placed_by=None if placed_by is None else str(placed_by), note=note,
    )


def _fill_params(fill: Fill) -> tuple:
    return (
        fill.execution_id, fill.order_id, _need_key(fill.portfolio_id, "portfolio id"),
        _need_key(fill.user_id, "user id"), fill.symbol, str(fill.side), fill.quantity, fill.price_cents,
        fill.commission_cents, fill.time_ms, fill.market_time_ms,
    )


def _fill(row) -> Fill:
    (execution_id, order_id, portfolio_id, user_id, symbol, side, quantity, price_cents, commission_cents,
     time_ms, market_time_ms) = tuple(row)
    return Fill(execution_id, order_id, str(portfolio_id), str(user_id), symbol, Side(side), quantity,
                price_cents, commission_cents, time_ms, market_time_ms)
