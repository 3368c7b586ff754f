"""The services of one running application, built once by `stockquest.build_services` and handed to every handler."""

from dataclasses import dataclass

from domain.clock import Clock
from realtime.broker import Broker
from realtime.fanout import QuoteFanout
from realtime.hub import ConnectionHub
from realtime.scheduler import Scheduler

from .auth import TokenService
from .config import Config
from .exchange import Exchange
from .logstream import LogStream
from .market import MarketService
from .metrics import Metrics
from .portfolio_book import PortfolioBook
from .portfolios import PortfolioFeed
from .risk import RiskService
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
    """

    config: Config
    clock: Clock
    scheduler: Scheduler
    storage: Stores
    tokens: TokenService
    users: UserDirectory
    sign_in: SignInThrottle
    broker: Broker
    hub: ConnectionHub
    fanout: QuoteFanout
    market: MarketService
    book: PortfolioBook
    trading: TradingService
    portfolios: PortfolioFeed
    risk: RiskService
    signals: SignalService
    exchange: Exchange
    metrics: Metrics
    logs: LogStream
    started_at: float
