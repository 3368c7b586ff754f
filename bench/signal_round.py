"""Signal-round benchmark: the CPU cost of one round of `SignalEngine.on_bar`, one closed bar for every symbol.

A seeded MarketSimulator with the default universe (and a 5-symbol baseline in the same invocation, so figures can
be compared on a shared, noisy machine) warms a SignalEngine up on its minute history, then advances one simulated
minute at a time; only the on_bar calls of each round are timed (process CPU time). Prints the median and 95th
percentile per round and per symbol, and the one-off warm-up cost, as the median over `--repeat` runs.

    .venv/bin/python bench/signal_round.py --rounds 300 --repeat 3
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from domain.market import MarketSimulator  # noqa: E402
from domain.signals import SignalEngine  # noqa: E402
from domain.universe import DEFAULT_UNIVERSE  # noqa: E402

START = 1_764_126_000_000
MINUTE = 60_000


def one_run(symbol_count: int, rounds: int, seed: int) -> dict:
    universe = DEFAULT_UNIVERSE[:symbol_count]
    sim = MarketSimulator(universe, (), rng=random.Random(seed), start_market_ms=START, history_days=5)
    symbols = [s.symbol for s in universe]
    engine = SignalEngine(symbols)
    began = time.process_time()
    for symbol in symbols:
        engine.warm_up(symbol, sim.history(symbol, "1m", 1000)[:-1], wall_ms=START)
    warm_up = time.process_time() - began
    t = START
    per_round = []
    changed = 0
    for _ in range(rounds):
        t += MINUTE
        sim.tick(t, t)
        closed = [sim.history(s, "1m", 2)[0] for s in symbols]
        began = time.process_time_ns()
        for symbol, bar in zip(symbols, closed, strict=True):
            changed += len(engine.on_bar(symbol, bar.time, bar.close, wall_ms=t))
        per_round.append((time.process_time_ns() - began) / 1e6)
    per_round.sort()
    return {
        "median_ms": statistics.median(per_round),
        "p95_ms": per_round[int(0.95 * (len(per_round) - 1))],
        "warm_up_s": warm_up,
        "changed_per_round": changed / rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per run (simulated minutes)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per level; medians are printed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"rounds per run: {args.rounds}, runs: {args.repeat}, python {sys.version.split()[0]}")
    print(f"{'symbols':>8} {'round median ms':>16} {'round p95 ms':>13} {'per symbol us':>14} "
          f"{'changed/round':>14} {'warm-up s':>10}")  # fmt: skip
    for count in (5, len(DEFAULT_UNIVERSE)):
        runs = [one_run(count, args.rounds, args.seed + k) for k in range(args.repeat)]

        def med(key: str, runs=runs) -> float:
            return statistics.median(r[key] for r in runs)

        print(
            f"{count:>8} {med('median_ms'):>16.3f} {med('p95_ms'):>13.3f} {med('median_ms') * 1000 / count:>14.1f} "
            f"{med('changed_per_round'):>14.1f} {med('warm_up_s'):>10.2f}"
        )


if __name__ == "__main__":
    main()
