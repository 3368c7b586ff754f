"""Risk alerts: one alert per limit crossing (not per evaluation), and one per stop-loss / take-profit trigger."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from domain.orders import LevelTrigger
from domain.risk.limits import Breach, LimitRule, Severity

__all__ = ["Alert", "AlertMonitor"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One RISK_ALERT: a limit crossing (its Breach: WARNING or CRITICAL) or a stop-loss / take-profit trigger
    (INFO), with the id and time it was raised."""

    alert_id: str
    portfolio_id: str
    cause: Breach | LevelTrigger
    created_at_ms: int
    acknowledged: bool = False

    @property
    def severity(self) -> Severity:
        return self.cause.severity if isinstance(self.cause, Breach) else Severity.INFO


class AlertMonitor:
    """Owns alert state: for each (portfolio, rule), the alert of its current crossing, so each crossing alerts once.

    A rule alerts when its severity rises above the highest one alerted since it was last under its warning level:
    under → WARNING or under → CRITICAL is one alert, WARNING → CRITICAL another (an escalation). Staying over,
    or CRITICAL falling back to WARNING and rising again, alerts nothing (no flapping around the limit); a rule
    absent from an update (under its warning level, or not evaluable) is re-armed.
    """

    def __init__(self, alert_ids: Callable[[], str]):
        self._ids = alert_ids
        self._open: dict[str, dict[LimitRule, Alert]] = {}

    def update(self, portfolio_id: str, breaches: Iterable[Breach], *, now_ms: int) -> list[Alert]:
        """The new alerts for one portfolio, given every breach evaluate_limits found for it now."""
        current = {breach.rule: breach for breach in breaches}
        held = self._open.get(portfolio_id, {})
        kept: dict[LimitRule, Alert] = {}
        new = []
        for rule, breach in current.items():
            previous = held.get(rule)
            if previous is not None and previous.severity.rank >= breach.severity.rank:
                kept[rule] = previous
                continue
            alert = Alert(self._ids(), portfolio_id, breach, now_ms)
            kept[rule] = alert
            new.append(alert)
        if kept:
            self._open[portfolio_id] = kept
        else:
            self._open.pop(portfolio_id, None)
        return new

    def trigger_alert(self, trigger: LevelTrigger, *, now_ms: int) -> Alert:
        """An INFO alert for a stop-loss or take-profit level the price reached (OrderEngine's LevelTrigger)."""
        return Alert(self._ids(), trigger.portfolio_id, trigger, now_ms)

    def open_alerts(self) -> list[Alert]:
        """The alert of every crossing still open, by portfolio then rule: what to persist for restore."""
        return [held[rule] for pid in sorted(self._open) for rule in LimitRule if rule in (held := self._open[pid])]

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Take back persisted open crossings (trigger alerts ignored; per rule the most severe wins)."""
        for alert in alerts:
            if not isinstance(alert.cause, Breach):
                continue
            held = self._open.setdefault(alert.portfolio_id, {})
            previous = held.get(alert.cause.rule)
            if previous is None or alert.severity.rank > previous.severity.rank:
                held[alert.cause.rule] = alert

    def forget(self, portfolio_id: str) -> None:
        """Drop a portfolio's state (it was deleted)."""
        self._open.pop(portfolio_id, None)
