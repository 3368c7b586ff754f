"""/ws/risk-monitoring: metrics, limits, alerts; teachers also watch the whole class (PROTOCOL.md, Risk)."""

from domain.errors import BadRequest
from realtime.schema import Id, Obj, Str
from realtime.wire import risk as wire_risk

from .base import Endpoint, Reply, handles

__all__ = ["RiskEndpoint"]

SCOPE = Str(upper=True, choices=("ALL",))


class RiskEndpoint(Endpoint):
    """One connection's risk session: the portfolios (or the class) it watches and its risk requests."""

    name = "risk-monitoring"
    auth_required = True

    @property
    def risk(self):
        return self.services.risk

    def closed(self) -> None:
        self.risk.remove(self)

    @handles("SUBSCRIBE_RISK", portfolioId=Id(), scope=SCOPE)
    def subscribe_risk(self, portfolio_id, scope):
        if scope == "ALL":
            self.risk.watch_all(self, self.user)
            return [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "scope": "ALL"}),
                    Reply("RISK_RANKING", self.risk.ranking())]
        if portfolio_id is None:
            raise BadRequest("SUBSCRIBE_RISK needs portfolioId (or scope ALL for teachers)")
        self.services.trading.readable_portfolio(self.user, portfolio_id)
        self.risk.watch(self, portfolio_id)
        return [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "portfolioId": portfolio_id}),
                Reply("RISK_SNAPSHOT", self.risk.snapshot(portfolio_id))]

    @handles("UNSUBSCRIBE_RISK", portfolioId=Id(), scope=SCOPE)
    def unsubscribe_risk(self, portfolio_id, scope):
        self.risk.unwatch(self, None if scope == "ALL" else portfolio_id)
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "portfolioId": portfolio_id,
                                                "scope": scope})

    @handles("REQUEST_RISK_SNAPSHOT", portfolioId=Id(required=True))
    def request_risk_snapshot(self, portfolio_id):
        self.services.trading.readable_portfolio(self.user, portfolio_id)
        return Reply("RISK_SNAPSHOT", self.risk.snapshot(portfolio_id))

    @handles("SET_RISK_LIMITS", portfolioId=Id(required=True), limits=Obj(required=True))
    def set_risk_limits(self, portfolio_id, limits):
        updated = self.risk.set_limits(self.user, portfolio_id, limits)
        return Reply("RISK_LIMITS_UPDATED", {"portfolioId": portfolio_id, "limits": wire_risk.limits(updated)})

    @handles("ACKNOWLEDGE_ALERT", alertId=Id(required=True))
    def acknowledge_alert(self, alert_id):
        self.risk.acknowledge(self.user, alert_id)
        return Reply("ALERT_ACKNOWLEDGED", {"alertId": alert_id})
