"""Stock Quest Realtime: configuration, the application factory and the IOLoop (wiring only)."""

import os

# The risk and signal maths use small matrices: BLAS worker threads would only spin beside the IOLoop.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import gc
import logging
import random
import signal
import socket
import sqlite3
import sys
import time
from dataclasses import fields
from decimal import Decimal, InvalidOperation
from pathlib import Path

import tornado.netutil
import tornado.web
import ujson
from tornado.ioloop import IOLoop, PeriodicCallback

from domain.clock import Clock, MarketClock, SystemClock
from domain.contests import ContestRules
from domain.market import MarketSimulator
from domain.money import to_cents
from domain.orders import OrderEngine
from domain.orders.checks import OrderRules
from domain.risk import default_limits, pre_trade_check
from domain.trading import Commission, IdSequence
from domain.universe import DEFAULT_UNIVERSE
from domain.users import CLASS_ROLES, Role
from handlers.admin import AdminEndpoint
from handlers.api import HealthHandler, MetricsHandler, MetricsSeriesHandler, StatsHandler, metrics_registry
from handlers.auth_api import AUTH_ROUTES
from handlers.base import ConnectionState
from handlers.classroom import CLASSROOM_ROUTES
from handlers.contests import CONTEST_ROUTES
from handlers.http import NotFoundHandler
from handlers.market_data import MarketDataEndpoint
from handlers.orders import OrdersEndpoint
from handlers.portfolio import PortfolioEndpoint
from handlers.remote import EngineDesk
from handlers.risk import RiskEndpoint
from handlers.server import make_server, proxy_network
from handlers.signals import SignalsEndpoint
from handlers.sockjs import sockjs_routes
from handlers.websocket import WebSocketTransport, keep_alive
from realtime.broker import Broker, BrokerUnavailable, InMemoryBroker
from realtime.fanout import QUOTES, QuoteFanout
from realtime.hub import ConnectionHub
from realtime.protocol import CloseCode, iso_timestamp
from realtime.scheduler import LoopScheduler
from realtime.urls import safe_url
from realtime.wire import orders as wire_orders
from services.auth import TokenService, load_or_create_secret
from services.cluster.link import BEAT_MS, CALLS, EngineLink
from services.cluster.market_state import MarketResume
from services.config import Config
from services.container import Services
from services.contests import ContestDirectory, ContestService
from services.exchange import Exchange
from services.logstream import LogStream, redact
from services.market import MarketService
from services.metrics import Metrics
from services.news import NewsBoard
from services.portfolio_book import PortfolioBook
from services.portfolios import PortfolioFeed
from services.risk import RiskLimitBook, RiskService
from services.scenarios import ScenarioService, StoredState, load_scenarios
from services.signals import PUSH_EVERY_MS, SignalService
from services.storage import DatabaseUnreachable, StorageError, open_storage
from services.throttle import SignInThrottle
from services.trading import TradingService
from services.users import UserDirectory

__all__ = ["Services", "build_services", "make_app", "start", "stop", "start_timers", "parse_config", "main"]
__version__ = "0.1.0"  # the package's version too (setup.cfg reads it)

log = logging.getLogger("stockquest")
access_log = logging.getLogger("tornado.access")

ROOT = Path(__file__).resolve().parent
# Installed from the wheel, the dashboard, docs and browser libraries are in stockquest_files/ beside this module
# (setup.py copies them there, laid out as in the checkout); run from the checkout, they are the checkout's own.
PACKAGED_FILES = ROOT / "stockquest_files"
FILES = PACKAGED_FILES if PACKAGED_FILES.is_dir() else ROOT
STATIC_DIR = FILES / "static"
SCENARIOS_DIR = FILES / "scenarios"  # the scenarios a teacher may play (docs/scenarios.md)
VENDOR_DIR = FILES / "node_modules"  # npm's layout: <library>/dist/
# The file the page (static/index.html) loads from each browser library, at /vendor/<library>/<file>.
BROWSER_LIBRARIES = {"sockjs-client": "sockjs.min.js",
                     "lightweight-charts": "lightweight-charts.standalone.production.js"}
MAX_HTTP_BODY = 1024 * 1024  # REST bodies are small JSON; SockJS posts are capped by its own response limits

ENDPOINTS = {
    "market-data": MarketDataEndpoint,
    "portfolio": PortfolioEndpoint,
    "orders": OrdersEndpoint,
    "risk-monitoring": RiskEndpoint,
    "ml-signals": SignalsEndpoint,
    "admin": AdminEndpoint,
}


