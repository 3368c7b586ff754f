"""Quote fan-out benchmark: Stock Quest against a plain batched Tornado baseline, at thousands of connections.

For each level, each server and each repeat, a fresh server process starts on a free 127.0.0.1 port (pinned
to CPU 0 when `taskset` is there), and `bench/load/ws_load.js` (Node, pinned to CPU 1) opens that many
WebSocket connections, each subscribing to the same 10 symbols at 1 update/s. The load generator is Node
because a Python client spends more CPU per frame than the server does to send it. Over the load generator's
measuring window it counts update frames (one per connection per second is expected), the quotes in them and
each quote's delay (receive time minus the quote's `time`), while this script reads the server's CPU from
/proc/PID/stat over the same window. Server CPU per delivered update is the figure to compare; the delay
includes how long a tick's quotes wait for the next flush, which differs by design (the baseline sends right
after a tick, spreading clients over ticks). The load generator's own CPU is printed: near 100 % it, not the
server, is the bottleneck. Medians of the repeats are printed, and with `--out` written as Markdown.

    .venv/bin/python bench/fanout.py --levels 1000,5000 --repeat 3
    .venv/bin/python bench/fanout.py --levels 200,1000 --repeat 1 --warmup 2 --window 5 --out /tmp/fanout.md
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from procstat import ServerProcess, cpu_seconds, rss_mib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOAD_GENERATOR = ROOT / "bench" / "load" / "ws_load.js"
BASELINE = ROOT / "bench" / "baselines" / "batched_tornado.py"
SERVERS = ("baseline", "stockquest")
SUBSCRIBED = 10
INTERVAL_MS = 1000
PINNED = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2


def pin(cpu: int) -> list[str]:
    """A command prefix that keeps a process on one CPU, so server and load generator do not compete."""
    return ["taskset", "-c", str(cpu)] if PINNED else []


def universe() -> list[str]:
    """Stock Quest's symbols: the baseline is told to simulate the same ones."""
    from domain.universe import DEFAULT_UNIVERSE

    return [spec.symbol for spec in DEFAULT_UNIVERSE]


def start_server(kind: str, connections: int, symbols: list[str]) -> ServerProcess:
    """Stock Quest, or the baseline told to simulate `symbols`, pinned to CPU 0."""
    def command(port: int, data_dir: str) -> list[str]:
        if kind == "stockquest":
            return pin(0) + [sys.executable, str(ROOT / "stockquest.py"), "--port", str(port), "--data-dir", data_dir,
                             "--seed", "1", "--log-level", "WARNING", "--max-connections", str(connections + 100)]
        return pin(0) + [sys.executable, str(BASELINE), "--port", str(port), "--symbols", ",".join(symbols)]

    return ServerProcess(command, name=kind)


def measure(server: ServerProcess, connections: int, symbols: list[str], args) -> dict:
    """Run the load generator against `server`, sampling the server's CPU at its window's start and end."""
    subscribe = json.dumps({"type": "SUBSCRIBE", "data": {"symbols": symbols, "updateInterval": INTERVAL_MS}})
    command = pin(1) + ["node", str(LOAD_GENERATOR), "--url", f"ws://127.0.0.1:{server.port}/ws/market-data",
                        "--connections", str(connections), "--send", subscribe, "--warmup", str(args.warmup),
                        "--window", str(args.window), "--batch", str(args.batch)]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120 + args.warmup + args.window, load.kill)  # e.g. connections that never open
    watchdog.start()
    try:
        samples = {}
        for line in load.stderr:
            mark = line.strip()
            if mark in ("window start", "window end"):
                samples[mark] = (cpu_seconds(server.pid), time.monotonic(), rss_mib(server.pid))
            else:
                sys.stderr.write(line)
        output = load.stdout.read()
        load.wait()
    finally:
        watchdog.cancel()
    if load.returncode != 0 or len(samples) != 2:
        raise SystemExit(f"load generator failed (exit {load.returncode})")
    result = json.loads(output)
    (cpu0, t0, _), (cpu1, t1, rss) = samples["window start"], samples["window end"]
    server_cpu_per_s = (cpu1 - cpu0) / (t1 - t0)
    return {
        "connections": result["connections"],
        "connect_s": result["connect_s"],
        "updates_per_s": result["frames_per_s"],
        "expected_per_s": connections * 1000 / INTERVAL_MS,
        "quotes_per_s": result["quotes_per_s"],
        "delay_p50_ms": result["delay_p50_ms"],
        "delay_p99_ms": result["delay_p99_ms"],
        "delay_max_ms": result["delay_max_ms"],
        "server_cpu_percent": 100 * server_cpu_per_s,
        "server_us_per_update": 1e6 * server_cpu_per_s / result["frames_per_s"] if result["frames_per_s"] else None,
        "load_cpu_percent": 100 * result["cpu_s"] / result["window_s"],
        "rss_mib": rss,
        "closes": result["closes"],
        "errors": result["errors"],
    }


