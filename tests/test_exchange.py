"""The exchange: the engine-side order of one tick, which no broker subscription order could promise."""

from services.exchange import Exchange


class Recorder:
    """Stands in for the scenario, market, trading, risk and signal services, logging each call in one shared list."""

    def __init__(self, log, tick=None, triggers=()):
        self.log, self._tick, self._triggers = log, tick, list(triggers)

    def tick(self):
        self.log.append("market.tick")
        return self._tick

    def shock(self, percent, symbols=(), sector=None):
        self.log.append(("market.shock", percent, tuple(symbols), sector))
        return {"status": "OPEN"}

    def match(self, tick):
        self.log.append(("trading.match", tick))
        return self._triggers

    def on_triggers(self, triggers):
        self.log.append(("risk.on_triggers", triggers))

    def on_tick(self, tick):
        self.log.append(("on_tick", tick))

    def due(self):
        self.log.append("scenarios.due")


def exchange_with(tick, triggers=()):
    log = []
    market, trading = Recorder(log, tick=tick), Recorder(log, triggers=triggers)
    risk, signals = Recorder(log), Recorder(log)
    risk.on_tick = lambda t: log.append(("risk.on_tick", t))
    signals.on_tick = lambda t: log.append(("signals.on_tick", t))
    return Exchange(scenarios=Recorder(log), market=market, trading=trading, risk=risk, signals=signals), log


def test_a_tick_publishes_scenario_news_moves_prices_then_fills_then_tells_risk_then_the_day_then_signals():
    exchange, log = exchange_with("tick-7", triggers=["stop-loss NVTX"])
    exchange.tick()
    assert log == ["scenarios.due", "market.tick", ("trading.match", "tick-7"),
                   ("risk.on_triggers", ["stop-loss NVTX"]), ("risk.on_tick", "tick-7"), ("signals.on_tick", "tick-7")]


def test_a_tick_that_changed_nothing_goes_no_further_than_the_market():
    exchange, log = exchange_with(None)
    exchange.tick()
    assert log == ["scenarios.due", "market.tick"]


def test_a_shock_is_followed_at_once_by_a_tick_and_answers_with_the_market_status():
    exchange, log = exchange_with("tick-8")
    assert exchange.shock(-20, symbols=["NVTX"]) == {"status": "OPEN"}
    assert log[:4] == [("market.shock", -20, ("NVTX",), None), "scenarios.due", "market.tick",
                       ("trading.match", "tick-8")]