def make_broker(config: Config) -> Broker:
    """The in-process broker, or with `--redis-url` the Redis one (whose client is imported only then)."""
    if config.redis_url is None:
        return InMemoryBroker()
    from realtime.redis_broker import RedisBroker
    return RedisBroker(config.redis_url)


def build_services(config: Config, *, clock: Clock | None = None, rng: random.Random | None = None) -> Services:
    """Every service of one application, wired once: the only place that knows what depends on what.

    Alone (no `--redis-url`) the process runs the engine from the start. Past one process, it serves connections
    and reaches the engine through `engine_link`; an engine candidate builds the engine when it is elected
    (`start`, `engine_elected`).
    """
    clock = clock or SystemClock()
    Path(config.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    metrics = Metrics(clock=clock, window_s=config.metrics_window_s)
    broker = make_broker(config)
    hub = ConnectionHub(clock=clock, broker=broker, max_total=config.max_connections,
                        max_per_user=config.max_connections_per_user)
    fanout = QuoteFanout(soft_buffer=config.max_buffered_bytes // 16, hard_buffer=config.max_buffered_bytes,
                         stall_ms=int(config.slow_consumer_s * 1000), tick_ms=config.tick_ms)

    def quotes_arrived(channel: str, message: bytes) -> None:
        fanout.on_quotes(channel, message)  # then, at once, every subscriber whose interval has come
        sent = fanout.run_due(clock.now_ms())
        if sent and fanout.tick_time_ms is not None:  # each frame's delay, as the last frame of the batch saw it
            metrics.fanout_delay.observe(clock.now_ms() - fanout.tick_time_ms, sent)

    broker.subscribe(QUOTES, quotes_arrived)
    hub.attach(fanout)
    services = Services(
        config=config, clock=clock, scheduler=LoopScheduler(),
        sign_in=SignInThrottle(clock, sign_ups_per_minute=config.sign_ups_per_minute),
        broker=broker, hub=hub, fanout=fanout, metrics=metrics,
        logs=LogStream(clock=clock, rate_per_s=config.log_stream_rate_per_s,
                       backlog_bytes=config.log_stream_backlog_bytes),
        news=NewsBoard(broker), started_at=clock.now(),
    )
    if config.redis_url is None:
        build_engine(services, rng=rng or random.Random(config.seed))
    else:
        services.engine_link = EngineLink(broker, node=node_id(), timeout_s=config.engine_timeout_s)
        hub.channel_changes = set()  # told to the engine, whose services publish only to channels someone holds
    return services


def build_engine(services: Services, *, rng: random.Random, resume: MarketResume | None = None,
                 fence_token: int | None = None) -> None:
    """The engine's part of `services`: storage, accounts, the market, orders, portfolios, risk, signals, scenarios.

    `resume`: the market as the last leader published it, so that prices go on from there. `fence_token`: the
    engine lease's token, which storage checks on every write from the first (restoring may write).
    """
    config, clock, hub = services.config, services.clock, services.hub
    data_dir = Path(config.data_dir)
    secret = config.jwt_secret or load_or_create_secret(data_dir)
    storage = open_storage(clock, data_dir=data_dir, database_url=config.database_url)
    if fence_token is not None:
        storage.fence(fence_token)
    starting_cash = to_cents(config.starting_cash)
    tokens = TokenService(secret, clock=clock, ttl_s=config.token_ttl_s, algorithm=config.jwt_algorithm,
                          public_key=config.jwt_public_key)
    users = UserDirectory(storage=storage, tokens=tokens, starting_cash_cents=starting_cash)
    market_clock = MarketClock(clock, speed=config.speed) if resume is None else resume.market_clock(clock)
    simulator = MarketSimulator(
        universe=DEFAULT_UNIVERSE if resume is None else resume.universe(DEFAULT_UNIVERSE),
        rng=rng, start_market_ms=int(market_clock.now() * 1000), wall_ms=clock.now_ms(),
        day_length_ms=int(config.day_length_s * 1000), predictability=config.predictability,
        exchange_hours=config.exchange_hours)
    if resume is not None:
        simulator.version = resume.version  # the fan-outs on every node know quotes by version: it only grows
    market = MarketService(simulator, market_clock, clock, broker=services.broker, hub=hub)
    market.publish_quotes()

    directory = ContestDirectory(storage=storage, clock=clock, market=market)
    limits = RiskLimitBook(storage=storage, clock=clock, defaults=default_limits(starting_cash),
                           defaults_for=directory.risk_limits)
    contest_checks = directory.checks()
    last_order, last_execution = storage.trading_ids()
    engine = OrderEngine(
        order_ids=IdSequence("O", last_order), execution_ids=IdSequence("E", last_execution),
        commission=commission(config), allow_short=config.allow_short,
        gate_checks=(contest_checks.gate,), terms_for=contest_checks.terms_for,
        extra_checks=(contest_checks.rules, pre_trade_check(limits.limits_for, market.quotes)))
    book = PortfolioBook(engine=engine, storage=storage, users=users, starting_cash_cents=starting_cash,
                         traders=directory.trader)
    portfolios = PortfolioFeed(book=book, market=market, storage=storage, clock=clock, hub=hub,
                               value_sample_s=config.portfolio_value_sample_s)
    trading = TradingService(engine=engine, book=book, storage=storage, market=market, hub=hub, clock=clock,
                             on_ledgers_changed=portfolios.changed, order_ack=services.metrics.order_ack)
    trading.restore()
    risk = RiskService(book=book, limits=limits, users=users, market=market, storage=storage, clock=clock, hub=hub,
                       lookback=config.risk_lookback_days, contest_of=directory.contest_id_of)
    risk.restore()
    signals = SignalService(market=market, book=book, clock=clock, hub=hub, warmup_bars=config.signal_warmup_bars)
    scenarios = ScenarioService(market=market, hub=hub, clock=clock, state=StoredState(storage, clock),
                                shipped=load_scenarios(SCENARIOS_DIR, market.specs()), board=services.news)
    scenarios.restore()
    scenarios.announce_history()
    contests = ContestService(directory=directory, storage=storage, book=book, trading=trading, users=users,
                              market=market, clock=clock, hub=hub, default_rules=house_rules(config),
                              value_sample_s=config.portfolio_value_sample_s, hash_cost=config.password_hash_n)
    trading.observe(contests.on_trades)
    services.storage, services.tokens, services.users = storage, tokens, users
    services.market, services.book, services.trading, services.portfolios = market, book, trading, portfolios
    services.risk, services.signals, services.scenarios, services.contests = risk, signals, scenarios, contests
    services.exchange = Exchange(scenarios=scenarios, market=market, trading=trading, risk=risk, signals=signals)


def commission(config: Config) -> Commission:
    return Commission(to_cents(config.commission_per_order), config.commission_per_share * 100)


def house_rules(config: Config) -> ContestRules:
    """A new contest's rules until its teacher changes them: the server's own starting cash and commissions."""
    return ContestRules(starting_cash_cents=to_cents(config.starting_cash), commission=commission(config),
                        short_selling=config.allow_short)


def order_rules(config: Config) -> OrderRules:
    """The engine's order rules as configured: what a gateway's dashboard page states (the engine is elsewhere)."""
    return OrderRules(commission(config), config.allow_short)


def drop_engine(services: Services) -> None:
    """Forget the engine's part (this process lost the lease): its storage closes, its state goes."""
    if services.storage is not None:
        services.storage.close()
    for name in ("storage", "tokens", "users", "market", "book", "trading", "portfolios", "risk", "signals",
                 "scenarios", "contests", "exchange"):
        setattr(services, name, None)


def node_id() -> str:
    """This process among the others sharing a Redis: host, pid and a random part (a restarted pid differs)."""
    return f"{socket.gethostname()}-{os.getpid()}-{random.SystemRandom().randrange(16**6):06x}"


class EngineCandidate:
    """Past one process, a process that may run the engine: it campaigns for the lease (services.cluster.lease),
    runs the engine while it holds it, and stops the moment it does not.

    Elected, it builds the engine from storage (open orders, ledgers) and the market from the state the last leader
    saved, fences storage with its token, answers the gateways' calls (handlers.remote.EngineDesk) and saves the
    market's state every second for the next one.
    """

    def __init__(self, services: Services):
        from services.cluster.lease import EngineLease, Leadership  # the Redis client, only past one process
        config = services.config
        self.services = services
        self.lease = EngineLease(config.redis_url, node=services.engine_link.node, address=advertised_url(config),
                                 ttl_ms=config.lease_ttl_ms)
        self.leadership = Leadership(self.lease, on_elected=self._elected, on_deposed=self._deposed,
                                     floor=self._stored_token)
        self.desk = EngineDesk(services, ENDPOINTS)
        self._timers: list[PeriodicCallback] = []
        self._saving: asyncio.Task | None = None
        self.took_over_s: float | None = None  # how long the last election took to have the engine running

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader and self.services.engine_link.local

    def start(self) -> None:
        self.leadership.start()

    async def stop(self) -> None:
        if self.is_leader:
            self._stop_engine()
            self.services.trading.flush()
            await self._save_market()
        await self.leadership.stop()
        drop_engine(self.services)

    def _stored_token(self) -> int:
        """The highest fencing token storage has seen: the next lease's token is above it."""
        config = self.services.config
        storage = open_storage(self.services.clock, data_dir=config.data_dir, database_url=config.database_url)
        try:
            return storage.stored_fence_token()
        finally:
            storage.close()

    async def _elected(self, token: int) -> None:
        started = time.monotonic()
        services = self.services
        saved = await self.lease.saved_market()
        resume = MarketResume.from_json(saved) if saved else None
        drop_engine(services)  # what a failed election may have left
        build_engine(services, rng=random.Random(services.config.seed), resume=resume, fence_token=token)
        services.trading.commit_later(asyncio.get_running_loop().call_soon)
        services.engine_link.local = True
        self.desk.open()
        try:  # the gateways call as soon as they hear the first beat: be listening by then
            await asyncio.wait_for(services.broker.confirmed(CALLS), 5.0)
        except TimeoutError:
            log.warning("Redis has not confirmed the engine's subscription to calls; beating anyway")
        url = self.lease.address
        self._timers = [*start_engine_timers(services), *_periodic([
            (self._schedule_save, 1000), (lambda: services.engine_link.beat(token, url), BEAT_MS),
            (self.desk.view.sweep, 1000)])]
        services.engine_link.beat(token, url)
        self.took_over_s = time.monotonic() - started
        log.info("engine running here (fencing token %d; market %s; ready in %.2f s)", token,
                 "resumed from the last leader's state" if resume else "new", self.took_over_s)

    def _stop_engine(self) -> None:
        for timer in self._timers:
            timer.stop()
        self._timers = []
        self.desk.close()
        self.services.engine_link.local = False

    async def _deposed(self, _reason: str) -> None:
        self._stop_engine()
        drop_engine(self.services)  # nothing more is written: another process may be the engine already

    def _schedule_save(self) -> None:
        if self._saving is None or self._saving.done():
            self._saving = asyncio.ensure_future(self._save_market())

    async def _save_market(self) -> None:
        market, token = self.services.market, self.leadership.token
        if market is None or token is None:
            return
        try:
            await self.lease.save_market(token, MarketResume.of(market, self.services.clock.now_ms()).to_json())
        except Exception as error:  # noqa: BLE001 (Redis away: the lease's own loop decides what that means)
            log.debug("market state not saved: %s", error)


def where_the_data_is(config: Config) -> str:
    """For the start-up line: a gateway keeps none; the engine's is PostgreSQL (no password shown) or SQLite."""
    if config.role == "gateway":
        return "a gateway: the data is the engine's"
    if config.database_url:
        return f"data in {safe_url(config.database_url)}"
    return f"data in {Path(config.data_dir).resolve()}"


def advertised_url(config: Config) -> str:
    """Where this process's HTTP server is reached by the other processes (told to them in the lease)."""
    if config.advertise_url:
        return config.advertise_url
    host = socket.gethostname() if config.host in ("0.0.0.0", "::", "") else config.host
    return f"http://{host}:{config.port}"


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without query strings: `?token=` must never reach a log file."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    access_log.log(level, "%d %s %s (%s) %.1fms", status, request.method, request.path, request.remote_ip,
                   1000 * request.request_time())


