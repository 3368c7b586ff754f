"""What only PostgreSQL storage has: its schema and migrations, an unreachable or lost database, races.

Everything the stores do is tested on both engines in tests/test_storage.py and tests/test_storage_trading.py;
here a real server (tests/postgres_server.py) is stopped, restarted and has its connections killed.
"""

import random
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import psycopg
import pytest

import stockquest
from domain.clock import FakeClock
from domain.errors import BadRequest, Unavailable
from domain.trading import EventKind, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce, TradeEvent
from domain.users import Role
from realtime.urls import safe_url
from services.config import Config
from services.storage import (
    DatabaseUnreachable,
    FencedOut,
    Storage,
    StorageError,
    StorageFailure,
    open_storage,
    postgres,
)
from services.storage.postgres import SCHEMA_VERSION, PostgresStorage
from tests.postgres_server import _free_port, new_server

ROOT = Path(__file__).resolve().parent.parent
CASH = 10_000_000
T0 = 1_764_126_000_000


@pytest.fixture
def clock():
    return FakeClock(T0 / 1000)


@pytest.fixture
def store(postgres_url, clock):
    with PostgresStorage(postgres_url, clock) as opened:
        yield opened


@pytest.fixture
def admin(postgres_url):
    """A connection of the test's own to the same database, autocommit."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def own_server(monkeypatch):
    """A cluster of the test's own, which it may stop and start; reconnection pauses shortened."""
    monkeypatch.setattr(postgres, "RECONNECT_PAUSE_S", 0.2)
    server = new_server()
    yield server
    server.remove()


def backend_pid(store) -> int:
    return store._db.execute("SELECT pg_backend_pid()").fetchone()[0]


def resting_order(order_id, user_id, portfolio_id) -> Order:
    return Order(order_id=order_id, client_order_id=None, portfolio_id=portfolio_id, user_id=user_id, symbol="ACME",
                 side=Side.BUY, order_type=OrderType.LIMIT, quantity=5, limit_price=100, stop_price=None,
                 time_in_force=TimeInForce.GTC, status=OrderStatus.NEW, created_at_ms=T0, updated_at_ms=T0,
                 day_index=0)


def submitted(order) -> TradeEvent:
    return TradeEvent(EventKind.ORDER_SUBMITTED, order.snapshot())


def owner(store, name="ada") -> tuple[str, str]:
    user = store.create_user(name, name.title(), None, Role.STUDENT, CASH)
    return str(user.id), store.portfolio_ids_of(user.id)[0]


# -- schema and migrations ------------------------------------------------------------------------------------------


def test_an_empty_database_gets_the_whole_schema_with_money_in_bigint_columns(store):
    db = store._db
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    tables = {row[0] for row in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
    assert tables == {"schema_version", "users", "portfolios", "positions", "orders", "fills", "order_events",
                      "portfolio_values", "risk_limits", "risk_alerts", "engine_fence", "app_state", "contests",
                      "contest_members", "contest_teams", "contest_team_members", "contest_assignments"}
    money = db.execute("SELECT table_name, column_name, data_type FROM information_schema.columns"
                       " WHERE table_schema = current_schema() AND column_name LIKE '%_cents'").fetchall()
    assert {kind for _, _, kind in money} == {"bigint"}, money
    with Storage(":memory:", FakeClock()) as sqlite:  # the same money columns as SQLite's
        assert sorted(table_column for *table_column, _ in money) == sorted(
            [table, column] for (table,) in sqlite._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for _, column, *_ in sqlite._db.execute(f"PRAGMA table_info({table})") if column.endswith("_cents"))
    assert db.execute("SHOW lock_timeout").fetchone()[0] == "10s"  # as SQLite's busy timeout


def test_opening_a_database_of_the_current_version_changes_nothing(postgres_url, clock):
    with PostgresStorage(postgres_url, clock) as first:
        first.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    with PostgresStorage(postgres_url, clock) as again:
        assert again.count_users() == 1
        assert again._db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_a_database_from_a_newer_server_is_refused_and_left_alone(postgres_url, clock, admin):
    PostgresStorage(postgres_url, clock).close()
    admin.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match=f"schema version {SCHEMA_VERSION + 1}"):
        PostgresStorage(postgres_url, clock)
    assert admin.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_an_older_database_is_upgraded_by_the_steps_it_lacks_keeping_its_data(postgres_url, clock, monkeypatch):
    with PostgresStorage(postgres_url, clock) as first:
        first.create_user("ada", "Ada", None, Role.TEACHER, CASH)
    step = "ALTER TABLE users ADD COLUMN nickname TEXT NULL; UPDATE users SET nickname = 'the first';"
    monkeypatch.setattr(postgres, "MIGRATIONS", (*postgres.MIGRATIONS, step))
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with PostgresStorage(postgres_url, clock) as upgraded:
        assert upgraded._db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert upgraded._db.execute("SELECT nickname FROM users").fetchall() == [("the first",)]
        assert upgraded.user_by_name("ada").role is Role.TEACHER


