"""/ws/market-data: quotes, history, analytics and the symbol list (PROTOCOL.md, Market data)."""

from domain.bars import INTERVALS
from domain.errors import BadRequest
from domain.market import MAX_HISTORY_LIMIT
from realtime import channels
from realtime.fanout import MIN_INTERVAL_MS
from realtime.schema import Int, Str, Symbol, Symbols
from realtime.wire import market as wire

from .base import Endpoint, Reply, handles

__all__ = ["MarketDataEndpoint"]

INTERVAL_NAMES = tuple(INTERVALS)


class MarketDataEndpoint(Endpoint):
    """One connection's market-data session: its quote subscriptions and requests.

    Quotes go through the fan-out (coalesced per connection); MARKET_STATUS, MARKET_OVERVIEW and a scenario's
    NEWS come on the hub's market channel, which every market-data connection hears. A connection is first sent
    the latest news (NEWS_HISTORY), so that a student who joins late reads what has happened.
    """

    name = "market-data"
    standing_channels = (channels.MARKET,)
    remote_attributes = ("_overview_sent", "_news_through")
    ready_on_gateway = True  # the news every process knows (services.news): no call to the engine per connection

    def __init__(self, services, transport, request):
        super().__init__(services, transport, request)
        self.auth_required = not self.config.anonymous_market_data
        self._overview_sent = False
        self._news_through = 0  # the id of the latest news item NEWS_HISTORY sent this connection

    @property
    def market(self):
        return self.services.market

    def ready(self) -> None:
        history = self.services.news.latest()
        if history is not None:
            self._news_through, data_json = history
            self.send_json("NEWS_HISTORY", data_json)

    def deliver(self, message_type, data_json, request_id, offset) -> bool:
        """NEWS carries its id as the publication's offset: one published before NEWS_HISTORY was sent but
        delivered after it is in the history already."""
        if offset is not None and offset <= self._news_through:
            return True
        return self.send_json(message_type, data_json, request_id)

    def _quotes(self, symbols) -> list[dict]:
        return [wire.quote(self.market.quote(symbol)) for symbol in symbols]

    @handles("SUBSCRIBE", symbols=Symbols(required=True),
             subscriptionType=Str(default="REAL_TIME", upper=True, choices=("REAL_TIME",)),
             updateInterval=Int(min=0, max=3_600_000))
    def subscribe(self, symbols, subscription_type, update_interval):
        fanout = self.services.fanout
        accepted = [s for s in symbols if self.market.has(s)]
        rejected = [{"symbol": s, "reason": "UNKNOWN_SYMBOL"} for s in symbols if not self.market.has(s)]
        interval = fanout.normalise_interval(update_interval)
        if accepted:
            fanout.subscribe(self, accepted, interval)
        confirmation = {
            "action": "SUBSCRIBE", "symbols": accepted, "rejected": rejected,
            "active": fanout.active(self), "subscriptionType": subscription_type, "updateInterval": interval,
        }
        if update_interval is not None and update_interval < MIN_INTERVAL_MS:
            confirmation["note"] = f"updateInterval raised to the minimum of {MIN_INTERVAL_MS} ms"
        replies = [Reply("SUBSCRIPTION_CONFIRMED", confirmation),
                   Reply("INITIAL_DATA", {"quotes": self._quotes(accepted)})]
        if not self._overview_sent:
            self._overview_sent = True
            replies.append(Reply("MARKET_OVERVIEW", self.market.overview()))
        return replies

    @handles("UNSUBSCRIBE", symbols=Symbols())
    def unsubscribe(self, symbols):
        fanout = self.services.fanout
        before = fanout.active(self)
        fanout.unsubscribe(self, symbols or None)
        removed = before if not symbols else [s for s in symbols if s in before]
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "symbols": removed,
                                                "active": fanout.active(self)})

    @handles("REQUEST_QUOTE", symbol=Symbol(), symbols=Symbols())
    def request_quote(self, symbol, symbols):
        if symbol is None and not symbols:
            raise BadRequest("REQUEST_QUOTE needs symbol or symbols")
        if symbol is not None:
            return Reply("QUOTE_RESPONSE", {"quotes": self._quotes([symbol])})
        known = [s for s in symbols if self.market.has(s)]
        if len(symbols) == 1 and not known:
            self.market.quote(symbols[0])  # raises NotFound: one unknown symbol is an error
        return Reply("QUOTE_RESPONSE", {"quotes": self._quotes(known),
                                        "notFound": [s for s in symbols if s not in known]})

    @handles("REQUEST_HISTORICAL", symbol=Symbol(required=True), interval=Str(default="1m", choices=INTERVAL_NAMES),
             limit=Int(default=100, min=1, max=MAX_HISTORY_LIMIT))
    def request_historical(self, symbol, interval, limit):
        bars = self.market.history(symbol, interval, limit)
        return Reply("HISTORICAL_DATA", {"symbol": symbol, "interval": interval,
                                         "bars": [wire.bar(bar) for bar in bars]})

    @handles("REQUEST_ANALYTICS", symbol=Symbol(required=True), interval=Str(default="1d", choices=INTERVAL_NAMES))
    def request_analytics(self, symbol, interval):
        return Reply("ANALYTICS_DATA", wire.analytics(self.market.analytics(symbol, interval)))

    @handles("REQUEST_SYMBOLS")
    def request_symbols(self):
        return Reply("SYMBOL_LIST", {"symbols": [wire.listed_symbol(spec) for spec in self.market.specs()]})