class StaticFiles(tornado.web.StaticFileHandler):
    """Files from a folder; a path with a NUL byte is not found (the file system would raise, a 500)."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")

    def parse_url_path(self, url_path: str) -> str:
        if "\x00" in url_path:
            raise tornado.web.HTTPError(404)
        return super().parse_url_path(url_path)


class StaticHandler(StaticFiles):
    """The dashboard's files; ES modules imported by other modules carry no version stamp, so browsers revalidate."""

    def set_extra_headers(self, path: str) -> None:
        if path.endswith(".js") and not self.get_argument("v", None):
            self.set_header("Cache-Control", "no-cache")


# The page runs only its own scripts, talks only to its own server (WebSocket and SockJS), and is never framed.
# Styles may be inline: the chart library styles its elements from script.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class DashboardHandler(tornado.web.RequestHandler):
    """The dashboard's page, stating this server's order rules and class roles so the page never restates them."""

    def initialize(self, services: Services) -> None:
        rules = services.trading.rules if services.trading is not None else order_rules(services.config)
        config = {"orders": wire_orders.rules(rules),
                  "classRoles": [str(role) for role in Role if role in CLASS_ROLES]}
        self.server_config = ujson.dumps(config)  # "/" escaped: nothing in it can close the <script>

    def get(self):
        self.set_header("Cache-Control", "no-cache")
        for name, value in PAGE_SECURITY_HEADERS.items():
            self.set_header(name, value)
        self.render("index.html", server_config=self.server_config)


