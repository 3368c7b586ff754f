"""Risk interval benchmark: one full risk pass (model, metrics, limits, alerts) over N portfolios, timed.

Builds a seeded MarketSimulator over the default universe (the returns come from its completed days) and N
portfolios with random holdings (3 to 12 symbols, 50 % to 100 % of 100,000.00 invested), each with a
recorded value history and a day-start value. One interval is what the server does every few seconds:

    RiskModel.from_market  (returns matrix, symbols × lookback days, and the index returns)
    compute_metrics        (every portfolio in one batch)
    evaluate_limits        (per portfolio)
    AlertMonitor.update    (per portfolio)
    rank_by_risk           (the teacher's class-wide view)

Each level runs `--repeat` times and the median is printed; a small baseline level runs in the same
invocation so figures can be compared on a shared, noisy machine.

`--blas-threads N` sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before numpy loads. On a machine with few
cores, OpenBLAS's worker threads keep spinning after the (small) matrix product and slow the Python code
that follows; the server should run with 1 (the product takes well under a millisecond on one core).

    .venv/bin/python bench/risk_interval.py --levels 10,1000 --repeat 9 --blas-threads 1
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START_MS = 1_764_126_000_000
STARTING_CASH = 10_000_000
STAGES = ("model", "metrics", "limits", "alerts", "rank")


def build_portfolios(count: int, market, rng: random.Random, history_length: int):
    """`count` ledgers with random holdings at the current prices, their value histories and day-start values."""
    from domain.trading import PortfolioLedger, Position

    quotes = market.quotes()
    symbols = list(quotes)
    ledgers, histories, day_starts = [], {}, {}
    for n in range(count):
        pid = f"P{n + 1}"
        budget = STARTING_CASH * rng.uniform(0.5, 1.0)
        chosen = rng.sample(symbols, rng.randint(3, 12))
        weights = [rng.random() for _ in chosen]
        scale = budget / sum(weights)
        positions, spent = {}, 0
        for symbol, weight in zip(chosen, weights, strict=True):
            price = quotes[symbol].price
            quantity = int(weight * scale // price)
            if quantity:
                positions[symbol] = Position(symbol, quantity, quantity * price)
                spent += quantity * price
        ledger = PortfolioLedger(pid, f"u{n + 1}", "Main", STARTING_CASH, STARTING_CASH - spent, positions=positions)
        ledgers.append(ledger)
        value = STARTING_CASH
        history = []
        for _ in range(history_length):
            value = max(1, round(value * (1 + rng.gauss(0.0, 0.004))))
            history.append(value)
        histories[pid] = history
        day_starts[pid] = history[-1] if history else STARTING_CASH
    return ledgers, histories, day_starts


def one_interval(market, ledgers, histories, day_starts, monitor, lookback, now_ms) -> tuple[dict, int]:
    """Run one risk interval; the seconds spent in each stage and the number of alerts raised."""
    from domain.risk import DEFAULT_LIMITS, RiskModel, compute_metrics, evaluate_limits, rank_by_risk

    t0 = time.perf_counter()
    model = RiskModel.from_market(market, lookback=lookback)
    t1 = time.perf_counter()
    quotes = market.quotes()
    sectors = {spec.symbol: spec.sector for spec in market.specs()}
    metrics = compute_metrics(model, ledgers, quotes, sectors, value_histories=histories, day_start_values=day_starts)
    t2 = time.perf_counter()
    breaches = {pid: evaluate_limits(m, DEFAULT_LIMITS) for pid, m in metrics.items()}
    t3 = time.perf_counter()
    alerts = 0
    for pid, found in breaches.items():
        alerts += len(monitor.update(pid, found, now_ms=now_ms))
    t4 = time.perf_counter()
    rank_by_risk(metrics)
    t5 = time.perf_counter()
    times = dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True))
    return times, alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="10,1000", help="portfolio counts, comma-separated (baseline first)")
    parser.add_argument("--repeat", type=int, default=9, help="intervals timed per level (the median is printed)")
    parser.add_argument("--lookback", type=int, default=250, help="days of returns in the model")
    parser.add_argument("--history", type=int, default=360, help="value-history samples per portfolio")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="set OPENBLAS_NUM_THREADS and OMP_NUM_THREADS before numpy loads (default: as is)")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    if args.blas_threads is not None:
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)
    from domain.market import MarketSimulator
    from domain.risk import AlertMonitor
    from domain.trading import IdSequence

    setup = time.perf_counter()
    market = MarketSimulator(rng=random.Random(args.seed), start_market_ms=START_MS,
                             history_days=args.lookback + 2, minute_history_days=1)
    print(f"market: {len(market.specs())} symbols, {args.lookback}-day lookback, "
          f"{args.history} value samples per portfolio, {os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} (setup {time.perf_counter() - setup:.1f} s)")
    print(f"{'portfolios':>10} {'total ms':>9} {'µs/portf.':>9} " + " ".join(f"{s + ' ms':>10}" for s in STAGES)
          + f" {'alerts 1st':>10}")
    for count in levels:
        rng = random.Random(args.seed * 1_000 + count)
        ledgers, histories, day_starts = build_portfolios(count, market, rng, args.history)
        monitor = AlertMonitor(IdSequence("A"))
        runs, first_alerts = [], None
        for k in range(args.repeat):
            stage_times, alerts = one_interval(market, ledgers, histories, day_starts, monitor, args.lookback,
                                               START_MS + k * 5_000)
            if first_alerts is None:
                first_alerts = alerts
            runs.append(stage_times)
        totals = [sum(run.values()) for run in runs]
        total = statistics.median(totals)
        stages = " ".join(f"{statistics.median(run[s] for run in runs) * 1e3:>10.2f}" for s in STAGES)
        print(f"{count:>10} {total * 1e3:>9.2f} {total / count * 1e6:>9.1f} {stages} {first_alerts:>10}")


if __name__ == "__main__":
    main()
