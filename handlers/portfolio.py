"""/ws/portfolio: portfolio snapshots, positions, analytics, stop-loss / take-profit (PROTOCOL.md, Portfolio)."""

from domain.errors import BadRequest, NotFound
from domain.money import price_to_cents
from realtime.schema import Id, Int, Money, Str
from realtime.wire import orders as wire_orders
from realtime.wire import portfolio as wire
from services.portfolios import DEFAULT_VALUE_INTERVAL_MS, UPDATE_TYPES

from .base import Endpoint, Reply, handles

__all__ = ["PortfolioEndpoint"]

SYMBOL = dict(upper=True, max_len=12)
MAX_TRADES = 200


class PortfolioEndpoint(Endpoint):
    """One connection's portfolio session: the portfolios it watches and its portfolio requests."""

    name = "portfolio"
    auth_required = True

    @property
    def trading(self):
        return self.services.trading

    @property
    def feed(self):
        return self.services.portfolios

    def ready(self) -> None:
        portfolio_ids = self.trading.storage.portfolio_ids_of(self.user_id)
        portfolios = [wire.summary(self.feed.summary(pid)) for pid in portfolio_ids]
        self.send("PORTFOLIO_LIST", {"portfolios": portfolios})

    def closed(self) -> None:
        self.feed.remove(self)

    @handles("SUBSCRIBE_PORTFOLIO", portfolioId=Id(required=True),
             updateType=Str(default="ALL", upper=True, choices=UPDATE_TYPES),
             updateInterval=Int(min=0, max=3_600_000))
    def subscribe_portfolio(self, portfolio_id, update_type, update_interval):
        self.trading.readable_portfolio(self.user, portfolio_id)
        interval = self.feed.subscribe(self, portfolio_id, update_type,
                                       DEFAULT_VALUE_INTERVAL_MS if update_interval is None else update_interval)
        return [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "portfolioId": portfolio_id,
                                                 "updateType": update_type, "updateInterval": interval}),
                Reply("PORTFOLIO_SNAPSHOT", {"portfolio": wire.portfolio(self.feed.snapshot(portfolio_id))})]

    @handles("UNSUBSCRIBE_PORTFOLIO", portfolioId=Id(required=True))
    def unsubscribe_portfolio(self, portfolio_id):
        self.feed.unsubscribe(self, portfolio_id)
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "portfolioId": portfolio_id})

    @handles("REQUEST_PORTFOLIO_SNAPSHOT", portfolioId=Id(required=True))
    def request_portfolio_snapshot(self, portfolio_id):
        self.trading.readable_portfolio(self.user, portfolio_id)
        return Reply("PORTFOLIO_SNAPSHOT", {"portfolio": wire.portfolio(self.feed.snapshot(portfolio_id))})

    def _position(self, portfolio_id: str, symbol: str) -> dict:
        if not self.services.market.simulator.has(symbol):
            raise NotFound(f"unknown symbol {symbol}")
        found = self.feed.positions(portfolio_id, {symbol})
        if found:
            return wire.position(found[0])
        return {"symbol": symbol, "quantity": 0, "sector": self.feed.sector_of(symbol)}

    @handles("REQUEST_POSITION_DETAILS", portfolioId=Id(required=True), symbol=Str(required=True, **SYMBOL))
    def request_position_details(self, portfolio_id, symbol):
        self.trading.readable_portfolio(self.user, portfolio_id)
        position = self._position(portfolio_id, symbol)
        trades = self.trading.storage.fills_for(portfolio_id, symbol, limit=MAX_TRADES)
        return Reply("POSITION_DETAILS", {"portfolioId": portfolio_id, "position": position,
                                          "trades": [wire_orders.trade(fill) for fill in trades]})

    @handles("UPDATE_POSITION", portfolioId=Id(required=True), symbol=Str(required=True, **SYMBOL),
             stopLoss=Money(nullable=True, default=...), takeProfit=Money(nullable=True, default=...))
    def update_position(self, portfolio_id, symbol, stop_loss, take_profit):
        """Absent levels stay as they are; an explicit null clears one."""
        levels = {}
        for name, value in (("stop_loss_cents", stop_loss), ("take_profit_cents", take_profit)):
            if value is not ...:
                cents, error = price_to_cents(value)
                if error or (cents is not None and cents <= 0):
                    raise BadRequest(f"{name.removesuffix('_cents')}: {error or 'must be positive'}")
                levels[name] = cents
        self.trading.set_position_levels(self.user, portfolio_id, symbol, **levels)
        return Reply("POSITION_UPDATE", {"portfolioId": portfolio_id,
                                         "positions": [self._position(portfolio_id, symbol)]})

    @handles("CREATE_PORTFOLIO", name=Str(required=True, max_len=64))
    def create_portfolio(self, name):
        """Added to v1: another portfolio with the starting cash (up to the per-user limit)."""
        ledger = self.trading.create_portfolio(self.user, name)
        return Reply("PORTFOLIO_CREATED", {"portfolio": wire.portfolio(self.feed.snapshot(ledger.portfolio_id))})

    @handles("REQUEST_PORTFOLIO_ANALYTICS", portfolioId=Id(required=True))
    def request_portfolio_analytics(self, portfolio_id):
        self.trading.readable_portfolio(self.user, portfolio_id)
        return Reply("PORTFOLIO_ANALYTICS", wire.analytics(self.feed.analytics(portfolio_id)))

