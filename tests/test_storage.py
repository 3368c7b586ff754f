"""Storage: users and their first portfolio, durable across reopening, shared with other processes.

A test taking `storage` or `open_storage` runs on SQLite and on PostgreSQL (`storage_backend`); `sqlite_only`
narrows one to SQLite, and those opening a file (`db_path`) are about SQLite's own file.
"""

import dataclasses
import multiprocessing
import os
import sqlite3
import threading
import time
from decimal import Decimal

import pytest

from domain.clock import FakeClock
from domain.money import to_cents
from domain.users import Role, UnknownUser, UsernameTaken
from services.storage import SCHEMA_VERSION, FencedOut, PortfolioRow, Storage, StorageError, StorageFailure

CASH = 10_000_000  # 100000.00

sqlite_only = pytest.mark.parametrize("storage_backend", ["sqlite"])


@pytest.fixture
def clock():
    return FakeClock(1_000_000.0)


def test_create_user_makes_one_main_portfolio_with_starting_cash_in_cents(storage, clock):
    user = storage.create_user("ada", "Ada L", "scrypt$hash", Role.STUDENT, CASH)
    assert (user.username, user.display_name, user.role, user.created_at) == ("ada", "Ada L", Role.STUDENT, 1_000_000.0)
    assert isinstance(user.id, int)
    assert storage.portfolios_of(user.id) == [
        PortfolioRow(id=storage.portfolios_of(user.id)[0].id, owner_id=user.id, name="Main",
                     cash_cents=CASH, created_at=1_000_000.0)
    ]
    assert type(storage.portfolios_of(user.id)[0].cash_cents) is int


def test_lookup_by_id_and_by_name_in_any_case(storage):
    user = storage.create_user("Ada", "Ada", None, "teacher", CASH)
    assert storage.user_by_id(user.id) == user
    assert storage.user_by_name("ada") == user
    assert storage.user_by_name("ADA") == user
    assert storage.user_by_name("bob") is None
    assert storage.user_by_id(user.id + 1) is None


@pytest.mark.parametrize("other", ["ada", "ADA", "aDa"])
def test_username_taken_is_case_insensitive_and_creates_nothing(storage, other):
    storage.create_user("Ada", "Ada", None, Role.STUDENT, CASH)
    with pytest.raises(UsernameTaken):
        storage.create_user(other, "Impostor", None, Role.STUDENT, CASH)
    assert storage.count_users() == 1
    assert storage._db.execute("SELECT count(*) FROM portfolios").fetchone()[0] == 1


def test_set_role_changes_the_stored_role(storage):
    user = storage.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    promoted = storage.set_role("ADA", Role.TEACHER)
    assert promoted.role is Role.TEACHER and promoted.id == user.id
    assert storage.user_by_id(user.id).role is Role.TEACHER
    assert storage.set_role("ada", "admin").role is Role.ADMIN


def test_set_role_of_unknown_user_raises_unknown_user(storage):
    with pytest.raises(UnknownUser):
        storage.set_role("nobody", Role.ADMIN)
    with pytest.raises(UnknownUser):
        storage.set_role("\ud800", Role.ADMIN)


@pytest.mark.parametrize("role", ["root", "Student", "", None])
def test_unknown_roles_are_refused(storage, role):
    with pytest.raises(ValueError):
        storage.create_user("ada", "Ada", None, role, CASH)
    assert storage.count_users() == 0


def test_database_check_constraint_refuses_bad_role_even_bypassing_python(storage, refused):
    with pytest.raises(refused):
        storage._db.execute(
            "INSERT INTO users (username, display_name, role, created_at) VALUES ('x', 'x', 'root', 0)"
        )


@pytest.mark.parametrize("cash", [-1, 1.5, Decimal("10"), True, "100"])
def test_starting_cash_must_be_non_negative_integer_cents(storage, cash):
    with pytest.raises(ValueError):
        storage.create_user("ada", "Ada", None, Role.STUDENT, cash)