def test_a_database_from_before_the_journal_gets_its_columns_and_its_orders_stay_readable(postgres_url, clock,
                                                                                         monkeypatch, admin):
    monkeypatch.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:1])
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", 1)
    with PostgresStorage(postgres_url, clock) as old:
        user_id, portfolio_id = owner(old)
    admin.execute(  # an order as a version-1 server stored it: no note, no placed_by
        "INSERT INTO orders VALUES ('O1', NULL, %s, %s, 'ACME', 'BUY', 'LIMIT', 5, 100, NULL, 'GTC', 'NEW', %s, %s, 0,"
        " 0, 0, 0, 0, 0, NULL, NULL, 1)", (portfolio_id, user_id, T0, T0))
    monkeypatch.undo()
    with PostgresStorage(postgres_url, clock) as upgraded:
        assert upgraded._db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert upgraded.order_by_id("O1") == resting_order("O1", user_id, portfolio_id)
        assert upgraded.order_by_id("O1").note is None and upgraded.order_by_id("O1").placed_by is None
        noted = replace(resting_order("O2", user_id, portfolio_id), note="after the upgrade")
        upgraded.save_trading([submitted(noted)], [], now_ms=T0)
        assert upgraded.order_history(user_ids=[user_id], with_note=True) == ([noted], None)


def test_servers_opening_an_empty_database_together_create_the_schema_once(postgres_url, clock):
    opened, failed = [], []

    def open_one():
        try:
            opened.append(PostgresStorage(postgres_url, clock))
        except Exception as error:  # reported below
            failed.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert failed == [] and len(opened) == 4
        assert opened[0]._db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        for store in opened:
            store.close()


# -- an unreachable database --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://sq:s3cret@db.example:5432/stockquest", "postgresql://sq:***@db.example:5432/stockquest"),
    ("postgresql://sq@db/stockquest?sslmode=require&password=s3cret", "postgresql://sq@db/stockquest?sslmode=require&password=***"),
    ("postgresql://db/stockquest", "postgresql://db/stockquest"),
])
def test_a_url_is_shown_without_its_password(url, shown):
    assert safe_url(url) == shown


def test_an_unreachable_database_is_a_clear_error_naming_it_without_the_password(clock):
    url = f"postgresql://sq:s3cret@127.0.0.1:{_free_port()}/stockquest"
    with pytest.raises(DatabaseUnreachable) as raised:
        open_storage(clock, database_url=url)
    message = str(raised.value)
    assert message.startswith(f"cannot reach PostgreSQL at postgresql://sq:***@127.0.0.1:{url.split(':')[3]}")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize("url", ["mysql://db/x", "host=db password=s3cret"])
def test_a_database_url_that_is_not_postgresql_is_refused_without_echoing_it(clock, url):
    with pytest.raises(StorageError) as raised:
        open_storage(clock, database_url=url)
    assert "s3cret" not in str(raised.value)


def test_the_server_with_an_unreachable_database_exits_1_with_one_line_naming_it(tmp_path):
    port = _free_port()
    result = subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "--data-dir", str(tmp_path / "data"),
                             "--port", str(_free_port()), "--seed", "1",
                             "--database-url", f"postgresql://sq:s3cret@127.0.0.1:{port}/stockquest"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and " CRITICAL " in lines[0], lines
    assert f"cannot reach PostgreSQL at postgresql://sq:***@127.0.0.1:{port}/stockquest" in lines[0]
    assert "s3cret" not in result.stderr


def test_without_a_database_url_the_server_uses_sqlite_and_never_imports_psycopg(tmp_path, monkeypatch):
    code = ("import sys, stockquest; from services.config import Config; "
            f"services = stockquest.build_services(Config(data_dir={str(tmp_path)!r}, jwt_secret='x' * 40)); "
            "assert type(services.storage).__name__ == 'Storage'; services.storage.close(); "
            "assert not any(name.startswith(('psycopg', 'services.storage.postgres')) for name in sys.modules), "
            "sorted(name for name in sys.modules if 'psycopg' in name)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert stockquest.parse_config([]).database_url is None
    assert stockquest.parse_config(["--database-url", "postgresql://h/db"]).database_url == "postgresql://h/db"
    monkeypatch.setenv("STOCKQUEST_DATABASE_URL", "postgresql://env/db")
    assert stockquest.parse_config([]).database_url == "postgresql://env/db"


# -- a lost connection ---------------------------------------------------------------------------------------------


class KillingOrder(Order):
    """An order whose encoding, inside save_trading's transaction after its orders were written, runs `on_encode`."""

    @property
    def remaining_quantity(self) -> int:
        self.on_encode()
        return self.quantity - self.filled_quantity


def test_a_write_whose_connection_dies_midway_raises_storage_failure_stores_nothing_and_the_next_one_works(store,
                                                                                                          admin):
    user_id, portfolio_id = owner(store)
    doomed = KillingOrder(**asdict(resting_order("O1", user_id, portfolio_id)))
    doomed.on_encode = lambda: admin.execute("SELECT pg_terminate_backend(%s, 5000)", (backend_pid(store),))
    with pytest.raises(StorageFailure):
        store.save_trading([TradeEvent(EventKind.ORDER_SUBMITTED, doomed)], [], now_ms=T0)
    assert not store._db.in_transaction
    assert store.order_by_id("O1") is None and store.last_event_id(user_id) == 0  # on a new connection
    (_, event_id, _), = store.save_trading([submitted(resting_order("O2", user_id, portfolio_id))], [], now_ms=T0)
    assert event_id == 1 and store.order_by_id("O2").status is OrderStatus.NEW


def test_a_connection_lost_while_idle_is_made_again_without_an_error(store, admin):
    user_id, portfolio_id = owner(store)
    for use in (store.count_users, lambda: store.create_portfolio(user_id, "Second", CASH)):
        before = backend_pid(store)
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (before,))
        assert use()
        assert backend_pid(store) != before


