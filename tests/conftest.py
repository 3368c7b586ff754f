"""Shared fixtures: a fresh world per test (config, services, app on a real 127.0.0.1 socket) and a WS client."""

import asyncio
import functools
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket
import ujson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import stockquest  # noqa: E402
from services.config import Config  # noqa: E402
from tests.postgres_server import postgres_server, postgres_url  # noqa: E402, F401 (fixtures of the storage tests)
from tests.redis_server import redis_server  # noqa: E402, F401 (a fixture for every test module)


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", help="the long fuzz: 10,000 examples per endpoint and transport")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test is a failed test: browser, SockJS and durability tests must really run."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"


@pytest.fixture
def config_overrides():
    """Override in a test module (or with parametrize) to change the server's Config."""
    return {}


@pytest.fixture
def config(tmp_path, config_overrides):
    values = dict(data_dir=tmp_path / "data", jwt_secret="test-secret-" + "x" * 32, seed=7, tick_ms=50,
                  password_hash_n=2**10, heartbeat_ms=30_000, overview_interval_s=30.0, signal_warmup_bars=60)
    values.update(config_overrides)
    return Config(**values)


@pytest.fixture
def services(config):
    built = stockquest.build_services(config, rng=random.Random(config.seed))
    yield built
    built.storage.close()


@pytest.fixture
def app(services, io_loop):
    return stockquest.make_app(services)


@pytest.fixture
def timers(services, io_loop):
    """The server's schedules (ticks, quote flushes, heartbeats...), stopped after the test."""
    started = io_loop.run_sync(lambda: stockquest.start(services))
    yield started
    io_loop.run_sync(lambda: stockquest.stop(services, started))


@pytest.fixture
def server(http_server, timers):
    """The app served on 127.0.0.1 with its timers running."""
    return http_server


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "stockquest.db"


@pytest.fixture(params=["sqlite", "postgres"])
def storage_backend(request):
    """The engine a storage test runs on: each runs on both (a test narrows it with its own parametrize)."""
    return request.param


@pytest.fixture
def open_storage(storage_backend, db_path, clock, request):
    """Opens storage on the test's own database (its SQLite file, or a new PostgreSQL database of the session's
    cluster): `open_storage(**options)`; all closed after the test. The test module provides the `clock`."""
    if storage_backend == "postgres":
        from services.storage.postgres import PostgresStorage

        url = request.getfixturevalue("postgres_url")
        make = functools.partial(PostgresStorage, url, clock)
    else:
        from services.storage import Storage

        make = functools.partial(Storage, db_path, clock)
    opened = []

    def open_(**options):
        opened.append(make(**options))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def storage(open_storage):
    """Storage on the test's own database, of each engine in turn (`storage_backend`)."""
    return open_storage()


@pytest.fixture
def refused(storage_backend):
    """What the database driver raises for data the schema refuses (a CHECK, a unique index, a column's type)."""
    if storage_backend == "postgres":
        import psycopg

        return (psycopg.IntegrityError, psycopg.DataError)
    return sqlite3.IntegrityError