def make_app(services: Services, **settings) -> tornado.web.Application:
    """The Tornado application for `services`: every endpoint natively and over SockJS, plus REST."""
    config = services.config
    routes = []
    for name, endpoint_cls in ENDPOINTS.items():
        prefix = f"/ws/{name}"
        routes.append((prefix, WebSocketTransport, dict(endpoint_cls=endpoint_cls, services=services)))
        routes.extend(sockjs_routes(prefix, endpoint_cls, services))
    routes += [
        (r"/healthz", HealthHandler, dict(services=services)),
        (r"/metrics", MetricsHandler, dict(services=services, registry=metrics_registry(services))),
        (r"/api/stats", StatsHandler, dict(services=services)),
        (r"/api/metrics", MetricsSeriesHandler, dict(services=services)),
        *AUTH_ROUTES(services),
        *CLASSROOM_ROUTES(services),
        *CONTEST_ROUTES(services),
        (r"/", DashboardHandler, dict(services=services)),
        *[(rf"/vendor/{library}/(.*)", StaticFiles, dict(path=str(vendor_dir(config) / library / "dist")))
          for library in BROWSER_LIBRARIES],
    ]
    return tornado.web.Application(
        routes,
        static_path=str(STATIC_DIR),
        static_handler_class=StaticHandler,
        template_path=str(STATIC_DIR),
        websocket_max_message_size=config.max_message_bytes,
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        default_handler_args=dict(services=services),
        **settings,
    )


