"""The performance goals in one command: each goal's median figure, the baselines' from the same run, met or not.

Every row starts what it measures: fresh server processes (pinned to CPU 0 when `taskset` is there), measured
once their start-up work is done, with the load on CPU 1. The fan-out rows reuse bench/fanout.py (the Node load
generator, which reports its own CPU: near 100 % it, not the server, is the bottleneck) and run the two baselines
in the same run: batched picows (the floor) and batched Tornado. The order rows reuse bench/orders_throughput.py;
no peer implements durable orders. An "update" is one quote delivered to one client. The table is printed and
written, with every run's raw figures and the machine, to bench/results/<YYYY-MM-DD>.md.

Rows (`--only`): fanout10k, fanout1k, saturation, connect, conns19k, orders, classroom, startup. Repeats: 3 for
the fan-out rows, connect, orders and classroom; 1 for saturation and 19,000 connections (each minutes long);
5 start-ups. `--quick` is a smoke run of a few minutes (e.g. 500 connections for 10,000, short windows, one
repeat): its figures do not judge the goals.

    make bench                                    # installs bench/requirements.txt (picows), then runs this
    .venv/bin/python bench/goals.py --quick
    .venv/bin/python bench/goals.py --only fanout1k,startup --repeat 1 --out /tmp/goals.md
"""

import argparse
import asyncio
import contextlib
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import fanout
import orders_throughput as orders
from fanout import PINNED, SERVERS, median, pin
from procstat import ServerProcess, rss_mib, settle

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
NAMES = {"picows": "picows", "baseline": "tornado", "stockquest": "Stock Quest"}
BASELINE_KINDS = [kind for kind in SERVERS if kind != "stockquest"]
NO_PEER = "no peer: no baseline implements durable orders"
LOADGEN_BUSY = 90  # % of its core: from here the load generator, not the server, may set the pace
universe = functools.cache(fanout.universe)  # Stock Quest's 38 symbols, which the baselines simulate too


@dataclass(frozen=True)
class Plan:
    """Sizes, windows and repeats: the goals' own, or `--quick`'s."""

    quick: bool = False
    fanout10k: int = 10_000
    fanout1k: int = 1_000
    saturation: int = 2_000
    steps_ms: tuple[int, ...] = (1000, 500, 250, 150, 100)  # tick = updateInterval; 38 quotes a frame
    connect: int = 10_000
    conns19k: int = 19_000
    classroom: int = 30
    warmup: float = 3.0
    window: float = 10.0
    saturation_window: float = 5.0
    orders_unpaced: tuple[int, ...] = (25, 100)  # connections, rate limit lifted
    orders_paced: tuple[int, float] = (56, 18.0)  # connections × orders/s each: 1,008/s offered
    classroom_orders: tuple[int, float] = (6, 100 / 6)  # about 100 orders/s beside the dashboards
    orders_warmup: float = 2.0
    orders_window: float = 8.0
    repeats: dict = field(default_factory=lambda: dict(
        fanout10k=3, fanout1k=3, saturation=1, connect=3, conns19k=1, orders=3, classroom=3, startup=5))


QUICK = Plan(quick=True, fanout10k=500, fanout1k=1_000, saturation=300, steps_ms=(500, 100), connect=1_000,
             conns19k=1_000, warmup=1.0, window=4.0, saturation_window=3.0, orders_warmup=1.0, orders_window=3.0,
             repeats=dict(fanout10k=1, fanout1k=1, saturation=1, connect=1, conns19k=1, orders=1, classroom=1,
                          startup=3))


@dataclass
class Check:
    """One line of the goal table: a goal, its measured median, the baselines' figures, and whether it is met."""

    goal: str
    measured: str
    baselines: str
    met: bool | None  # None: not measured