class WSClient:
    """A test client: sends envelopes, receives decoded messages, skipping pushed HEARTBEATs unless asked."""

    def __init__(self, conn):
        self.conn = conn
        self.received: list[dict] = []

    async def send(self, message_type, data=None, request_id=None, **extra):
        message = {"type": message_type, "data": data, **extra}
        if request_id is not None:
            message["requestId"] = request_id
        await self.conn.write_message(ujson.dumps(message))

    async def send_raw(self, payload, binary=False):
        await self.conn.write_message(payload, binary=binary)

    async def recv(self, timeout=5.0, keep_heartbeats=False):
        while True:
            text = await asyncio.wait_for(self.conn.read_message(), timeout)
            if text is None:
                raise ConnectionError(f"closed: {self.conn.close_code} {self.conn.close_reason}")
            message = ujson.loads(text)
            self.received.append(message)
            if keep_heartbeats or message["type"] != "HEARTBEAT" or "requestId" in message:
                return message

    async def expect(self, message_type, timeout=5.0):
        """The next message of `message_type`, failing on anything else that is not a push."""
        message = await self.recv(timeout)
        assert message["type"] == message_type, message
        return message

    async def wait_for(self, message_type, timeout=5.0):
        """Skip other messages until one of `message_type` arrives."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no {message_type}")
            message = await self.recv(remaining)
            if message["type"] == message_type:
                return message

    async def drain(self, seconds):
        """Read everything that arrives for `seconds` (into `received`)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                await self.recv(remaining, keep_heartbeats=True)
            except asyncio.TimeoutError:
                break
        return self.received

    async def closed(self, timeout=5.0):
        """Read until the server closes; returns (code, reason)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            text = await asyncio.wait_for(self.conn.read_message(), max(remaining, 0.01))
            if text is None:
                return self.conn.close_code, self.conn.close_reason
            self.received.append(ujson.loads(text))

    def close(self):
        self.conn.close()


@pytest.fixture
def ws(http_port, server):
    """Open native WebSocket clients: `await ws("/ws/market-data", token=...)`; all closed after the test."""
    clients = []

    async def connect(path, token=None, headers=None, expect_established=True, query=""):
        url = f"ws://127.0.0.1:{http_port}{path}"
        params = [f"token={token}"] if token else []
        if query:
            params.append(query)
        if params:
            url += "?" + "&".join(params)
        request = tornado.httpclient.HTTPRequest(url, headers=headers or {})
        conn = await tornado.websocket.websocket_connect(request)
        client = WSClient(conn)
        clients.append(client)
        if expect_established:
            await client.expect("CONNECTION_ESTABLISHED")
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def make_user(services):
    """Create a stored user and return (user, token)."""
    from services.auth import hash_password

    def create(username="alice", role="student", password="correct horse"):
        user = services.storage.create_user(
            username, username.title(), hash_password(password, n=2**10), role,
            int(services.config.starting_cash * 100))
        return user, services.tokens.issue(user)

    return create



# the real server process ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_port():
    return _free_port


def wait_healthy(port: int, process: subprocess.Popen, log_path: Path, timeout: float = 20.0) -> None:
    """Poll /healthz with urllib (no event loop: callers may run inside Playwright's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server did not become healthy: {log_path.read_text()}")


@pytest.fixture
def start_server(tmp_path):
    """Start `stockquest.py` as a process on a free port: `process, port = start_server(*flags, env=...)`."""
    processes = []

    def start(*args, env=None, port=None, data_dir=None):
        port = port or _free_port()
        command = [sys.executable, str(ROOT / "stockquest.py"), "--data-dir", str(data_dir or tmp_path / "data"),
                   "--seed", "3", "--log-level", "WARNING", *args]
        if "--port" not in args and not (env and "STOCKQUEST_PORT" in env):
            command += ["--port", str(port)]
        log_path = tmp_path / f"server-{len(processes)}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(command, cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT,
                                       env={**os.environ, **(env or {})})
        processes.append(process)
        wait_healthy(port, process, log_path)
        return process, port

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


# the browser ------------------------------------------------------------------------

CHROMIUM = os.environ.get("STOCKQUEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser); one per test module.

    Module scope, not session: Playwright's sync API holds the thread's event loop while it runs.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


BROWSER_WAIT_MS = 20_000  # generous, for a loaded 2-core machine


@pytest.fixture
def new_page(browser):
    """Open pages (`new_page(viewport=...)`), each in its own context (own sessionStorage, so its own signed-in
    user), downloads allowed; a page's errors, its own Content Security Policy's refusals included, collect in
    `page.errors`."""
    contexts = []

    def make(viewport=None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, accept_downloads=True)
        context.set_default_timeout(BROWSER_WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("console", lambda message: "Content Security Policy" in message.text
                and page.errors.append(message.text))
        return page

    yield make
    for context in contexts:
        context.close()


# the installed package ------------------------------------------------------------

@pytest.fixture(scope="session")
def installed_package(tmp_path_factory):
    """This checkout's wheel pip-installed in a fresh venv (tests/installed_package.py): once per session, as the
    build and the install take a minute or two."""
    from tests.installed_package import build_and_install

    return build_and_install(tmp_path_factory.mktemp("package"))