def vendor_dir(config: Config) -> Path:
    """Where /vendor/ is served from: --vendor-dir, else the packaged libraries or the checkout's node_modules."""
    return Path(config.vendor_dir) if config.vendor_dir else VENDOR_DIR


def missing_browser_libraries(folder: Path) -> list[Path]:
    """The files the page loads from /vendor/ that `folder` lacks: without them the dashboard has no charts."""
    return [path for library, name in BROWSER_LIBRARIES.items()
            if not (path := folder / library / "dist" / name).is_file()]


async def start(services: Services) -> list[PeriodicCallback]:
    """Start the broker, the log stream and every schedule, inside the running loop; alone, the engine too, and
    past one process an engine candidate's campaign for the lease."""
    await services.broker.start()
    services.logs.install(IOLoop.current())
    if services.engine_link is None:
        services.trading.commit_later(asyncio.get_running_loop().call_soon)
        return start_timers(services) + start_engine_timers(services)
    if services.config.role != "gateway":
        services.candidate = EngineCandidate(services)
        services.candidate.start()
    return start_timers(services)


async def stop(services: Services, timers: list[PeriodicCallback]) -> None:
    for timer in timers:
        timer.stop()
    services.logs.uninstall()
    if services.candidate is not None:
        await services.candidate.stop()
    elif services.trading is not None:
        services.trading.flush()
    if services.engine_link is not None:
        services.engine_link.fail_pending()
    await services.broker.stop()


def _periodic(schedule) -> list[PeriodicCallback]:
    timers = [PeriodicCallback(callback, interval) for callback, interval in schedule]
    for timer in timers:
        timer.start()
    return timers


def start_timers(services: Services) -> list[PeriodicCallback]:
    """The schedules of every process serving connections: heartbeats, pings, sweeps, role reviews, metrics, logs."""
    config, hub = services.config, services.hub

    def heartbeat():
        hub.broadcast("HEARTBEAT", {"serverTime": iso_timestamp(services.clock.now())})

    def sweep_idle():
        for conn in hub.idle(config.idle_timeout_s):
            conn.close(CloseCode.IDLE_TIMEOUT, "idle timeout")

    def review_roles():
        review_connection_roles(services)

    def ping():
        keep_alive(hub.connections(), services.clock.now(), interval=config.ping_interval_s,
                   timeout=config.ping_interval_s)

    def sample_metrics():
        services.metrics.sample(hub.counters(), hub.connection_counts())
        services.logs.report_drops()

    def log_stats():
        log.info("connection stats %s", hub.stats())


    def tell_engine():
        link = services.engine_link
        if link is None or link.local:
            return
        message = {"kind": "alive", "stats": hub.stats(), "counters": hub.counters()}
        changed, hub.channel_changes = hub.channel_changes, set()
        if link.new_leader:  # a new leader learns every signed-in connection and every channel afresh
            link.new_leader = False
            message["sessions"] = [[c.session_id, c.user_id, c.endpoint] for c in hub.connections() if c.user_id]
            message["channels"] = {"all": hub.held_channels()}
        elif changed:
            message["channels"] = {"held": [c for c in changed if hub.held(c)],
                                   "dropped": [c for c in changed if not hub.held(c)]}
        link.tell(message)

    return _periodic([
        (lambda: announce_service_status(services), 500),
        (tell_engine, 1_000),
        (heartbeat, config.heartbeat_ms),
        (sweep_idle, min(5_000, config.idle_timeout_s * 250)),
        (ping, min(1_000, config.ping_interval_s * 250)),
        (review_roles, 1_000),
        (log_stats, config.stats_log_interval_s * 1000),
        (sample_metrics, 1_000),
    ])