@dataclass
class Row:
    """One goal row's checks, with what the report adds below the table (raw figures, load generator, steps)."""

    measure: str
    name: str = ""  # as `--only` names it
    checks: list[Check] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    loadgen: list[list[str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def log(self, line: str) -> None:
        print(f"  {line}", flush=True)
        self.raw.append(line)


# formatting ----------------------------------------------------------------------------------------------------
def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def times(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}×" if ours is not None and theirs else "n/a"


def table(headings: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, padded so it also reads as plain text."""
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(headings), "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
                     + [line(row) for row in rows])


# the fan-out rows' shared steps -----------------------------------------------------------------------------------
def fanout_runs(row: Row, kinds, connections: int, symbols: list[str], *, repeats: int, warmup: float,
                window: float, interval_ms: int = 1000, tick_ms: int | None = None,
                max_connections: int | None = None) -> dict[str, list[dict]]:
    """Each server of `kinds` measured `repeats` times, alternated so drift on a shared machine hits all alike."""
    fanout.raise_open_files(connections + 200)
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for repeat in range(repeats):
        for kind in kinds:
            with fanout.start_server(kind, connections, universe(), tick_ms=tick_ms,
                                     max_connections=max_connections) as server:
                idle = rss_mib(server.pid)
                result = fanout.measure(server, connections, symbols, interval_ms=interval_ms, warmup=warmup,
                                        window=window)
            result["idle_rss_mib"] = idle
            runs[kind].append(result)
            row.log(f"run {repeat + 1} {kind}: {fanout.summary(result)}")
    return runs


def note_loadgen(row: Row, runs: dict[str, list[dict]], what: str = "") -> None:
    """The load generator's CPU next to the server's, per frame (it should cost less), and the machine's other
    load over the same windows."""
    for kind, results in runs.items():
        load = median(results, "load_cpu_percent")
        row.loadgen.append([row.measure + what, NAMES[kind], number(load, 1),
                            number(median(results, "load_us_per_frame"), 1),
                            number(median(results, "server_us_per_frame"), 1),
                            number(median(results, "others_cpu_percent")),
                            "may limit" if load is not None and load >= LOADGEN_BUSY else ""])


def delivered_text(results: list[dict]) -> str:
    """Whether every run delivered every update, with the figures that decide it."""
    good = sum(bool(result["all_delivered"]) for result in results)
    return (f"{'yes' if good == len(results) else 'no'} in {good}/{len(results)} runs (median "
            f"{number(100 * median(results, 'delivered'), 1)} % of quotes; fewest frames on a connection "
            f"{number(median(results, 'frames_per_connection_min'))} of "
            f"{number(median(results, 'expected_frames_per_connection'), 1)})")


def all_delivered(results: list[dict]) -> bool:
    return bool(results) and all(result["all_delivered"] for result in results)


def baselines_p99(runs: dict[str, list[dict]], ours: float | None) -> str:
    return "; ".join(f"{NAMES[kind]} {number(median(runs[kind], 'delay_p99_ms'), unit=' ms')} "
                     f"(Stock Quest {times(ours, median(runs[kind], 'delay_p99_ms'))})" for kind in BASELINE_KINDS
                     if kind in runs)


def baselines_cpu(runs: dict[str, list[dict]]) -> str:
    return "; ".join(f"{NAMES[kind]} {number(median(runs[kind], 'server_us_per_quote'), 2)} µs/update "
                     f"({number(median(runs[kind], 'server_us_per_frame'), 1)} µs/frame)" for kind in BASELINE_KINDS
                     if kind in runs)


def baselines_delivered(runs: dict[str, list[dict]]) -> str:
    return "; ".join(f"{NAMES[kind]} {'all' if all_delivered(runs[kind]) else 'not all'} "
                     f"({number(100 * median(runs[kind], 'delivered'), 1)} %)" for kind in BASELINE_KINDS
                     if kind in runs)


# the rows -----------------------------------------------------------------------------------------------------
def fanout10k(plan: Plan) -> Row:
    n = plan.fanout10k
    row = Row(f"fan-out {n:,} × 10 symbols @1 Hz, one process")
    runs = fanout_runs(row, SERVERS, n, universe()[:10], repeats=plan.repeats["fanout10k"], warmup=plan.warmup,
                       window=plan.window)
    note_loadgen(row, runs)
    ours = runs["stockquest"]
    p99, floor = median(ours, "delay_p99_ms"), median(runs["picows"], "delay_p99_ms")
    per_quote = median(ours, "server_us_per_quote")
    row.checks += [
        Check("every update delivered", delivered_text(ours), baselines_delivered(runs), all_delivered(ours)),
        Check("p99 ≤ 1.2× picows p99", f"{number(p99, unit=' ms')} = {times(p99, floor)} picows",
              baselines_p99(runs, p99), p99 is not None and floor is not None and p99 <= 1.2 * floor),
        Check("≤ 1.5 µs server CPU per update",
              f"{number(per_quote, 2)} µs/update ({number(median(ours, 'server_us_per_frame'), 1)} µs/frame, "
              f"{number(median(ours, 'server_cpu_percent'), 1)} % CPU)", baselines_cpu(runs),
              per_quote is not None and per_quote <= 1.5),
    ]
    return row


def fanout1k(plan: Plan) -> Row:
    n = plan.fanout1k
    row = Row(f"fan-out {n:,} × 10 @1 Hz")
    runs = fanout_runs(row, SERVERS, n, universe()[:10], repeats=plan.repeats["fanout1k"], warmup=plan.warmup,
                       window=plan.window)
    note_loadgen(row, runs)
    ours = runs["stockquest"]
    p99 = median(ours, "delay_p99_ms")
    row.checks.append(Check("p99 < 35 ms", f"{number(p99, unit=' ms')} (every update delivered: "
                                           f"{'yes' if all_delivered(ours) else 'no'})",
                            baselines_p99(runs, p99), p99 is not None and p99 < 35))
    return row


def passes_saturation(results: list[dict]) -> bool:
    p99 = median(results, "delay_p99_ms")
    return median(results, "delivered") >= fanout.DELIVERED and p99 is not None and p99 < 250


def saturation(plan: Plan) -> Row:
    """Raise tick and updateInterval together until delivery drops (each server stops at its first failed step)."""
    n = plan.saturation
    row = Row(f"saturation at {n:,} clients × 38 symbols")
    steps: dict[str, list[tuple[int, list[dict]]]] = {kind: [] for kind in SERVERS}
    active = list(SERVERS)
    for step in plan.steps_ms:
        if not active:
            break
        row.log(f"step {step} ms: {n * 38 * 1000 / step:,.0f} quotes/s offered")
        runs = fanout_runs(row, active, n, universe(), repeats=plan.repeats["saturation"], warmup=plan.warmup,
                           window=plan.saturation_window, interval_ms=step, tick_ms=step)
        note_loadgen(row, runs, f" @{step} ms")
        for kind, results in runs.items():
            steps[kind].append((step, results))
        active = [kind for kind in active if passes_saturation(runs[kind])]

    def best(kind: str) -> tuple[float | None, str]:
        """The highest delivered rate of a passed step, and why the next step failed if the load generator may be
        the reason (near 100 % of its core)."""
        passed = [(median(results, "quotes_per_s"), step, results) for step, results in steps[kind]
                  if passes_saturation(results)]
        failed = [(step, results) for step, results in steps[kind] if not passes_saturation(results)]
        limit = ""
        if failed and (load := median(failed[0][1], "load_cpu_percent")) is not None and load >= LOADGEN_BUSY:
            limit = f"; at {failed[0][0]} ms the load generator used {load:.0f} % of its core: it may be the limit"
        if not passed:
            return None, "no step passed" + limit
        rate, step, results = max(passed, key=lambda item: item[0])
        return rate, (f"{rate:,.0f}/s at {step} ms (p99 {number(median(results, 'delay_p99_ms'), unit=' ms')}, "
                      f"{number(100 * median(results, 'delivered'), 1)} %)" + limit)

    rate, text = best("stockquest")
    row.checks.append(Check("≥ 400,000 updates/s delivered with p99 < 250 ms", text,
                            "; ".join(f"{NAMES[kind]} {best(kind)[1]}" for kind in BASELINE_KINDS),
                            rate is not None and rate >= 400_000))
    row.details = [table(
        ["server", "tick = interval ms", "offered/s", "delivered/s", "delivered %", "p50 ms", "p99 ms",
         "server CPU %", "server µs/update", "loadgen CPU %", "passed"],
        [[NAMES[kind], str(step), number(median(results, "expected_quotes_per_s")),
          number(median(results, "quotes_per_s")), number(100 * median(results, "delivered"), 1),
          number(median(results, "delay_p50_ms")), number(median(results, "delay_p99_ms")),
          number(median(results, "server_cpu_percent"), 1), number(median(results, "server_us_per_quote"), 2),
          number(median(results, "load_cpu_percent"), 1), "yes" if passes_saturation(results) else "no"]
         for kind in SERVERS for step, results in steps[kind]])]
    return row


def connect(plan: Plan) -> Row:
    """Open every connection in batches (as fan-out does) and subscribe to nothing: only the handshakes count."""
    n = plan.connect
    row = Row(f"connect {n:,} clients")
    fanout.raise_open_files(n + 200)
    runs: dict[str, list[dict]] = {kind: [] for kind in SERVERS}
    for repeat in range(plan.repeats["connect"]):
        for kind in SERVERS:
            with fanout.start_server(kind, n, universe()) as server:
                result, _ = fanout.run_load(server, n, send=None, warmup=0.5, window=0.5)
            runs[kind].append(result)
            row.log(f"run {repeat + 1} {kind}: connections={result['connections']}, connect_s={result['connect_s']}, "
                    f"ready_s={result['ready_s']}, errors={result['errors']}, closes={result['closes']}")
    ours = runs["stockquest"]
    ready = median(ours, "ready_s")
    complete = all(result["connections"] == n and result["ready_s"] is not None for result in ours)
    row.checks.append(Check(
        "handshake to CONNECTION_ESTABLISHED < 4 s",
        f"{number(ready, 2, ' s')} (to the last open {number(median(ours, 'connect_s'), 2, ' s')})"
        + ("" if complete else "; not every connection got CONNECTION_ESTABLISHED"),
        "; ".join(f"{NAMES[kind]} {number(median(runs[kind], 'connect_s'), 2, ' s')} to the last open "
                  f"(they send nothing first)" for kind in BASELINE_KINDS),
        complete and ready is not None and ready < 4))
    return row


def conns19k(plan: Plan) -> Row:
    """Memory per connection: RSS at the window's end less RSS before connecting (after start-up), per connection."""
    n = plan.conns19k
    row = Row(f"{n:,} connections × 1 symbol")
    runs = fanout_runs(row, SERVERS, n, universe()[:1], repeats=plan.repeats["conns19k"], warmup=plan.warmup,
                       window=plan.window, max_connections=n + 1000)
    note_loadgen(row, runs)

    def kb_per_connection(results: list[dict]) -> float | None:
        return median([{"kb": (r["rss_mib"] - r["idle_rss_mib"]) * 2**20 / 1000 / n} for r in results], "kb")

    ours = runs["stockquest"]
    p99, kb = median(ours, "delay_p99_ms"), kb_per_connection(ours)
    row.checks += [
        Check("all delivered", delivered_text(ours), baselines_delivered(runs), all_delivered(ours)),
        Check("p99 < 250 ms", number(p99, unit=" ms"), baselines_p99(runs, p99), p99 is not None and p99 < 250),
        Check("< 15 KB RSS per connection above idle",
              f"{number(kb, 1)} KB (idle {number(median(ours, 'idle_rss_mib'))} MiB → "
              f"{number(median(ours, 'rss_mib'))} MiB; 1 KB = 1,000 bytes)",
              "; ".join(f"{NAMES[kind]} {number(kb_per_connection(runs[kind]), 1)} KB" for kind in BASELINE_KINDS),
              kb is not None and kb < 15),
    ]
    return row


@contextlib.contextmanager
def harness_on_cpu1():
    """Keeps this process (the order client) off the server's CPU, as the load generator is."""
    if not PINNED:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def orders_row(plan: Plan) -> Row:
    """Unpaced (rate limit lifted) for throughput and CPU per order; paced at ~1,000/s for the ack latency."""
    row = Row("durable orders (SUBMIT_ORDER → ORDER_SUBMITTED, commit before ack)")
    options = dict(prefix=tuple(pin(0)), warmup=plan.orders_warmup, duration=plan.orders_window)
    paced_n, paced_rate = plan.orders_paced
    levels = [(n, True) for n in plan.orders_unpaced] + [(paced_n, False)]
    runs: dict[tuple[int, bool], list[dict]] = {level: [] for level in levels}
    with harness_on_cpu1():
        for repeat in range(plan.repeats["orders"]):
            for n, lifted in levels:
                result = orders.run(n, lifted=lifted, rate=paced_rate, **options)
                runs[n, lifted].append(result)
                row.log(f"run {repeat + 1} {n} connections {'unpaced' if lifted else f'at {paced_rate:g}/s'}: "
                        + fanout.summary({k: v for k, v in result.items() if k != "other_example"}))
    unpaced = [(median(runs[n, True], "acks_per_s"), n) for n in plan.orders_unpaced]
    rate, best_n = max(unpaced)
    best = runs[best_n, True]
    per_ack = median(best, "server_us_per_ack")
    paced = runs[paced_n, False]
    p99 = median(paced, "p99_ms")
    levels_text = ", ".join(f"{number(acks)}/s at {n}" for acks, n in unpaced)
    row.checks += [
        Check("≥ 6,000 orders/s", f"{number(rate)}/s at {best_n} connections, unpaced ({levels_text})", NO_PEER,
              rate >= 6000),
        Check("≤ 150 µs server CPU per order",
              f"{number(per_ack)} µs at {best_n} connections ({number(median(best, 'server_cpu_percent'), 1)} % "
              f"CPU; client {number(median(best, 'client_cpu_percent'), 1)} % CPU)", NO_PEER,
              per_ack is not None and per_ack <= 150),
        Check("p99 ack < 20 ms at 1,000/s offered",
              f"{number(p99, 1, ' ms')} ({paced_n} × {paced_rate:g}/s = {paced_n * paced_rate:,.0f}/s offered, "
              f"{number(median(paced, 'acks_per_s'))}/s acked)", NO_PEER, p99 is not None and p99 < 20),
    ]
    return row


def classroom_run(plan: Plan) -> tuple[dict, dict]:
    """Dashboards on Stock Quest while an order flow runs on the same server over the same window."""
    n_orders, rate = plan.classroom_orders
    with orders.start_server(False, tuple(pin(0))) as server:
        settle(server.pid)
        flowing, flow = threading.Event(), {}
        # the order window covers the load generator's connecting, warm-up and window
        options = dict(rate=rate, warmup=0.5, duration=plan.warmup + plan.window + 3, on_flowing=flowing.set)

        def order_flow() -> None:
            try:
                flow.update(asyncio.run(orders.measure(server, n_orders, **options)))
            except Exception as error:  # reported, not lost in the thread
                flow["error"] = repr(error)
                flowing.set()

        thread = threading.Thread(target=order_flow, name="order-flow", daemon=True)
        thread.start()
        if not flowing.wait(120) or "error" in flow:
            raise RuntimeError(f"the order flow did not start: {flow.get('error', 'timed out')}")
        result = fanout.measure(server, plan.classroom, universe(), interval_ms=250, warmup=plan.warmup,
                                window=plan.window)
        thread.join()
    if "error" in flow:
        raise RuntimeError(f"the order flow failed: {flow['error']}")
    return result, flow


def classroom(plan: Plan) -> Row:
    n = plan.classroom
    n_orders, rate = plan.classroom_orders
    row = Row(f"classroom: {n} dashboards × 38 symbols @4/s, plus ~{n_orders * rate:.0f} orders/s")
    ours: list[dict] = []
    flows: list[dict] = []
    with harness_on_cpu1():
        for repeat in range(plan.repeats["classroom"]):
            result, flow = classroom_run(plan)
            ours.append(result)
            flows.append(flow)
            row.log(f"run {repeat + 1} stockquest: {fanout.summary(result)}")
            row.log(f"run {repeat + 1} order flow: "
                    + fanout.summary({k: v for k, v in flow.items() if k != "other_example"}))
    runs = fanout_runs(row, BASELINE_KINDS, n, universe(), repeats=plan.repeats["classroom"], warmup=plan.warmup,
                       window=plan.window, interval_ms=250)
    note_loadgen(row, {"stockquest": ours, **runs})
    runs["stockquest"] = ours
    p99 = median(ours, "delay_p99_ms")
    flow_text = (f"; orders {number(median(flows, 'acks_per_s'))}/s acked, p99 "
                 f"{number(median(flows, 'p99_ms'), 1, ' ms')}")
    row.checks += [
        Check("every update delivered", delivered_text(ours) + flow_text,
              baselines_delivered(runs) + " (fan-out only: no orders)", all_delivered(ours)),
        Check("p99 < 50 ms", number(p99, unit=" ms"), baselines_p99(runs, p99) + " (fan-out only)",
              p99 is not None and p99 < 50),
    ]
    return row


def startup(plan: Plan) -> Row:
    """Spawn to the first /healthz 200 with a fresh data directory, not pinned (as deployed); RSS a second later."""
    row = Row("start-up to /healthz 200")
    runs: dict[str, list[dict]] = {kind: [] for kind in SERVERS}
    for repeat in range(plan.repeats["startup"]):
        for kind in SERVERS:
            def command(port: int, data_dir: str, kind=kind) -> list[str]:
                return fanout.server_command(kind, port, data_dir, symbols=universe(), max_connections=10_000,
                                             pinned=False)

            with ServerProcess(command, name=kind) as server:
                time.sleep(1)
                result = {"ready_s": server.ready_s, "idle_rss_mib": rss_mib(server.pid)}
            runs[kind].append(result)
            row.log(f"run {repeat + 1} {kind}: {fanout.summary(result)}")
    ours = runs["stockquest"]
    ready = median(ours, "ready_s")
    row.checks.append(Check(
        "under 1 s (and idle RSS)", f"{number(ready, 2, ' s')}, idle RSS {number(median(ours, 'idle_rss_mib'))} MiB",
        "; ".join(f"{NAMES[kind]} {number(median(runs[kind], 'ready_s'), 2, ' s')}, "
                  f"{number(median(runs[kind], 'idle_rss_mib'))} MiB" for kind in BASELINE_KINDS),
        ready is not None and ready < 1))
    return row


ROWS: dict[str, Callable[[Plan], Row]] = {
    "fanout10k": fanout10k, "fanout1k": fanout1k, "saturation": saturation, "connect": connect,
    "conns19k": conns19k, "orders": orders_row, "classroom": classroom, "startup": startup,
}


# the report ---------------------------------------------------------------------------------------------------
def command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> list[str]:
    """What the figures depend on, to compare runs across days and machines."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "?")
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    ws = json.loads((ROOT / "node_modules" / "ws" / "package.json").read_text())["version"]
    changed = command_output(["git", "status", "--porcelain", "--untracked-files=no"]).splitlines()
    return [
        f"CPU: {model}; {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)",
        f"RAM: {int(memory) / 2**20:.1f} GiB",
        f"kernel: {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, Tornado {version('tornado')}, picows {version('picows')} "
        f"(aiofastnet {version('aiofastnet')}), ujson {version('ujson')}",
        f"Node {command_output(['node', '--version'])}, ws {ws}",
        f"pinning: {fanout.placement()}; order clients (this process) on CPU 1 too; start-up not pinned",
        f"commit: {command_output(['git', 'rev-parse', '--short', 'HEAD'])}"
        + (f" with {len(changed)} uncommitted changed files" if changed else ""),
        f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}",
    ]


def goal_table(rows: list[Row]) -> str:
    lines = []
    for row in rows:
        for index, check in enumerate(row.checks):
            met = "-" if check.met is None else ("yes" if check.met else "no")
            lines.append([row.measure if index == 0 else "", check.goal, check.measured, check.baselines, met])
    return table(["measure", "goal", "measured (median)", "baselines, same run", "met"], lines)


def report(rows: list[Row], plan: Plan, started: datetime.datetime, elapsed_s: float) -> str:
    title = f"# Performance goals, {started:%Y-%m-%d %H:%M}" + (" (--quick)" if plan.quick else "")
    parts = [title, ""]
    if plan.quick:
        parts += ["A --quick smoke run: smaller sizes and windows, one repeat; its figures do not judge the goals.",
                  ""]
    parts += [f"Run time {elapsed_s / 60:.1f} min. Repeats: " + ", ".join(
        f"{row.name} {plan.repeats[row.name]}" for row in rows if row.name in plan.repeats)
        + f"; warm-up {plan.warmup:g} s, window {plan.window:g} s (saturation {plan.saturation_window:g} s).", "",
        "## Goals", "", goal_table(rows), "",
        "An update is one quote delivered to one client; delay is receive time minus the quote's time. Every "
        "update delivered: at least 99 % of the quotes due in the frames each connection should have got between "
        "its first and last frame in the window (so the window's edges do not move it), every connection at least "
        "its window's frames less one, every frame with every subscribed symbol. Baselines: picows = "
        "bench/baselines/batched_picows.py (the floor), tornado = bench/baselines/batched_tornado.py. Server CPU "
        "is read in clock ticks (10 ms): short windows at low load are coarse.", ""]
    loadgen = [line for row in rows for line in row.loadgen]
    if loadgen:
        parts += ["## Load generator", "",
                  "Node `ws` (bench/load/ws_load.js) on its own core: its CPU over each window, per frame beside the "
                  f"server's; from {LOADGEN_BUSY} % of its core it may set the pace. Others: the rest of the "
                  "machine over the same windows (of 100 % per core), a shared machine's noise.", "",
                  table(["row", "server", "loadgen CPU %", "loadgen µs/frame", "server µs/frame", "others CPU %",
                         ""], loadgen), ""]
    for row in rows:
        if row.details:
            parts += [f"## {row.measure}: steps", "", *row.details, ""]
    parts += ["## Raw figures", ""]
    for row in rows:
        parts += [f"### {row.measure}", "", "```text", *row.raw, "```", ""]
    parts += ["## Machine", "", *[f"- {line}" for line in machine()], ""]
    return "\n".join(parts)


def results_path(started: datetime.datetime, quick: bool) -> Path:
    """bench/results/<date>.md, never overwriting an earlier run of the same day."""
    stem = f"{started:%Y-%m-%d}" + ("-quick" if quick else "")
    path, n = RESULTS / f"{stem}.md", 2
    while path.exists():
        path, n = RESULTS / f"{stem}-{n}.md", n + 1
    return path


def run_row(name: str, plan: Plan) -> Row:
    """One row; a failure becomes a line of the table, not the end of the run."""
    print(f"{name}:", flush=True)
    start = time.monotonic()
    try:
        row = ROWS[name](plan)
    except (Exception, SystemExit) as error:  # SystemExit: a server or the load generator failed
        row = Row(name)
        row.checks.append(Check("(all)", f"failed: {str(error)[:300]}", "", None))
        row.log(f"failed: {error!r}")
    row.name = name
    print(f"  ({time.monotonic() - start:.0f} s)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes: smaller, shorter")
    parser.add_argument("--only", help=f"rows to run, comma-separated: {','.join(ROWS)}")
    parser.add_argument("--repeat", type=int, help="repeats of every row (default: per row, see above)")
    parser.add_argument("--out", type=Path, help="the results file (default bench/results/<date>.md)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(ROWS)
    if unknown := [name for name in names if name not in ROWS]:
        raise SystemExit(f"unknown rows {', '.join(unknown)}: choose from {', '.join(ROWS)}")
    plan = QUICK if args.quick else Plan()
    if args.repeat:
        plan = replace(plan, repeats=dict.fromkeys(plan.repeats, args.repeat))
    fanout.check_tools(SERVERS)

    started, start = datetime.datetime.now(), time.monotonic()
    rows = [run_row(name, plan) for name in names]
    text = report(rows, plan, started, time.monotonic() - start)
    path = args.out or results_path(started, plan.quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print("\n" + goal_table(rows) + f"\n\nwritten to {path}")
    sys.exit(1 if any(check.met is None for row in rows for check in row.checks) else 0)  # a row failed to run


if __name__ == "__main__":
    main()
