"""Reads of the trading record: a user's event stream, one order, order history pages and their cursors, fills."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from domain.errors import BadRequest
from domain.trading import Fill, Order, OrderStatus
from services.storage.database import Database, _encodable, _key
from services.storage.trading import _FILL_COLUMNS, _LAST_EVENT_SQL, _ORDER_COLUMNS, _fill, _order

__all__ = ["MAX_HISTORY_LIMIT", "HistoryStore"]

MAX_HISTORY_LIMIT = 500


class HistoryStore(Database):
    """Reads what `TradingStore` wrote, for clients: events to replay, one order, history pages, fills."""

    def last_event_id(self, user_id: str | int) -> int:
        """The user's latest stored eventId, 0 when there is none."""
        key = _key(user_id)
        return 0 if key is None else self._db.execute(_LAST_EVENT_SQL, (key,)).fetchone()[0]

    def events_after(
        self, user_id: str | int, after_event_id: int, *, portfolio_id: str | None = None, limit: int
    ) -> list[tuple[int, str, str]]:
        """The user's first `limit` stored events after `after_event_id` (of one portfolio, if given), as (eventId,
        type, payload); callers page with `limit`, so none is capped without knowing it."""
        key = _key(user_id)
        if key is None:
            return []
        sql = "SELECT event_id, type, payload FROM order_events WHERE user_id = ? AND event_id > ?"
        params: list = [key, after_event_id]
        if portfolio_id is not None:
            portfolio_key = _key(portfolio_id)
            if portfolio_key is None:
                return []
            sql += " AND portfolio_id = ?"
            params.append(portfolio_key)
        params.append(limit)
        return [tuple(row) for row in self._db.execute(sql + " ORDER BY event_id LIMIT ?", params)]

    def client_order(self, user_id: str | int, client_order_id: str) -> tuple[Order, int, str] | None:
        """The user's order with this clientOrderId, with its first event's id and payload, or None."""
        key = _key(user_id)
        if key is None or not _encodable(client_order_id):
            return None
        row = self._db.execute(
            f"SELECT {_prefixed('o', _ORDER_COLUMNS)}, e.event_id, e.payload FROM orders AS o"
            " JOIN order_events AS e ON e.user_id = o.user_id AND e.event_id = o.first_event_id"
            " WHERE o.user_id = ? AND o.client_order_id = ?",
            (key, client_order_id),
        ).fetchone()
        if row is None:
            return None
        return _order(row), row["event_id"], row["payload"]

    def order_by_id(self, order_id: str) -> Order | None:
        """The stored order with this id, whatever its status, or None."""
        if not _encodable(order_id):
            return None
        row = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else _order(row)

    def order_history(
        self,
        *,
        user_ids: Sequence[str] | None,
        portfolio_id: str | None = None,
        symbol: str | None = None,
        status: OrderStatus | str | None = None,
        limit: int = 100,
        before: str | None = None,
        with_note: bool = False,
    ) -> tuple[list[Order], str | None]:
        """Orders newest first (of these users; None means everyone's), a page at a time, and the next page's cursor.

        `before` is a cursor returned earlier (an opaque string); the cursor is None after the last page.
        `with_note`: only the orders placed with a trade journal note.
        A malformed cursor, an unknown status or a limit outside 1..500 raise `BadRequest`.
        """
        if type(limit) is not int or not 0 < limit <= MAX_HISTORY_LIMIT:
            raise BadRequest(f"limit must be 1 to {MAX_HISTORY_LIMIT}")
        try:
            status = None if status is None else OrderStatus(status)
        except ValueError:
            raise BadRequest(f"unknown order status {status!r}") from None
        terms, params = [], []
        if before is not None:
            created_at_ms, order_id = _decode_cursor(before)
            terms.append("(created_at_ms, length(order_id), order_id) < (?, ?, ?)")
            params += [created_at_ms, len(order_id), order_id]
        if user_ids is not None:
            keys = sorted({key for key in map(_key, user_ids) if key is not None})
            if not keys:
                return [], None
            terms.append(f"user_id IN ({', '.join('?' * len(keys))})")
            params += keys
        if portfolio_id is not None:
            portfolio_key = _key(portfolio_id)
            if portfolio_key is None:
                return [], None
            terms.append("portfolio_id = ?")
            params.append(portfolio_key)
        if symbol is not None:
            if not _encodable(symbol):
                return [], None
            terms.append("symbol = ?")
            params.append(symbol)
        if status is not None:
            terms.append("status = ?")
            params.append(status.value)
        if with_note:
            terms.append("note IS NOT NULL")
        where = f" WHERE {' AND '.join(terms)}" if terms else ""
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders{where}"
            " ORDER BY created_at_ms DESC, length(order_id) DESC, order_id DESC LIMIT ?",
            [*params, limit + 1],
        ).fetchall()
        orders = [_order(row) for row in rows[:limit]]
        more = len(rows) > limit
        return orders, _encode_cursor(orders[-1].created_at_ms, orders[-1].order_id) if more else None

    def fills_for(self, portfolio_id: str, symbol: str | None = None, limit: int = 500) -> list[Fill]:
        """The portfolio's fills (of one symbol, if given), last executed first."""
        key = _key(portfolio_id)
        if key is None or (symbol is not None and not _encodable(symbol)):
            return []
        sql = f"SELECT {_FILL_COLUMNS} FROM fills WHERE portfolio_id = ?"
        params: list = [key]
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        rows = self._db.execute(
            sql + " ORDER BY length(execution_id) DESC, execution_id DESC LIMIT ?", [*params, limit]
        )
        return [_fill(row) for row in rows]


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


def _encode_cursor(created_at_ms: int, order_id: str) -> str:
    """The ORDER_HISTORY cursor: unpadded URL-safe base64 of "created_at_ms:order_id" of the page's last order."""
    return base64.urlsafe_b64encode(f"{created_at_ms}:{order_id}".encode()).decode("ascii").rstrip("=")


def _decode_cursor(cursor: object) -> tuple[int, str]:
    """The (created_at_ms, order_id) a cursor stands for; anything we did not issue raises `BadRequest`."""
    try:
        if not isinstance(cursor, str) or not cursor.isascii() or len(cursor) > 400:
            raise ValueError
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        millis, order_id = text.split(":", 1)
        created_at_ms = int(millis)
        if not order_id or _encode_cursor(created_at_ms, order_id) != cursor:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("invalid cursor") from None
    return created_at_ms, order_id
