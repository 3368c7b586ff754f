"""Signals on this node: models fed once per closed bar, shared by every subscriber; the optimiser's inputs."""

import logging

from domain import optimizer
from domain.errors import BadRequest
from domain.signals import ModelRecord, Signal, SignalEngine
from domain.valuation import value_cents
from realtime.protocol import encode_data
from realtime.wire import signals as wire_signals

__all__ = ["SignalService", "PUSH_EVERY_MS"]

log = logging.getLogger(__name__)

PUSH_EVERY_MS = 10_000  # every subscriber hears of each of its symbols at least this often


class SignalService:
    """Owns the live signals: feeding the models each closed 1-minute bar, and who subscribed to which symbol.

    Each symbol is warmed up from its generated history the first time it is needed (or by `warm_next`,
    one symbol per call shortly after start), so signals and their measured record cover every symbol.
    """

    def __init__(self, *, market, trading, clock, warmup_bars: int = 240):
        self._market, self._trading, self._clock = market, trading, clock
        self.warmup_bars = warmup_bars
        simulator = market.simulator
        self.engine = SignalEngine([spec.symbol for spec in simulator.specs()])
        self._last_bar: dict[str, int] = {}
        self._subscribers: dict[str, dict[object, tuple[str, ...] | None]] = {}

    # feeding the models --------------------------------------------------------
    def _warm(self, symbol: str) -> None:
        if symbol in self._last_bar:
            return
        bars = self._market.simulator.history(symbol, "1m", min(1000, self.warmup_bars + 1))[:-1]
        self.engine.warm_up(symbol, bars, wall_ms=self._clock.now_ms())
        self._last_bar[symbol] = bars[-1].time if bars else 0

    def warm_next(self) -> bool:
        """Warm one more symbol; False once all are warm (the timer calling it may stop)."""
        cold = [s for s in self.engine.symbols if s not in self._last_bar]
        if cold:
            self._warm(cold[0])
        return len(cold) > 1

    def on_tick(self, tick) -> None:
        """Feed every warm symbol's newly closed 1-minute bar to the models; push what changed."""
        wall = self._clock.now_ms()
        simulator = self._market.simulator
        for symbol, last in list(self._last_bar.items()):
            bars = simulator.history(symbol, "1m", 2)
            if len(bars) < 2 or bars[0].time <= last:
                continue
            self._last_bar[symbol] = bars[0].time
            changed = self.engine.on_bar(symbol, bars[0].time, bars[0].close, wall_ms=wall)
            if changed:
                self._push(symbol, changed)

    # reading --------------------------------------------------------------------
    def signals(self, symbol: str, models=None) -> list[Signal]:
        self._market.simulator.quote(symbol)  # NotFound for an unknown symbol
        self._warm(symbol)
        return self.engine.signals(symbol, models)

    def performance(self, model=None) -> list[ModelRecord]:
        return self.engine.performance(model)

    def optimize(self, user, *, portfolio_id, symbols, objective, min_weight, max_weight,
                 lookback) -> optimizer.OptimizationResult:
        """The optimisation over `symbols` (plus the portfolio's holdings), with rebalance orders for it."""
        simulator = self._market.simulator
        holdings, total = {}, 0
        if portfolio_id is not None:
            ledger = self._trading.own_portfolio(user, portfolio_id)
            holdings = {s: p.quantity for s, p in ledger.positions.items() if p.quantity}
            total = value_cents(ledger, simulator.quotes())
        chosen = list(dict.fromkeys([*(symbols or []), *holdings]))
        if len(chosen) < 2:
            raise BadRequest("optimisation needs at least two symbols (symbols, or a portfolio's holdings)")
        unknown = [s for s in chosen if not simulator.has(s)]
        if unknown:
            raise BadRequest(f"unknown symbols: {', '.join(unknown)}")
        returns = optimizer.returns_matrix(simulator, chosen, lookback)
        prices = {s: simulator.quote(s).price for s in chosen}
        return optimizer.optimization_result(objective, chosen, returns, holdings=holdings, prices_cents=prices,
                                             total_value_cents=total, min_weight=min_weight, max_weight=max_weight)

    # subscribers --------------------------------------------------------------------
    def subscribe(self, conn, symbols, models) -> None:
        for symbol in symbols:
            self._warm(symbol)
            self._subscribers.setdefault(symbol, {})[conn] = models

    def unsubscribe(self, conn, symbols=None) -> list[str]:
        removed = []
        for symbol in list(self._subscribers) if symbols is None else symbols:
            watchers = self._subscribers.get(symbol, {})
            if watchers.pop(conn, ...) is not ...:
                removed.append(symbol)
            if not watchers:
                self._subscribers.pop(symbol, None)
        return removed

    def active(self, conn) -> list[str]:
        return sorted(s for s, watchers in self._subscribers.items() if conn in watchers)

    def _push(self, symbol: str, signals: list[Signal]) -> None:
        frames: dict = {}
        for conn, models in list(self._subscribers.get(symbol, {}).items()):
            if models not in frames:
                chosen = [wire_signals.signal(s) for s in signals if models is None or s.model in models]
                frames[models] = encode_data({"signals": chosen}) if chosen else None
            if frames[models] is not None:
                conn.send_json("SIGNAL_UPDATE", frames[models])

    def push_all(self) -> None:
        """The at-least-every-10-s refresh: each symbol's latest signals to its subscribers."""
        for symbol in list(self._subscribers):
            self._push(symbol, self.engine.signals(symbol))
