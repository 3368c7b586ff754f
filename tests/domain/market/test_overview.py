"""The market overview: top gainers, losers and most active, and the advancers, decliners and unchanged."""

import random

from domain.market import MarketSimulator, Quote, market_overview

START = 1_764_126_000_000


def quote(symbol: str, price: int, previous_close: int, volume: int) -> Quote:
    return Quote(symbol, symbol.title(), "Tech", price, price - 1, price + 1, 100, 100, previous_close, price, price,
                 previous_close, volume, 0, 0, 1)  # fmt: skip


def test_overview_lists_top_movers_and_counts_advancers_and_decliners():
    sim = MarketSimulator(rng=random.Random(9), start_market_ms=START, history_days=30, minute_history_days=1)
    t = START
    for _ in range(400):
        t += 1_000
        sim.tick(t, t + 5)
    overview = market_overview(sim.quotes(), sim.indices())
    assert [level.symbol for level in overview.indices] == ["SQX", "SQTECH", "SQVAL"]
    for movers in (overview.top_gainers, overview.top_losers, overview.most_active):
        assert len(movers) == 5 and all(isinstance(q, Quote) for q in movers)
    gains = [q.change / q.previous_close for q in overview.top_gainers]
    losses = [q.change / q.previous_close for q in overview.top_losers]
    assert gains == sorted(gains, reverse=True) and gains[-1] > 0
    assert losses == sorted(losses) and losses[-1] < 0
    volumes = [q.volume for q in overview.most_active]
    assert volumes == sorted(volumes, reverse=True) and volumes[0] == max(q.volume for q in sim.quotes().values())
    changes = [q.price - q.previous_close for q in sim.quotes().values()]
    assert overview.advancers == sum(c > 0 for c in changes) and overview.decliners == sum(c < 0 for c in changes)
    assert overview.unchanged == sum(c == 0 for c in changes)


def test_movers_rank_by_percent_change_and_volume_with_ties_broken_by_symbol():
    quotes = {q.symbol: q for q in (
        quote("AAA", 110, 100, 500),   # +10%
        quote("BBB", 220, 200, 900),   # +10%, same percent as AAA
        quote("CCC", 105, 100, 900),   # +5%, same volume as BBB
        quote("DDD", 90, 100, 100),    # -10%
        quote("EEE", 100, 100, 50),    # unchanged
        quote("FFF", 190, 200, 10),    # -5%
    )}  # fmt: skip
    overview = market_overview(quotes, [])
    assert [q.symbol for q in overview.top_gainers] == ["AAA", "BBB", "CCC"]
    assert [q.symbol for q in overview.top_losers] == ["DDD", "FFF"]
    assert [q.symbol for q in overview.most_active] == ["BBB", "CCC", "AAA", "DDD", "EEE"]
    assert (overview.advancers, overview.decliners, overview.unchanged) == (3, 2, 1)
    assert overview.indices == ()