COLUMNS = (  # heading, result key, format
    ("connections", "connections", "{:.0f}"), ("connect s", "connect_s", "{:.2f}"),
    ("updates/s", "updates_per_s", "{:.0f}"), ("expected/s", "expected_per_s", "{:.0f}"),
    ("quotes/s", "quotes_per_s", "{:.0f}"), ("delay p50 ms", "delay_p50_ms", "{:.0f}"),
    ("delay p99 ms", "delay_p99_ms", "{:.0f}"), ("server CPU %", "server_cpu_percent", "{:.1f}"),
    ("server µs/update", "server_us_per_update", "{:.1f}"), ("loadgen CPU %", "load_cpu_percent", "{:.1f}"),
    ("RSS MiB", "rss_mib", "{:.0f}"), ("closes", "closes", "{:.0f}"), ("errors", "errors", "{:.0f}"),
)
LEGEND = ("(updates: REAL_TIME_UPDATE frames or the baseline's arrays; quotes: the quote objects in them; "
          "delay: receive time minus the quote's time; server µs/update: server CPU per delivered update; "
          "closes: connections the server closed)")


def median(runs: list[dict], key: str) -> float | None:
    """The median over runs; None when no run has the figure (nothing delivered)."""
    values = [run[key] for run in runs if run[key] is not None]
    return statistics.median(values) if values else None


def median_row(runs: list[dict]) -> list[str]:
    return ["-" if (value := median(runs, key)) is None else fmt.format(value) for _, key, fmt in COLUMNS]


def report(results: dict, levels: list[int], args) -> tuple[str, str]:
    """The table as plain text and as Markdown, with the p99 ratio per level."""
    placement = "server on CPU 0, load generator on CPU 1 (taskset)" if PINNED else "not pinned (no taskset)"
    title = (f"medians of {args.repeat} run(s); every connection subscribes to the same {SUBSCRIBED} symbols at "
             f"1 update/s; warm-up {args.warmup:g} s, window {args.window:g} s; {placement}; "
             f"{os.cpu_count()} cores")
    headings = ["server"] + [heading for heading, _, _ in COLUMNS]
    rows = [[server] + median_row(results[level, server]) for level in levels for server in SERVERS]
    ratios = []
    for level in levels:
        base = median(results[level, "baseline"], "delay_p99_ms")
        ours = median(results[level, "stockquest"], "delay_p99_ms")
        ratios.append(f"{level} connections: stockquest p99 / baseline p99 = "
                      + (f"{ours / base:.2f}x" if base and ours is not None else "n/a"))
    widths = [max(len(heading), 10) for heading in headings]
    text = "\n".join([title, " ".join(f"{h:>{w}}" for h, w in zip(headings, widths, strict=True))]
                     + [" ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)) for row in rows]
                     + ratios + [LEGEND])
    markdown = "\n".join([title, "", "| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
                         + ["| " + " | ".join(row) + " |" for row in rows] + [""] + [f"- {r}" for r in ratios]
                         + ["", LEGEND])
    return text, markdown + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1000,5000", help="connection counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the last connection opens")
    parser.add_argument("--window", type=float, default=10.0, help="measuring window, seconds")
    parser.add_argument("--batch", type=int, default=100, help="connections the load generator opens at once")
    parser.add_argument("--out", type=Path, help="also write the table to this file as Markdown")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    if shutil.which("node") is None or not (ROOT / "node_modules" / "ws").is_dir():
        raise SystemExit("needs node and the npm packages: run `npm ci` in the repository")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the server and the load generator
    if max(levels) + 200 > hard:
        raise SystemExit(f"open-file limit {hard} is too low for {max(levels)} connections")

    symbols = universe()
    subscribed = symbols[:SUBSCRIBED]
    results: dict[tuple[int, str], list[dict]] = {(level, server): [] for level in levels for server in SERVERS}
    for run in range(args.repeat):
        for level in levels:
            for kind in SERVERS:  # alternated, so drift on a shared machine hits both alike
                with start_server(kind, level, symbols) as server:
                    result = measure(server, level, subscribed, args)
                results[level, kind].append(result)
                print(f"run {run + 1} {kind} {level}: " + ", ".join(
                    f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()), flush=True)

    text, markdown = report(results, levels, args)
    print("\n" + text)
    if args.out:
        args.out.write_text(markdown)


if __name__ == "__main__":
    main()
