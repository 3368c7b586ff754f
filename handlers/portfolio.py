"""/ws/portfolio: portfolio snapshots, positions, analytics, stop-loss / take-profit (PROTOCOL.md, Portfolio)."""

from domain.errors import BadRequest
from domain.money import price_to_cents
from realtime import channels
from realtime.schema import Id, Int, Money, Str, Symbol
from realtime.wire import orders as wire_orders
from realtime.wire import portfolio as wire
from services.portfolios import UPDATE_TYPES

from .base import Endpoint, Reply, handles
from .contests import contest_detail, contest_summary

__all__ = ["PortfolioEndpoint"]

MAX_TRADES = 200


class PortfolioEndpoint(Endpoint):
    """One connection's portfolio session: the portfolios it watches and its portfolio requests."""

    name = "portfolio"
    auth_required = True

    @property
    def feed(self):
        return self.services.portfolios

    def ready(self) -> None:
        self.send("PORTFOLIO_LIST", {"portfolios": [wire.summary(s) for s in self.feed.summaries(self.user_id)]})

    @handles("SUBSCRIBE_PORTFOLIO", portfolioId=Id(required=True),
             updateType=Str(default="ALL", upper=True, choices=UPDATE_TYPES),
             updateInterval=Int(min=0, max=3_600_000))
    def subscribe_portfolio(self, portfolio_id, update_type, update_interval):
        names, interval = self.feed.subscription(self.user, portfolio_id, update_type, update_interval)
        self.hold(channels.portfolio_prefix(portfolio_id), names)
        self.hold_by_role(self.services.book.read_by_role(self.user, portfolio_id), names)
        return [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "portfolioId": portfolio_id,
                                                 "updateType": update_type, "updateInterval": interval}),
                Reply("PORTFOLIO_SNAPSHOT", {"portfolio": wire.portfolio(self.feed.snapshot(portfolio_id))})]

    @handles("UNSUBSCRIBE_PORTFOLIO", portfolioId=Id(required=True))
    def unsubscribe_portfolio(self, portfolio_id):
        self.hold(channels.portfolio_prefix(portfolio_id))
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "portfolioId": portfolio_id})

    @handles("REQUEST_PORTFOLIO_SNAPSHOT", portfolioId=Id(required=True))
    def request_portfolio_snapshot(self, portfolio_id):
        return Reply("PORTFOLIO_SNAPSHOT", {"portfolio": wire.portfolio(self.feed.view(self.user, portfolio_id))})

    def _position(self, portfolio_id: str, symbol: str) -> dict:
        position = self.feed.position(portfolio_id, symbol)
        return wire.position(position) if position else wire.flat_position(symbol, self.feed.sector_of(symbol))

    @handles("REQUEST_POSITION_DETAILS", portfolioId=Id(required=True), symbol=Symbol(required=True))
    def request_position_details(self, portfolio_id, symbol):
        trades = self.feed.trades(self.user, portfolio_id, symbol, MAX_TRADES)
        return Reply("POSITION_DETAILS", {"portfolioId": portfolio_id, "position": self._position(portfolio_id, symbol),
                                          "trades": [wire_orders.trade(fill) for fill in trades]})

    @handles("UPDATE_POSITION", portfolioId=Id(required=True), symbol=Symbol(required=True),
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
        self.services.trading.set_position_levels(self.user, portfolio_id, symbol, **levels)
        return Reply("POSITION_UPDATE", {"portfolioId": portfolio_id,
                                         "positions": [self._position(portfolio_id, symbol)]})

    @handles("CREATE_PORTFOLIO", name=Str(required=True, max_len=64))
    def create_portfolio(self, name):
        """Added to v1: another portfolio with the starting cash (up to the per-user limit)."""
        return Reply("PORTFOLIO_CREATED", {"portfolio": wire.portfolio(self.feed.create(self.user, name))})

    @handles("REQUEST_PORTFOLIO_ANALYTICS", portfolioId=Id(required=True))
    def request_portfolio_analytics(self, portfolio_id):
        return Reply("PORTFOLIO_ANALYTICS", wire.analytics(self.feed.analytics(self.user, portfolio_id)))

    # ----- contests (docs/protocol.md, Contests) -------------------------------------------------------------

    @handles("JOIN_CONTEST", code=Str(required=True, max_len=40), nickname=Str(required=True, max_len=100),
             password=Str(max_len=128))
    def join_contest(self, code, nickname, password):
        """Join a class contest by its code: a portfolio under its rules (none yet in a team contest)."""
        contest, portfolio_id = self.services.contests.join(self.user, code=code, nickname=nickname,
                                                            password=password)
        return Reply("CONTEST_JOINED", {"contest": contest_summary(self.services, contest, portfolio_id),
                                        "portfolioId": portfolio_id})

    @handles("REQUEST_CONTESTS")
    def request_contests(self):
        return Reply("CONTEST_LIST", {"contests": [contest_summary(self.services, contest, mine)
                                                   for contest, mine in self.services.contests.visible(self.user)]})

    @handles("SUBSCRIBE_CONTEST", contestId=Id(required=True))
    def subscribe_contest(self, contest_id):
        """The contest now, then its CONTEST_UPDATE pushes and, to a player, their ASSIGNMENT_PROGRESS."""
        detail, names = self.services.contests.subscription(self.user, contest_id)
        self.hold(channels.contest_prefix(contest_id), names)
        return Reply("CONTEST_SNAPSHOT", contest_detail(self.services, detail))

    @handles("UNSUBSCRIBE_CONTEST", contestId=Id(required=True))
    def unsubscribe_contest(self, contest_id):
        self.hold(channels.contest_prefix(contest_id))
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "contestId": contest_id})