def start_engine_timers(services: Services) -> list[PeriodicCallback]:
    """The engine's schedules: ticks (their quotes go out as they arrive), pushes, risk, signals, the overview."""
    config, market = services.config, services.market
    timers = _periodic([
        (services.exchange.tick, config.tick_ms),
        (lambda: services.portfolios.run_due(services.clock.now_ms()), 250),
        (lambda: services.risk.on_values(services.portfolios.record_values()), config.portfolio_value_sample_s * 1000),
        (services.risk.evaluate, config.risk_evaluate_ms),
        (services.risk.push_updates, config.risk_update_ms),
        (services.signals.push_all, PUSH_EVERY_MS),
        (market.publish_overview, config.overview_interval_s * 1000),
        (services.scenarios.announce_history, 5_000),
        (services.contests.tick, 1_000),
    ])

    def warm_signals():
        if not services.signals.warm_next():
            warming.stop()

    warming = PeriodicCallback(warm_signals, 200)  # one symbol's model warm-up per step, not all at start-up
    warming.start()
    return [*timers, warming]


def announce_service_status(services: Services) -> None:
    """Tell every open connection when the service becomes degraded and when it is whole again (SERVICE_STATUS),
    so that a client whose requests would fail is told why instead of meeting silence: past one process, when
    this process has lost Redis or has not heard the engine for two seconds. A connection opened meanwhile hears
    the degraded status once it is established (Endpoint._open)."""
    link = services.engine_link
    if link is None:
        return
    status = link.service_status()
    if status == link.announced:
        return
    link.announced = status
    log.warning("service %s (broker %s, engine %s)", status["status"], status["broker"], status["engine"])
    services.hub.broadcast("SERVICE_STATUS", {**status, "time": iso_timestamp(services.clock.now())})


def review_connection_roles(services: Services) -> None:
    """A demoted teacher stops hearing other users' data within a second (Endpoint.review_role): the roles as
    stored now, read here or, on a gateway, asked of the engine in one call for every connection that needs it."""
    conns = [conn for conn in services.hub.connections() if conn.role_grants]
    if not conns:
        return
    link = services.engine_link
    if link is None or link.local:
        for conn in conns:
            conn.review_role(services.users.role_of(conn.user))
        return

    def answered(reply):
        if reply is None:
            return  # the engine is away: reviewed again in a second
        roles = reply["roles"]
        for conn in conns:
            if conn.state is ConnectionState.OPEN:
                conn.review_role(Role(roles.get(conn.user_id, Role.STUDENT)))

    link.call({"kind": "roles", "userIds": sorted({conn.user_id for conn in conns})}, answered)


# configuration ----------------------------------------------------------------

def _env(name: str) -> str | None:
    return os.environ.get("STOCKQUEST_" + name.upper().replace("-", "_"))


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal amount: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("amount must be a non-negative number")
    return value


