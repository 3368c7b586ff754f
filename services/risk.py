"""Risk on this node: limits (durable), metrics computed once per portfolio per interval, alerts, and their channels."""

import logging
from collections import deque
from collections.abc import Callable, Iterable

from domain import risk
from domain.errors import Forbidden
from domain.orders import LevelTrigger
from domain.trading import IdSequence
from domain.users import CLASS_ROLES, User
from realtime import channels
from realtime.hub import Publisher
from realtime.protocol import encode_data
from realtime.wire import risk as wire

from .portfolio_book import PortfolioBook
from .users import UserDirectory

__all__ = ["RiskService", "RiskLimitBook", "VALUE_SAMPLES"]

log = logging.getLogger(__name__)

VALUE_SAMPLES = 4320  # value history kept in memory per portfolio for drawdowns (12 h of 10 s samples)
RECENT_ALERTS = 50


class RiskLimitBook:
    """Owns every portfolio's risk limits: the house defaults (or its contest's, `defaults_for`) unless a portfolio
    set its own, which are stored.

    Built before the order engine, whose pre-trade risk check reads it.
    """

    def __init__(self, *, storage, clock, defaults: risk.RiskLimits,
                 defaults_for: Callable[[str], risk.RiskLimits | None] = lambda portfolio_id: None):
        self._storage, self._clock = storage, clock
        self.defaults, self._defaults_for = defaults, defaults_for
        self._limits = {pid: wire.parse_limits(data, self._default(pid)) for pid, data in storage.all_limits().items()}

    def _default(self, portfolio_id: str) -> risk.RiskLimits:
        limits = self._defaults_for(portfolio_id)
        return self.defaults if limits is None else limits

    def limits_for(self, portfolio_id: str) -> risk.RiskLimits:
        limits = self._limits.get(portfolio_id)
        return limits if limits is not None else self._default(portfolio_id)

    def update(self, portfolio_id: str, data: dict) -> risk.RiskLimits:
        """Apply a SET_RISK_LIMITS `limits` object (BadRequest for unknown keys or bad values) and store it."""
        limits = wire.parse_limits(data, self.limits_for(portfolio_id))
        self._storage.save_limits(portfolio_id, wire.limits(limits), now_ms=self._clock.now_ms())
        self._limits[portfolio_id] = limits
        return limits


