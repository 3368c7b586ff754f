"""Risk on this node: limits (durable), metrics computed once per portfolio per interval, alerts, watchers."""

import logging
from collections import deque

from domain import risk
from domain.errors import Forbidden, NotFound
from domain.trading import IdSequence
from domain.users import CLASS_ROLES
from realtime.protocol import encode_data
from realtime.wire import risk as wire_risk

__all__ = ["RiskService", "VALUE_SAMPLES"]

log = logging.getLogger(__name__)

VALUE_SAMPLES = 4320  # value history kept in memory per portfolio for drawdowns (12 h of 10 s samples)
RECENT_ALERTS = 50


class RiskService:
    """Owns portfolio risk: limits, the latest metrics and breaches, alert state, and who watches what.

    `evaluate()` (every second) computes every portfolio's metrics in one batch and raises alerts within
    that second; `push_updates()` (every 5 s) sends RISK_UPDATE to watchers and the class ranking to
    teachers. The cost depends on the number of portfolios, not on the number of connections.
    """

    def __init__(self, *, trading, market, storage, clock, defaults: risk.RiskLimits, lookback: int):
        self._trading, self._market, self._storage, self._clock = trading, market, storage, clock
        self.defaults = defaults
        self.lookback = lookback
        self._limits: dict[str, risk.RiskLimits] = {
            pid: wire_risk.parse_limits(data, defaults) for pid, data in storage.all_limits().items()}
        self._monitor = risk.AlertMonitor(IdSequence("A", storage.last_alert_number()))
        self._model = None
        self._model_day = None
        self._sectors = {spec.symbol: spec.sector for spec in market.simulator.specs()}
        self._values: dict[str, deque] = {}
        self._day_start: dict[str, int] = {}
        self.metrics: dict[str, risk.RiskMetrics] = {}
        self.breaches: dict[str, list] = {}
        self._watchers: dict[str, set] = {}
        self._all_watchers: set = set()

    # limits -----------------------------------------------------------------
    def limits_for(self, portfolio_id: str) -> risk.RiskLimits:
        return self._limits.get(portfolio_id, self.defaults)

    def set_limits(self, user, portfolio_id: str, data) -> risk.RiskLimits:
        """SET_RISK_LIMITS: the owner or a teacher/admin; unknown keys or bad values are BAD_REQUEST."""
        self._trading.readable_portfolio(user, portfolio_id)
        limits = wire_risk.parse_limits(data, self.limits_for(portfolio_id))
        self._storage.save_limits(portfolio_id, wire_risk.limits(limits), now_ms=self._clock.now_ms())
        self._limits[portfolio_id] = limits
        return limits

    def pre_trade_check(self):
        """The order engine's RISK_LIMIT check (maxOrderValue, maxPositionWeight)."""
        return risk.pre_trade_check(self.limits_for, self._market.simulator.quotes)

    # inputs -----------------------------------------------------------------
    def restore(self) -> None:
        """Seed drawdown histories from storage (a limit still crossed after a restart alerts once more)."""
        for ledger in self._trading.engine.portfolios():
            samples = self._storage.values_of(ledger.portfolio_id)[-VALUE_SAMPLES:]
            self._values[ledger.portfolio_id] = deque((p.value_cents for p in samples), maxlen=VALUE_SAMPLES)

    def on_values(self, rows) -> None:
        """Recorded portfolio values (portfolio_id, time_ms, market_time_ms, value_cents, cash_cents)."""
        for portfolio_id, _, _, value_cents, _ in rows:
            self._values.setdefault(portfolio_id, deque(maxlen=VALUE_SAMPLES)).append(value_cents)

    def on_tick(self, tick) -> None:
        if tick.day_rolled:
            self._day_start = {pid: m.total_value for pid, m in self.metrics.items()}

    def on_triggers(self, triggers) -> list:
        """Stop-loss / take-profit levels reached: INFO alerts."""
        now = self._clock.now_ms()
        alerts = [self._monitor.trigger_alert(trigger, now_ms=now) for trigger in triggers]
        self._raise(alerts)
        return alerts

    # the interval -------------------------------------------------------------
    def evaluate(self) -> list:
        """Compute every portfolio's metrics and breaches now; raise the alerts of new crossings."""
        simulator = self._market.simulator
        if self._model is None or self._model_day != simulator.day_index:
            self._model = risk.RiskModel.from_market(simulator, lookback=self.lookback)
            self._model_day = simulator.day_index
        ledgers = self._trading.engine.portfolios()
        self.metrics = risk.compute_metrics(
            self._model, ledgers, simulator.quotes(), self._sectors,
            value_histories=self._values,  # deques, read in place: no per-second copy of every history
            day_start_values=self._day_start)
        now = self._clock.now_ms()
        alerts = []
        for portfolio_id, metrics in self.metrics.items():
            breaches = risk.evaluate_limits(metrics, self.limits_for(portfolio_id))
            self.breaches[portfolio_id] = breaches
            alerts += self._monitor.update(portfolio_id, breaches, now_ms=now)
        self._raise(alerts)
        return alerts

    def _raise(self, alerts) -> None:
        if not alerts:
            return
        self._storage.save_alerts([(a.alert_id, a.portfolio_id, a.created_at_ms, wire_risk.alert(a)) for a in alerts])
        for alert in alerts:
            data = encode_data(wire_risk.alert(alert))
            for conn in self._watchers.get(alert.portfolio_id, set()) | self._all_watchers:
                conn.send_json("RISK_ALERT", data)

    # views --------------------------------------------------------------------
    def _metrics_of(self, portfolio_id: str) -> risk.RiskMetrics | None:
        if portfolio_id not in self.metrics:
            self.evaluate()
        return self.metrics.get(portfolio_id)

    def snapshot(self, portfolio_id: str) -> dict:
        return wire_risk.snapshot(portfolio_id, self._metrics_of(portfolio_id), self.limits_for(portfolio_id),
                                  self.breaches.get(portfolio_id, []),
                                  self._storage.recent_alerts(portfolio_id, RECENT_ALERTS))

    def ranking(self) -> dict:
        return wire_risk.ranking(risk.rank_by_risk(self.metrics), self._clock.now_ms())

    def acknowledge(self, user, alert_id: str) -> None:
        portfolio_id = self._storage.alert_portfolio(alert_id)
        if portfolio_id is None:
            raise NotFound(f"alert {alert_id} not found")
        self._trading.readable_portfolio(user, portfolio_id)
        self._storage.acknowledge_alert(alert_id)

    # watchers -------------------------------------------------------------------
    def watch(self, conn, portfolio_id: str) -> None:
        self._watchers.setdefault(portfolio_id, set()).add(conn)

    def watch_all(self, conn, user) -> None:
        if self._trading.role_of(user) not in CLASS_ROLES:
            raise Forbidden("the class-wide risk feed is for teachers and admins")
        self._all_watchers.add(conn)

    def unwatch(self, conn, portfolio_id: str | None) -> None:
        if portfolio_id is None:
            self._all_watchers.discard(conn)
            return
        watchers = self._watchers.get(portfolio_id)
        if watchers is not None:
            watchers.discard(conn)
            if not watchers:
                del self._watchers[portfolio_id]

    def remove(self, conn) -> None:
        self._all_watchers.discard(conn)
        for portfolio_id in list(self._watchers):
            self.unwatch(conn, portfolio_id)

    def push_updates(self) -> None:
        """RISK_UPDATE to each portfolio's watchers (serialized once per portfolio) and the ranking to teachers."""
        for portfolio_id, watchers in list(self._watchers.items()):
            if portfolio_id not in self.metrics:
                continue
            data = encode_data(wire_risk.update(portfolio_id, self.metrics[portfolio_id],
                                                self.breaches.get(portfolio_id, [])))
            for conn in list(watchers):
                conn.send_json("RISK_UPDATE", data)
        if self._all_watchers:
            data = encode_data(self.ranking())
            for conn in list(self._all_watchers):
                conn.send_json("RISK_RANKING", data)
