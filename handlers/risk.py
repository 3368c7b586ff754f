"""/ws/risk-monitoring: metrics, limits, alerts; teachers also watch the whole class (PROTOCOL.md, Risk)."""

from domain.errors import BadRequest
from realtime import channels
from realtime.schema import Id, Obj, Str
from realtime.wire import risk as wire

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

    @handles("SUBSCRIBE_RISK", portfolioId=Id(), scope=SCOPE, contestId=Id())
    def subscribe_risk(self, portfolio_id, scope, contest_id):
        """One portfolio's risk; with scope ALL a class's (a teacher's): the default class, or one contest's."""
        if scope == "ALL" and contest_id is not None:
            self.services.contests.managed(self.user, contest_id)
            name = channels.risk_of_contest(contest_id)
            self.hold(channels.RISK_CONTEST, [name])
            self.hold_by_role(True, [name])
            return [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "scope": "ALL", "contestId": contest_id}),
                    Reply("RISK_RANKING", self.risk.contest_ranking(contest_id))]
        if scope == "ALL":
            ranking = self.risk.class_ranking(self.user)
            self.hub.subscribe(self, channels.RISK_ALL)
            self.hold_by_role(True, [channels.RISK_ALL])
            return [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "scope": "ALL"}),
                    Reply("RISK_RANKING", ranking)]
        if portfolio_id is None:
            raise BadRequest("SUBSCRIBE_RISK needs portfolioId (or scope ALL for teachers)")
        snapshot = self.risk.snapshot(self.user, portfolio_id)
        self.hub.subscribe(self, channels.risk(portfolio_id))
        self.hold_by_role(self.services.book.read_by_role(self.user, portfolio_id), [channels.risk(portfolio_id)])
        return [Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "portfolioId": portfolio_id}),
                Reply("RISK_SNAPSHOT", snapshot)]

    @handles("UNSUBSCRIBE_RISK", portfolioId=Id(), scope=SCOPE, contestId=Id())
    def unsubscribe_risk(self, portfolio_id, scope, contest_id):
        if contest_id is not None:
            self.hub.unsubscribe(self, channels.risk_of_contest(contest_id))
            return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "scope": "ALL", "contestId": contest_id})
        everyone = scope == "ALL" or portfolio_id is None
        self.hub.unsubscribe(self, channels.RISK_ALL if everyone else channels.risk(portfolio_id))
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "portfolioId": portfolio_id,
                                                "scope": scope})

    @handles("REQUEST_RISK_SNAPSHOT", portfolioId=Id(required=True))
    def request_risk_snapshot(self, portfolio_id):
        return Reply("RISK_SNAPSHOT", self.risk.snapshot(self.user, portfolio_id))

    @handles("SET_RISK_LIMITS", portfolioId=Id(required=True), limits=Obj(required=True))
    def set_risk_limits(self, portfolio_id, limits):
        updated = self.risk.set_limits(self.user, portfolio_id, limits)
        return Reply("RISK_LIMITS_UPDATED", {"portfolioId": portfolio_id, "limits": wire.limits(updated)})

    @handles("ACKNOWLEDGE_ALERT", alertId=Id(required=True))
    def acknowledge_alert(self, alert_id):
        self.risk.acknowledge(self.user, alert_id)
        return Reply("ALERT_ACKNOWLEDGED", {"alertId": alert_id})