class RiskService:
    """Owns portfolio risk: the latest metrics and breaches, alert state, and what is pushed on the risk channels.

    `evaluate()` (every second) computes every portfolio's metrics in one batch and raises alerts within
    that second, on `risk:<id>` and the class-wide `risk:*`; `push_updates()` (every 5 s) publishes
    RISK_UPDATE for each portfolio someone watches and the class ranking when a teacher watches it. The cost
    depends on the number of portfolios, not on the number of connections.
    """

    def __init__(self, *, book: PortfolioBook, limits: RiskLimitBook, users: UserDirectory, market, storage,
                 clock, hub: Publisher, lookback: int,
                 contest_of: Callable[[str], str | None] = lambda portfolio_id: None):
        self._book, self.limits, self._users, self._market = book, limits, users, market
        self._contest_of = contest_of  # a portfolio's contest: its class-wide feed is that contest's
        self._storage, self._clock, self._hub = storage, clock, hub
        self.lookback = lookback
        self._monitor = risk.AlertMonitor(IdSequence("A", storage.last_alert_number()))
        self._model = None
        self._model_day = None
        self._sectors = market.sectors()
        self._values: dict[str, deque] = {}
        self._day_start: dict[str, int] = {}
        self.metrics: dict[str, risk.RiskMetrics] = {}
        self.breaches: dict[str, list[risk.Breach]] = {}

    # inputs -----------------------------------------------------------------
    def restore(self) -> None:
        """Seed drawdown histories from storage (a limit still crossed after a restart alerts once more)."""
        for ledger in self._book.ledgers():
            samples = self._storage.values_of(ledger.portfolio_id)[-VALUE_SAMPLES:]
            self._values[ledger.portfolio_id] = deque((p.value_cents for p in samples), maxlen=VALUE_SAMPLES)

    def on_values(self, rows) -> None:
        """Recorded portfolio values (portfolio_id, time_ms, market_time_ms, value_cents, cash_cents)."""
        for portfolio_id, _, _, value_cents, _ in rows:
            self._values.setdefault(portfolio_id, deque(maxlen=VALUE_SAMPLES)).append(value_cents)

    def on_tick(self, tick) -> None:
        if tick.day_rolled:
            self._day_start = {pid: m.total_value for pid, m in self.metrics.items()}

    def on_triggers(self, triggers: Iterable[LevelTrigger]) -> list[risk.Alert]:
        """Stop-loss / take-profit levels reached: INFO alerts."""
        now = self._clock.now_ms()
        alerts = [self._monitor.trigger_alert(trigger, now_ms=now) for trigger in triggers]
        self._raise(alerts)
        return alerts

    # the interval -------------------------------------------------------------
    def evaluate(self) -> list[risk.Alert]:
        """Compute every portfolio's metrics and breaches now; raise the alerts of new crossings."""
        market = self._market
        if self._model is None or self._model_day != market.day_index:
            self._model = risk.RiskModel.from_market(market, lookback=self.lookback)
            self._model_day = market.day_index
        self.metrics = risk.compute_metrics(
            self._model, self._book.ledgers(), market.quotes(), self._sectors,
            value_histories=self._values,  # deques, read in place: no per-second copy of every history
            day_start_values=self._day_start)
        now = self._clock.now_ms()
        alerts = []
        for portfolio_id, metrics in self.metrics.items():
            breaches = risk.evaluate_limits(metrics, self.limits.limits_for(portfolio_id))
            self.breaches[portfolio_id] = breaches
            alerts += self._monitor.update(portfolio_id, breaches, now_ms=now)
        self._raise(alerts)
        return alerts

    def _raise(self, alerts: list[risk.Alert]) -> None:
        """Store the alerts, then publish each to its portfolio's watchers and to the class-wide feed."""
        if not alerts:
            return
        payloads = [wire.alert(alert) for alert in alerts]
        self._storage.save_alerts([(a.alert_id, a.portfolio_id, a.created_at_ms, payload)
                                   for a, payload in zip(alerts, payloads, strict=True)])
        for alert, payload in zip(alerts, payloads, strict=True):
            self._hub.publish((channels.risk(alert.portfolio_id), self._class_channel(alert.portfolio_id)),
                              "RISK_ALERT", encode_data(payload))

    def _class_channel(self, portfolio_id: str) -> str:
        """The class-wide feed a portfolio is in: its contest's, or the default class's `risk:*`."""
        contest_id = self._contest_of(portfolio_id)
        return channels.RISK_ALL if contest_id is None else channels.risk_of_contest(contest_id)

    def push_updates(self) -> None:
        """RISK_UPDATE for each watched portfolio (serialized once each), and the ranking if a teacher watches."""
        for name in self._hub.channels(channels.RISK):
            contest_id = channels.read_risk_contest(name)
            portfolio_id = channels.read_risk(name)
            if contest_id is not None:
                self._hub.publish(name, "RISK_RANKING", encode_data(self.ranking(contest_id)))
            elif portfolio_id is None:
                self._hub.publish(channels.RISK_ALL, "RISK_RANKING", encode_data(self.ranking()))
            elif portfolio_id in self.metrics:
                self._hub.publish(name, "RISK_UPDATE", encode_data(wire.update(
                    portfolio_id, self.metrics[portfolio_id], self.breaches.get(portfolio_id, []))))

    # requests -----------------------------------------------------------------
    def _metrics_of(self, portfolio_id: str) -> risk.RiskMetrics | None:
        if portfolio_id not in self.metrics:
            self.evaluate()
        return self.metrics.get(portfolio_id)

    def snapshot(self, user: User, portfolio_id: str) -> dict:
        """RISK_SNAPSHOT of a portfolio `user` may read."""
        self._book.readable(user, portfolio_id)
        return wire.snapshot(portfolio_id, self._metrics_of(portfolio_id), self.limits.limits_for(portfolio_id),
                             self.breaches.get(portfolio_id, []),
                             self._storage.recent_alerts(portfolio_id, RECENT_ALERTS))

    def ranking(self, contest_id: str | None = None) -> dict:
        """RISK_RANKING of one class: a contest's portfolios, or (None) the default class's, those in no contest."""
        chosen = {pid: m for pid, m in self.metrics.items() if self._contest_of(pid) == contest_id}
        ranking = wire.ranking(risk.rank_by_risk(chosen), self._clock.now_ms())
        if contest_id is not None:
            ranking["contestId"] = contest_id
        return ranking

    def contest_ranking(self, contest_id: str) -> dict:
        """RISK_RANKING of one contest (the caller has checked that its user manages it)."""
        if not self.metrics:
            self.evaluate()
        return self.ranking(contest_id)

    def class_ranking(self, user: User) -> dict:
        """RISK_RANKING for a teacher or admin (the class-wide feed); Forbidden for anyone else."""
        if self._users.role_of(user) not in CLASS_ROLES:
            raise Forbidden("the class-wide risk feed is for teachers and admins")
        return self.ranking()

    def set_limits(self, user: User, portfolio_id: str, data: dict) -> risk.RiskLimits:
        """SET_RISK_LIMITS: the owner only; unknown keys or bad values are BAD_REQUEST.

        Teachers read a student's risk but do not change it: limits decide which orders the student may place,
        and "teachers read, never trade" holds for everything that does.
        """
        self._book.tradable(user, portfolio_id)
        return self.limits.update(portfolio_id, data)

    def acknowledge(self, user: User, alert_id: str) -> None:
        portfolio_id = self._storage.alert_portfolio(alert_id)
        if portfolio_id is None or self._book.ledger(portfolio_id).owner_id != str(user.id):
            raise Forbidden(f"alert {alert_id} is not yours to acknowledge")  # unknown or another's: one answer
        self._storage.acknowledge_alert(alert_id)
