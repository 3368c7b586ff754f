"""Signals on this node: models fed once per closed bar and pushed on each symbol's channels; the optimiser's inputs."""

import logging

from domain import optimizer
from domain.errors import BadRequest
from domain.signals import MODELS, Model, ModelRecord, Signal, SignalEngine
from domain.users import User
from domain.valuation import value_cents
from realtime import channels
from realtime.hub import Publisher
from realtime.protocol import encode_data
from realtime.wire import signals as wire

from .portfolio_book import PortfolioBook

__all__ = ["SignalService", "PUSH_EVERY_MS"]

log = logging.getLogger(__name__)

PUSH_EVERY_MS = 10_000  # every subscriber hears of each of its symbols at least this often
HISTORY_LIMIT = 1000


class SignalService:
    """Owns the live signals: feeding the models each closed 1-minute bar, and pushing SIGNAL_UPDATE.

    A connection following a symbol holds one channel of it, `signals:<symbol>:<models>` (`*` for every model),
    so each model selection's frame is built once and shared. Each symbol is warmed up from its generated
    history the first time it is needed (or by `warm_next`, one symbol per call shortly after start), so
    signals and their measured record cover every symbol.
    """

    def __init__(self, *, market, book: PortfolioBook, clock, hub: Publisher, warmup_bars: int = 240):
        self._market, self._book, self._clock, self._hub = market, book, clock, hub
        self.warmup_bars = warmup_bars
        self.engine = SignalEngine([spec.symbol for spec in market.specs()])
        self._last_bar: dict[str, int] = {}

    @staticmethod
    def channel(symbol: str, models: tuple[Model, ...] | None) -> str:
        """The channel for `symbol` with these models (None, or all of them: every model)."""
        if models is None or set(models) >= set(MODELS):
            return channels.signals(symbol, None)
        return channels.signals(symbol, tuple(m for m in MODELS if m in models))

    # feeding the models --------------------------------------------------------
    def _warm(self, symbol: str) -> None:
        if symbol in self._last_bar:
            return
        bars = self._market.history(symbol, "1m", min(HISTORY_LIMIT, self.warmup_bars + 1))[:-1]
        self.engine.warm_up(symbol, bars, wall_ms=self._clock.now_ms())
        self._last_bar[symbol] = bars[-1].time if bars else 0

    @property
    def cold_symbols(self) -> int:
        """Symbols whose models have not learnt from their history yet (the warm-up takes a few seconds)."""
        return len(self.engine.symbols) - len(self._last_bar)

    def warm_next(self) -> bool:
        """Warm one more symbol; False once all are warm (the timer calling it may stop)."""
        cold = [s for s in self.engine.symbols if s not in self._last_bar]
        if cold:
            self._warm(cold[0])
        return len(cold) > 1

    def on_tick(self, tick) -> None:
        """Feed every warm symbol's newly closed 1-minute bar to the models; push what changed."""
        wall = self._clock.now_ms()
        for symbol, last in list(self._last_bar.items()):
            bars = self._market.history(symbol, "1m", 2)
            if len(bars) < 2 or bars[0].time <= last:
                continue
            self._last_bar[symbol] = bars[0].time
            changed = self.engine.on_bar(symbol, bars[0].time, bars[0].close, wall_ms=wall)
            if changed:
                self._push(symbol, changed)

    # pushes ------------------------------------------------------------------------
    def _push(self, symbol: str, signals: list[Signal]) -> None:
        for name in self._hub.channels(channels.signals_prefix(symbol)):
            _, models = channels.read_signals(name)
            chosen = [wire.signal(s) for s in signals if models is None or s.model in models]
            if chosen:
                self._hub.publish(name, "SIGNAL_UPDATE", encode_data({"signals": chosen}))

    def push_all(self) -> None:
        """The at-least-every-10-s refresh: each followed symbol's latest signals."""
        followed = {channels.read_signals(name)[0] for name in self._hub.channels(channels.signals_prefix(""))}
        for symbol in sorted(followed):
            self._push(symbol, self.engine.signals(symbol))

    # reading --------------------------------------------------------------------
    def signals(self, symbol: str, models=None) -> list[Signal]:
        self._market.quote(symbol)  # NotFound for an unknown symbol
        self._warm(symbol)
        return self.engine.signals(symbol, models)

    def performance(self, model=None) -> list[ModelRecord]:
        return self.engine.performance(model)

    def optimize(self, user: User | None, *, portfolio_id, symbols, objective, min_weight, max_weight,
                 lookback) -> optimizer.OptimizationResult:
        """The optimisation over `symbols` (plus the portfolio's holdings), with rebalance orders for it."""
        market = self._market
        holdings, total = {}, 0
        if portfolio_id is not None:
            ledger = self._book.tradable(user, portfolio_id)
            holdings = {s: p.quantity for s, p in ledger.positions.items() if p.quantity}
            total = value_cents(ledger, market.quotes())
        chosen = list(dict.fromkeys([*(symbols or []), *holdings]))
        if len(chosen) < 2:
            raise BadRequest("optimisation needs at least two symbols (symbols, or a portfolio's holdings)")
        unknown = [s for s in chosen if not market.has(s)]
        if unknown:
            raise BadRequest(f"unknown symbols: {', '.join(unknown)}")
        returns = optimizer.returns_matrix(market, chosen, lookback)
        prices = {s: market.quote(s).price for s in chosen}
        return optimizer.optimization_result(objective, chosen, returns, holdings=holdings, prices_cents=prices,
                                             total_value_cents=total, min_weight=min_weight, max_weight=max_weight)