def test_storage_fails_while_the_database_is_down_and_works_again_when_it_returns(own_server, clock):
    with PostgresStorage(own_server.url(), clock) as store:
        user_id, _ = owner(store)
        own_server.stop()
        with pytest.raises(StorageFailure):
            store.create_portfolio(user_id, "Second", CASH)
        started = time.monotonic()
        with pytest.raises(DatabaseUnreachable, match="trying again in a moment"):
            store.count_users()  # within the pause: at once, without waiting on the network
        assert time.monotonic() - started < 0.1
        own_server.start()
        time.sleep(postgres.RECONNECT_PAUSE_S)
        assert store.create_portfolio(user_id, "Second", CASH).name == "Second"
        assert store.portfolio_ids_of(user_id) == ["1", "2"]


def test_the_server_refuses_orders_while_its_database_is_away_and_trades_again_when_it_returns(own_server, tmp_path):
    clock = FakeClock(T0 / 1000)
    config = Config(data_dir=tmp_path, jwt_secret="s" * 40, seed=5, password_hash_n=2**10, signal_warmup_bars=30,
                    database_url=own_server.url())
    services = stockquest.build_services(config, clock=clock, rng=random.Random(5))
    try:
        user = services.users.create("ada", "Ada", None)
        portfolio_id = services.storage.portfolio_ids_of(user.id)[0]
        far = OrderRequest(portfolio_id, "NVTX", Side.BUY, OrderType.LIMIT, 1, 100, None, TimeInForce.GTC)
        services.trading.submit(user, far, origin=None)
        own_server.stop()
        with pytest.raises(Unavailable):
            services.trading.submit(user, far, origin=None)
        own_server.start()
        time.sleep(postgres.RECONNECT_PAUSE_S)
        clock.advance(1.0)
        services.exchange.tick()  # the tick reloads the engine from what is stored
        assert len(services.trading.open_orders(str(user.id))) == 1
        services.trading.submit(user, far, origin=None)
        assert [order.order_id for order in services.trading.open_orders(str(user.id))] == ["O1", "O3"]
        assert services.storage.reconcile(portfolio_id)["ok"]
    finally:
        services.storage.close()


def test_an_order_naming_a_nul_character_is_a_bad_request_and_stores_nothing(postgres_url, tmp_path):
    config = Config(data_dir=tmp_path, jwt_secret="s" * 40, seed=5, password_hash_n=2**10, signal_warmup_bars=30,
                    database_url=postgres_url)
    services = stockquest.build_services(config, clock=FakeClock(T0 / 1000), rng=random.Random(5))
    try:
        user = services.users.create("ada", "Ada", None)
        portfolio_id = services.storage.portfolio_ids_of(user.id)[0]
        far = OrderRequest(portfolio_id, "NVTX", Side.BUY, OrderType.LIMIT, 1, 100, None, TimeInForce.GTC)
        for request in (replace(far, client_order_id="c\x00"), replace(far, symbol="NV\x00X"),
                        replace(far, note="why\x00")):  # the engine would record a rejection INVALID_NOTE
            with pytest.raises(BadRequest):
                services.trading.submit(user, request, origin=None)
        services.trading.submit(user, replace(far, client_order_id="c"), origin=None)
        assert [order.order_id for order in services.trading.open_orders(str(user.id))] == ["O1"]
        assert services.storage.last_event_id(user.id) == 1
    finally:
        services.storage.close()


# -- the fence --------------------------------------------------------------------------------------------------------


def test_a_fenced_write_waits_for_a_newer_engines_transaction_and_is_then_fenced_out(postgres_url, clock):
    old, new = PostgresStorage(postgres_url, clock), PostgresStorage(postgres_url, clock)
    try:
        old.fence(1)
        old.create_user("ada", "Ada", None, Role.STUDENT, CASH)
        new.fence(2)
        outcome = []
        with new._transaction():  # holds engine_fence's row, advanced to 2 and not yet committed
            writer = threading.Thread(target=lambda: outcome.append(_attempt(old.create_user, "bob", "Bob", None,
                                                                             Role.STUDENT, CASH)))
            writer.start()
            writer.join(0.3)
            assert writer.is_alive()  # waiting on the row lock, not deciding on the old token
        writer.join(10)
        assert isinstance(outcome[0], FencedOut)
        assert new.user_by_name("bob") is None
    finally:
        old.close()
        new.close()


def _attempt(call, *args):
    try:
        return call(*args)
    except Exception as error:  # the outcome the test looks at
        return error