def test_reopening_the_database_keeps_users_and_portfolios(open_storage):
    first = open_storage()
    user = first.create_user("ada", "Ada", "scrypt$x", Role.TEACHER, CASH)
    first.close()
    again = open_storage()
    assert again.user_by_name("ada") == user
    assert again.user_by_name("ada").password_hash == "scrypt$x"
    assert again.portfolios_of(user.id)[0].cash_cents == CASH
    assert again.count_users() == 1


def _create_and_die(path):
    store = Storage(path, FakeClock())
    store.create_user("survivor", "S", None, Role.STUDENT, CASH)
    os._exit(0)  # no close(), no atexit: as abrupt as kill -9 for what was committed


def test_committed_user_survives_a_process_that_never_closed(db_path, clock):
    Storage(db_path, clock).close()
    proc = multiprocessing.get_context("spawn").Process(target=_create_and_die, args=(db_path,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    with Storage(db_path, clock) as store:
        assert store.user_by_name("survivor") is not None


def test_guest_has_no_password_hash(storage):
    guest = storage.create_user("guest-0a1b2c3d", "Nick", None, Role.STUDENT, CASH)
    assert guest.password_hash is None
    assert storage.user_by_id(guest.id).password_hash is None


def test_user_repr_does_not_show_the_password_hash(storage):
    user = storage.create_user("ada", "Ada", "scrypt$16384$8$1$c2FsdA==$c2VjcmV0", Role.STUDENT, CASH)
    assert "scrypt" not in repr(user) and "c2VjcmV0" not in repr(user)
    assert "scrypt" not in str(user)


def test_user_is_frozen(storage):
    user = storage.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.role = Role.ADMIN


@sqlite_only
def test_database_uses_wal_and_foreign_keys(storage):
    assert storage._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert storage._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert storage._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert storage._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_portfolio_for_unknown_owner_is_refused_by_foreign_key(storage, refused):
    with pytest.raises(refused):
        storage._db.execute(
            "INSERT INTO portfolios (owner_id, name, cash_cents, created_at) VALUES (999, 'x', 0, 0)"
        )


def test_database_from_a_newer_server_is_refused(db_path, clock):
    Storage(db_path, clock).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StorageError):
        Storage(db_path, clock)


def test_two_connections_see_each_others_writes(open_storage):
    server, operator = open_storage(), open_storage()
    operator.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    assert server.user_by_name("ada") is not None
    server.set_role("ada", Role.ADMIN)
    assert operator.user_by_name("ada").role is Role.ADMIN


def test_writer_waits_for_another_processes_transaction_instead_of_failing(db_path, clock):
    Storage(db_path, clock).close()
    other = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, as a busy operator CLI would
        release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        started = time.monotonic()
        release.start()
        with Storage(db_path, clock) as store:
            user = store.create_user("ada", "Ada", None, Role.STUDENT, CASH)
        waited = time.monotonic() - started
        release.join()
        assert user.username == "ada"
        assert waited >= 0.25  # it really waited for the lock rather than slipping past it
    finally:
        other.close()


@pytest.mark.parametrize("name", ["\ud800", "a\udfffb", "ada\x00"])
def test_lookup_of_unencodable_name_finds_nobody(storage, name):
    assert storage.user_by_name(name) is None


@pytest.mark.parametrize("user_id", [0, -1, 2**63, 2**70, "1", 1.0, True, None])
def test_lookup_of_impossible_id_finds_nobody(storage, user_id):
    storage.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    assert storage.user_by_id(user_id) is None


def test_hostile_names_are_stored_verbatim_not_interpreted(storage):
    name = "x'); DROP TABLE users; --"
    user = storage.create_user(name, "<script>alert(1)</script>", None, Role.STUDENT, CASH)
    assert storage.user_by_name(name) == user
    assert storage.count_users() == 1


def test_close_is_idempotent_and_closed_storage_refuses_use(open_storage):
    store = open_storage()
    store.close()
    store.close()
    with pytest.raises(StorageError):
        store.count_users()


def test_close_folds_the_wal_into_the_database_file(db_path, clock):
    with Storage(db_path, clock) as store:
        store.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_in_memory_storage_works_for_quick_tests(clock):
    with Storage(":memory:", clock) as store:
        store.create_user("ada", "Ada", None, Role.STUDENT, CASH)
        assert store.count_users() == 1


def test_in_dir_opens_the_shared_database_file(tmp_path, clock):
    with Storage.in_dir(tmp_path, clock) as store:
        store.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    assert (tmp_path / "stockquest.db").is_file()


@pytest.mark.parametrize(("amount", "cents"), [
    (Decimal("100000.00"), 10_000_000), (Decimal("0.01"), 1), ("12.345", 1234), ("12.355", 1236), (5, 500),
])
def test_to_cents_converts_money_exactly(amount, cents):
    assert to_cents(amount) == cents


def test_the_database_and_its_wal_files_are_readable_by_their_owner_only(tmp_path, clock):
    old_umask = os.umask(0o022)
    try:
        data_dir = tmp_path / "data"
        with Storage.in_dir(data_dir, clock) as storage:
            storage.create_user("ada", "Ada", "scrypt$hash", Role.STUDENT, CASH)
            files = sorted(data_dir.iterdir())
            assert [f.name for f in files] == ["stockquest.db", "stockquest.db-shm", "stockquest.db-wal"]
            assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o600"}
        assert oct(data_dir.stat().st_mode & 0o777) == "0o700"

        (data_dir / "stockquest.db").chmod(0o644)  # as an older version left it
        with Storage.in_dir(data_dir, clock) as storage:
            storage.create_user("bob", "Bob", "scrypt$hash", Role.STUDENT, CASH)
            assert {oct(f.stat().st_mode & 0o777) for f in data_dir.iterdir()} == {"0o600"}
    finally:
        os.umask(old_umask)


# -- the fence ------------------------------------------------------------------------------------------------------


def test_an_engine_fenced_out_by_a_newer_token_stores_nothing_more(open_storage):
    old, new = open_storage(), open_storage()
    old.fence(1)
    user = old.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    new.fence(2)
    new.set_role("ada", Role.TEACHER)
    with pytest.raises(FencedOut, match="token 2, newer than ours"):
        old.set_role("ada", Role.ADMIN)
    with pytest.raises(FencedOut):
        old.create_portfolio(user.id, "Second", CASH)
    assert isinstance(FencedOut("x"), StorageFailure)  # what a refused write raises: callers already handle it
    assert new.user_by_name("ada").role is Role.TEACHER and new.portfolio_ids_of(user.id) == ["1"]
    assert new.create_portfolio(user.id, "Second", CASH).name == "Second"


def test_a_fenced_engine_keeps_writing_with_its_token_and_a_later_one(open_storage):
    store = open_storage()
    assert store.stored_fence_token() == 0
    store.fence(5)
    store.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    store.set_role("ada", Role.TEACHER)  # the same token again
    store.fence(6)
    assert store.stored_fence_token() == 5  # recorded by a write, not by fence()
    store.set_role("ada", Role.ADMIN)
    assert store.stored_fence_token() == 6


def test_an_unfenced_process_writes_without_the_check_and_a_stale_token_is_refused_at_once(open_storage):
    engine, operator = open_storage(), open_storage()
    engine.fence(7)
    engine.create_user("ada", "Ada", None, Role.STUDENT, CASH)
    assert operator.stored_fence_token() == 7
    operator.create_user("bob", "Bob", None, Role.STUDENT, CASH)  # the command line: never fenced, never refused
    assert operator.stored_fence_token() == 7
    late = open_storage()
    late.fence(3)
    with pytest.raises(FencedOut):
        late.create_user("cy", "Cy", None, Role.STUDENT, CASH)
    assert late.count_users() == 2


@pytest.mark.parametrize("token", [-1, 2**63, 1.0, True, "1", None])
def test_a_fencing_token_is_a_non_negative_64_bit_int(storage, token):
    with pytest.raises(ValueError):
        storage.fence(token)


def test_a_named_state_is_stored_whole_replaced_and_read_back(storage):
    """app_state (the scenario being played): on both engines, so a takeover elsewhere finds it."""
    assert storage.load_state("scenario") is None
    storage.save_state("scenario", '{"run": 1, "text": "caf\\u00e9"}', now_ms=1)
    storage.save_state("scenario", '{"run": 2}', now_ms=2)
    assert storage.load_state("scenario") == '{"run": 2}'
    assert storage.load_state("other") is None
