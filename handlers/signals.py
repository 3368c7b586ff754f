"""/ws/ml-signals: model signals, their measured record, and portfolio optimisation (PROTOCOL.md, ML signals)."""

from domain.optimizer import ParameterError
from domain.signals import MODELS
from realtime import channels
from realtime.protocol import ErrorCode, ProtocolError
from realtime.schema import Id, Int, Number, Obj, Str, StrList, Symbol, Symbols
from realtime.wire import signals as wire_signals

from .base import Endpoint, Reply, handles

__all__ = ["SignalsEndpoint"]

MODEL_LIST = StrList(choices=wire_signals.MODEL_NAMES, max_items=len(MODELS))
CONSTRAINTS = {"minWeight": Number(default=0.0, min=0, max=1), "maxWeight": Number(default=1.0, min=0, max=1)}


class SignalsEndpoint(Endpoint):
    """One connection's signals session: the symbols it follows and its signal and optimisation requests."""

    name = "ml-signals"

    @property
    def signal_service(self):
        return self.services.signals

    def active(self) -> list[str]:
        """The symbols this connection follows."""
        return sorted({channels.read_signals(name)[0] for name in self.hub.subscriptions(self, "signals:")})

    @handles("SUBSCRIBE_SIGNALS", symbols=Symbols(required=True), models=MODEL_LIST)
    def subscribe_signals(self, symbols, models):
        known = [s for s in symbols if self.services.market.has(s)]
        chosen = wire_signals.models_from_wire(models) if models else None
        signals = [wire_signals.signal(signal) for s in known for signal in self.signal_service.signals(s, chosen)]
        for symbol in known:
            self.hold(channels.signals_prefix(symbol), [self.signal_service.channel(symbol, chosen)])
        return [Reply("SUBSCRIPTION_CONFIRMED", {
                    "action": "SUBSCRIBE", "symbols": known,
                    "models": [wire_signals.model_name(m) for m in chosen or MODELS],
                    "rejected": [{"symbol": s, "reason": "UNKNOWN_SYMBOL"} for s in symbols if s not in known],
                    "active": self.active()}),
                Reply("SIGNAL_UPDATE", {"signals": signals})]

    @handles("UNSUBSCRIBE_SIGNALS", symbols=Symbols())
    def unsubscribe_signals(self, symbols):
        removed = [s for s in (symbols or self.active()) if self.hold(channels.signals_prefix(s))]
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE", "symbols": sorted(removed),
                                                "active": self.active()})

    @handles("REQUEST_SIGNAL", symbol=Symbol(required=True), models=MODEL_LIST)
    def request_signal(self, symbol, models):
        signals = self.signal_service.signals(symbol, wire_signals.models_from_wire(models) if models else None)
        return Reply("SIGNAL_UPDATE", {"signals": [wire_signals.signal(s) for s in signals]})

    @handles("REQUEST_MODEL_PERFORMANCE", model=Str(choices=wire_signals.MODEL_NAMES))
    def request_model_performance(self, model):
        records = self.signal_service.performance(None if model is None else wire_signals.model_from_wire(model))
        return Reply("MODEL_PERFORMANCE", {"models": [wire_signals.model_record(r) for r in records]})

    @handles("REQUEST_OPTIMIZATION", portfolioId=Id(), symbols=Symbols(),
             objective=Str(required=True, upper=True, choices=("MAX_SHARPE", "MIN_VARIANCE", "RISK_PARITY")),
             constraints=Obj(fields=CONSTRAINTS, default={}), lookback=Int(default=60, min=3, max=1000))
    def request_optimization(self, portfolio_id, symbols, objective, constraints, lookback):
        if portfolio_id is not None and self.user is None:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "optimising a portfolio needs a signed-in user")
        constraints = constraints or {"min_weight": 0.0, "max_weight": 1.0}
        try:
            result = self.signal_service.optimize(
                self.user, portfolio_id=portfolio_id, symbols=symbols, objective=objective, lookback=lookback,
                min_weight=constraints["min_weight"], max_weight=constraints["max_weight"])
        except ParameterError as error:
            raise wire_signals.parameter_error(error) from None
        return Reply("OPTIMIZATION_RESULT", {**wire_signals.optimization(result), "portfolioId": portfolio_id})
