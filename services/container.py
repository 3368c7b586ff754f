"""The services of one running application, built once by `stockquest.build_services` and handed to every handler."""

from dataclasses import dataclass

from domain.clock import Clock
from realtime.broker import Broker
from realtime.fanout import QuoteFanout
from realtime.hub import ConnectionHub
from realtime.scheduler import Scheduler

from .auth import TokenService
from .cluster.link import EngineLink
from .config import Config
from .contests import ContestService
from .exchange import Exchange
from .logstream import LogStream
from .market import MarketService
from .metrics import Metrics
from .news import NewsBoard
from .portfolio_book import PortfolioBook
from .portfolios import PortfolioFeed
from .risk import RiskService
from .scenarios import ScenarioService
from .signals import SignalService
from .storage import Stores
from .throttle import SignInThrottle
from .trading import TradingService
from .users import UserDirectory

__all__ = ["Services"]


@dataclass(kw_only=True)
class Services:
    """Everything the handlers need; each test builds its own, so no state is shared between applications.

    Handlers use the services below and never `storage` itself, which is here for the wiring, for shutdown and
    for tests that set up a world.

    The engine's part (from `storage` to `exchange`) exists only in the process that runs the engine: always in
    one process alone; past one, in the leader (`engine_link.local`), from its election until it loses the lease.
    Elsewhere those fields are None and handlers reach the engine through `engine_link`.
    """

    config: Config
    clock: Clock
    scheduler: Scheduler
    sign_in: SignInThrottle
    broker: Broker
    hub: ConnectionHub
    fanout: QuoteFanout
    metrics: Metrics
    logs: LogStream
    news: NewsBoard
    started_at: float
    engine_link: EngineLink | None = None  # None: one process, the engine always here
    candidate: object | None = None  # past one process, the stockquest.EngineCandidate when this one may run it
    storage: Stores | None = None
    tokens: TokenService | None = None
    users: UserDirectory | None = None
    market: MarketService | None = None
    book: PortfolioBook | None = None
    trading: TradingService | None = None
    portfolios: PortfolioFeed | None = None
    risk: RiskService | None = None
    signals: SignalService | None = None
    scenarios: ScenarioService | None = None
    contests: ContestService | None = None
    exchange: Exchange | None = None