def _positive(kind):
    def convert(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value
    return convert


def _proxy(text: str) -> str:
    try:
        return str(proxy_network(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address or network: {text}") from None


def _flag(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="stockquest",
        description="Stock Quest Realtime: a live simulated stock market for classrooms. Every flag can also be "
                    "set as an environment variable STOCKQUEST_<NAME> (e.g. STOCKQUEST_PORT=9000; lists comma-"
                    "separated). Operator commands: 'stockquest user add NAME --role ROLE --data-dir DIR' "
                    "(password on stdin), 'stockquest user set-role NAME --role ROLE --data-dir DIR' and "
                    "'stockquest user batch --prefix knights --count 30 --sheet cards.html --data-dir DIR' "
                    "(a class's students with readable passwords, and a sheet of cards to print).",
        epilog=f"Documentation: {FILES / 'docs'} (deployment.md for systemd and nginx; the unit and site files "
               f"are in {FILES / 'deploy'}).")
    parser.add_argument("--version", action="version", version=f"stockquest {__version__}")

    def option(name, help, type=str, default=None, **kwargs):
        env = _env(name)
        if env is not None:
            default = [item for item in env.split(",") if item] if kwargs.get("action") == "append" else env
        parser.add_argument("--" + name, help=f"{help} [env STOCKQUEST_{name.upper().replace('-', '_')}]",
                            type=type, default=default, **kwargs)

    option("host", f"address to listen on (default {defaults.host})", default=defaults.host)
    option("port", f"port to listen on (default {defaults.port})", type=int, default=defaults.port)
    option("data-dir", "folder for the SQLite database and the generated JWT secret; created on first run "
           "(default ./data)", type=Path, default=defaults.data_dir)
    option("vendor-dir", "folder with the dashboard's browser libraries as npm lays them out "
           "(sockjs-client/dist, lightweight-charts/dist): a node_modules made by `npm ci` (default: the ones "
           f"packaged, or the checkout's node_modules; now {VENDOR_DIR})", type=Path)
    option("seed", "seed of the market's randomness, for reproducible runs (default: random)", type=int)
    option("tick-ms", f"market tick in milliseconds (default {defaults.tick_ms})", type=_positive(int),
           default=defaults.tick_ms)
    option("speed", "simulated-clock multiplier (default 1)", type=_positive(float), default=defaults.speed)
    option("day-length", f"length of a simulated trading day in simulated seconds (default {defaults.day_length_s:g})",
           type=_positive(float), default=defaults.day_length_s)
    option("exchange-hours", "simulate exchange hours with closed periods (default off)", type=_flag,
           default=defaults.exchange_hours)
    option("jwt-secret", "HS256 secret for tokens (default: generated and saved in the data dir; never logged)")
    option("allow-origin", "an extra browser Origin allowed to connect (repeatable; the server's own origin "
           "is always allowed; '*' allows all)", action="append", default=[])
    option("trusted-proxy", "address or network of a reverse proxy whose X-Forwarded-For and X-Forwarded-Proto "
           "are believed (repeatable; default none: the peer's address is the client's)", action="append",
           default=[], type=_proxy)
    option("rate-limit", f"messages per second each connection may send (bursts of twice that; default "
           f"{defaults.rate_limit_per_s:g})", type=_positive(float), default=defaults.rate_limit_per_s)
    option("max-connections", f"server-wide connection limit (default {defaults.max_connections})",
           type=_positive(int), default=defaults.max_connections)
    option("starting-cash", f"cash of a new user's portfolio (default {defaults.starting_cash})", type=_decimal,
           default=defaults.starting_cash)
    option("commission-per-order", "commission per order, charged on its first fill (default 0)", type=_decimal,
           default=defaults.commission_per_order)
    option("commission-per-share", "commission per share filled (default 0)", type=_decimal,
           default=defaults.commission_per_share)
    option("allow-short", "allow short selling (default off)", type=_flag, default=defaults.allow_short)
    option("sign-ups-per-minute", f"new accounts (register, guest) one address may make per minute, in bursts "
           f"of twice that (default {defaults.sign_ups_per_minute:g})", type=_positive(float),
           default=defaults.sign_ups_per_minute)
    option("compression", "permessage-deflate on native WebSocket connections whose client offers it: about a "
           "tenth of the bytes for more server CPU and ~25 KiB per connection (default off; `--compression` "
           "alone turns it on)", type=_flag, default=defaults.compression, nargs="?", const=True)
    option("guests", "allow guest sign-in (classroom mode; default on)", type=_flag, default=True)
    option("anonymous-market-data", "allow market data without signing in (default on)", type=_flag, default=True)
    option("redis-url", "Redis for the broker between server processes, e.g. redis://127.0.0.1:6379/0 (default "
           "none: one process, in-memory broker)")
    option("database-url", "PostgreSQL for the stored data, e.g. postgresql://stockquest:PASSWORD@127.0.0.1:5432/"
           "stockquest (default none: SQLite in the data dir)")
    option("role", "past one process (with --redis-url): gateway serves connections and reaches the engine "
           "elsewhere; engine only runs the engine when it holds the lease; both (the default) does either",
           default=defaults.role, choices=("gateway", "engine", "both"))
    option("advertise-url", "where the other processes reach this one's HTTP server (default http://HOST:PORT, "
           "the host name when listening on every address)")
    option("log-level", "DEBUG, INFO, WARNING or ERROR (default INFO)", default=defaults.log_level,
           type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def parse_config(argv: list[str]) -> Config:
    args = build_parser().parse_args(argv)
    values = dict(
        host=args.host, port=args.port, data_dir=args.data_dir, seed=args.seed, tick_ms=args.tick_ms,
        speed=args.speed, day_length_s=args.day_length, exchange_hours=args.exchange_hours,
        jwt_secret=args.jwt_secret, rate_limit_per_s=args.rate_limit, rate_limit_burst=max(1, int(2 * args.rate_limit)),
        allow_origin=tuple(args.allow_origin), trusted_proxies=tuple(args.trusted_proxy),
        max_connections=args.max_connections,
        starting_cash=args.starting_cash, commission_per_order=args.commission_per_order,
        commission_per_share=args.commission_per_share, allow_short=args.allow_short, allow_guests=args.guests,
        sign_ups_per_minute=args.sign_ups_per_minute,
        anonymous_market_data=args.anonymous_market_data, compression=args.compression,
        log_level=args.log_level, vendor_dir=args.vendor_dir, redis_url=args.redis_url or None,
        role=args.role, advertise_url=args.advertise_url or None,
        database_url=args.database_url or None,
    )
    if args.role != "both" and not args.redis_url:
        build_parser().error(f"--role {args.role} needs --redis-url: the processes of a cluster meet in Redis")
    assert set(values) <= {f.name for f in fields(Config)}
    return Config(**values)


# logging ----------------------------------------------------------------------

_CONTEXT = ("session_id", "user_id", "endpoint", "channel")


class ContextFormatter(logging.Formatter):
    """Appends the structured context a record carries (session id, user id, endpoint) as key=value, and blanks
    out tokens and passwords wherever a library quotes a URL or a header (Tornado's uncaught-exception line)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{key}={getattr(record, key)}" for key in _CONTEXT if getattr(record, key, None))
        return redact(f"{text} {context}" if context else text)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("tornado.access").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)


# running ----------------------------------------------------------------------

class CannotStart(Exception):
    """Something outside the server stops it from starting (its data, its port, its Redis): one message, no
    traceback."""


async def serve(config: Config) -> None:
    try:  # the port first: a taken one is known before anything is loaded
        # A deep accept backlog: after a restart a whole class (or a bench) reconnects at once.
        sockets = tornado.netutil.bind_sockets(config.port, config.host, backlog=4096)
    except OSError as error:
        raise CannotStart(f"cannot listen on {config.host}:{config.port}: {error.strerror or error}") from None
    try:
        services = build_services(config)
    except DatabaseUnreachable as error:  # its message names the URL
        raise CannotStart(str(error)) from None
    except (OSError, sqlite3.Error, StorageError) as error:
        raise CannotStart(f"cannot use the data in {Path(config.data_dir).resolve()}: {error}") from None
    server = make_server(make_app(services), config, max_body_size=MAX_HTTP_BODY)
    server.add_sockets(sockets)
    try:
        timers = await start(services)
    except BrokerUnavailable as error:
        drop_engine(services)
        raise CannotStart(str(error)) from None
    gc.collect()
    gc.freeze()  # the long-lived startup objects (history, universe) leave the cyclic collector's scans
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    libraries = vendor_dir(config)
    log.info("dashboard files in %s, browser libraries in %s", STATIC_DIR, libraries)
    if missing := missing_browser_libraries(libraries):
        log.warning("the dashboard's browser libraries are missing (no charts, no SockJS fallback): %s. Run `npm ci` "
                    "in a checkout of Stock Quest and pass --vendor-dir CHECKOUT/node_modules, or build the package "
                    "after `npm ci`",
                    ", ".join(map(str, missing)))
    log.info("Stock Quest %s listening on http://%s:%d/ (%s)", __version__, config.host, config.port,
             where_the_data_is(config))
    await stopping.wait()

    started = time.monotonic()
    log.info("shutting down")
    server.stop()
    for timer in timers:
        timer.stop()
    for conn in services.hub.connections():
        conn.close(CloseCode.GOING_AWAY, "server shutting down")
    try:
        await asyncio.wait_for(server.close_all_connections(), timeout=3.0)
    except asyncio.TimeoutError:
        log.warning("some connections did not close in time")
    await stop(services, [])
    drop_engine(services)
    log.info("stopped in %.2f s", time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["user"], ["contest"]):
        from services import users_cli
        return users_cli.run(argv, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)
    config = parse_config(argv)
    configure_logging(config.log_level)
    try:
        asyncio.run(serve(config))
    except CannotStart as error:
        log.critical("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
