"""Server configuration: one frozen dataclass, built from the command line and STOCKQUEST_* variables."""

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

__all__ = ["Config"]


@dataclass(frozen=True, kw_only=True)
class Config:
    """Every setting the server reads; defaults are the embedded classroom defaults."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    seed: int | None = None
    tick_ms: int = 250
    speed: float = 1.0
    jwt_secret: str | None = None  # generated and saved in data_dir when absent
    jwt_algorithm: str = "HS256"
    jwt_public_key: str | None = None  # PEM; switches verification to RS256
    token_ttl_s: int = 12 * 3600
    allow_origin: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For / -Proto are believed
    header_timeout_s: float = 10.0  # a request's headers (or the next keep-alive request) must arrive within this
    body_timeout_s: float = 30.0
    max_connections: int = 10_000
    max_connections_per_user: int = 10  # per endpoint
    log_level: str = "INFO"
    redis_url: str | None = None  # the Redis broker between server processes; None: the in-process broker
    role: str = "both"  # gateway (serves connections), engine (may run the engine), both
    advertise_url: str | None = None  # where the other processes reach this one's HTTP server; None: host and port
    lease_ttl_ms: int = 3000  # the engine lease: a standby takes over this long after the leader stops renewing
    engine_timeout_s: float = 5.0  # a gateway's call to the engine not answered by then: ERROR UNAVAILABLE
    database_url: str | None = None  # PostgreSQL (postgresql://...) for the stored data; None: SQLite in data_dir
    vendor_dir: Path | None = None  # the browser libraries (a node_modules); None: the packaged or checkout's ones

    heartbeat_ms: int = 30_000
    ping_interval_s: float = 20.0
    idle_timeout_s: float = 300.0
    auth_timeout_s: float = 10.0
    max_message_bytes: int = 64 * 1024
    compression: bool = False  # permessage-deflate on native WebSocket connections (see handlers/websocket.py)
    max_buffered_bytes: int = 1024 * 1024
    slow_consumer_s: float = 10.0  # a quote subscriber this long behind (more than 1/16 of the cap unsent): 4008
    rate_limit_per_s: float = 20.0
    rate_limit_burst: int = 40
    rate_limit_abuse_count: int = 200  # rate-limited messages in a row before closing 4429

    allow_guests: bool = True
    sign_ups_per_minute: float = 30.0  # new accounts per address (bursts of twice that: a class signing in at once)
    anonymous_market_data: bool = True
    starting_cash: Decimal = Decimal("100000.00")
    password_hash_n: int = 2**14  # scrypt cost; tests lower it

    commission_per_order: Decimal = Decimal("0")   # currency per order, charged on its first fill
    commission_per_share: Decimal = Decimal("0")   # currency per share filled
    allow_short: bool = False
    portfolio_value_sample_s: float = 10.0  # how often portfolio values are recorded for analytics
    risk_lookback_days: int = 250            # simulated days of returns behind VaR
    risk_evaluate_ms: int = 1000             # limits checked (alerts raised) this often
    risk_update_ms: int = 5000               # RISK_UPDATE pushed this often
    signal_warmup_bars: int = 240            # 1-minute bars of history each symbol's models learn from first

    day_length_s: float = 6.5 * 3600
    exchange_hours: bool = False
    predictability: float = 0.3
    overview_interval_s: float = 30.0
    stats_log_interval_s: float = 60.0
    metrics_window_s: int = 3600             # seconds of per-second figures kept for the metrics page
    log_stream_rate_per_s: float = 200.0     # records per second the /ws/admin log stream sends, server-wide
    log_stream_backlog_bytes: int = 64 * 1024  # a log reader with more than this unsent misses records (counted)
    extra: dict = field(default_factory=dict)
