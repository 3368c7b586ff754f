"""Quote fan-out benchmark: Stock Quest against two batched baselines (picows, Tornado), at thousands of connections.

For each level, each server and each repeat, a fresh server process starts on a free 127.0.0.1 port (pinned
to CPU 0 when `taskset` is there) and, once its start-up work is done (Stock Quest warms its signal engine for
seconds after it answers), `bench/load/ws_load.js` (Node, pinned to CPU 1) opens that many WebSocket
connections, each subscribing to the same symbols (`--symbols`, default 10) every `--interval-ms` (default
1000). The servers: `stockquest`, `baseline` (bench/baselines/batched_tornado.py, the plainest well-written
Tornado design) and `picows` (bench/baselines/batched_picows.py, the same design on picows: the floor). The load
generator is Node because a Python client spends more CPU per frame than the server does to send it. Over its
measuring window it counts update frames per connection, the quotes in them and each quote's delay (receive
time minus the quote's `time`), while this script reads the server's CPU from /proc/PID/stat over the same
window. Server CPU is given per delivered frame and per delivered quote (an "update" in the goals: a frame of
10 quotes is 10 updates). The delay includes how long a tick's quotes wait for their flush, which differs by
design (the baselines send right after a tick, spreading clients over ticks). The load generator's own CPU is
printed: near 100 % it, not the server, is the bottleneck. Medians of the repeats are printed, and with `--out`
written as Markdown. The picows baseline needs `.venv/bin/pip install -r bench/requirements.txt`.

    .venv/bin/python bench/fanout.py --levels 1000,5000 --repeat 3
    .venv/bin/python bench/fanout.py --levels 200,1000 --repeat 1 --warmup 2 --window 5 --out /tmp/fanout.md
    .venv/bin/python bench/fanout.py --levels 2000 --servers stockquest --symbols 38 --interval-ms 100 --tick-ms 100
"""

import argparse
import importlib.util
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from procstat import ServerProcess, cpu_seconds, machine_busy_seconds, rss_mib, settle

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOAD_GENERATOR = ROOT / "bench" / "load" / "ws_load.js"
BASELINES = {"picows": ROOT / "bench" / "baselines" / "batched_picows.py",
             "baseline": ROOT / "bench" / "baselines" / "batched_tornado.py"}
SERVERS = ("picows", "baseline", "stockquest")
NAMES = {"picows": "batched picows", "baseline": "batched tornado", "stockquest": "Stock Quest"}
SUBSCRIBED = 10
INTERVAL_MS = 1000
BATCH = 100
DELIVERED = 0.99  # of the expected quotes, for "every update delivered"
PINNED = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2
PICOWS_MISSING = "the picows baseline needs picows: .venv/bin/pip install -r bench/requirements.txt (or `make bench`)"


def pin(cpu: int) -> list[str]:
    """A command prefix that keeps a process on one CPU, so server and load generator do not compete."""
    return ["taskset", "-c", str(cpu)] if PINNED else []


def placement() -> str:
    return "server on CPU 0, load generator on CPU 1 (taskset)" if PINNED else "not pinned (no taskset)"


def universe() -> list[str]:
    """Stock Quest's symbols: the baselines are told to simulate the same ones."""
    from domain.universe import DEFAULT_UNIVERSE

    return [spec.symbol for spec in DEFAULT_UNIVERSE]


def check_tools(servers) -> None:
    """Exit with what to install when the load generator or the picows baseline cannot run."""
    if shutil.which("node") is None or not (ROOT / "node_modules" / "ws").is_dir():
        raise SystemExit("needs node and the npm packages: run `npm ci` in the repository (or `make node`)")
    if "picows" in servers and importlib.util.find_spec("picows") is None:
        raise SystemExit(PICOWS_MISSING)


def raise_open_files(needed: int) -> int:
    """Raise this process's open-file limit to the hard limit (the server and load generator inherit it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if needed > hard:
        raise SystemExit(f"open-file limit {hard} is too low for {needed} descriptors")
    return hard


def server_command(kind: str, port: int, data_dir: str, *, symbols: list[str], max_connections: int,
                   tick_ms: int | None = None, pinned: bool = True) -> list[str]:
    """The command line of a server of `kind`, pinned to CPU 0 unless told; `tick_ms` None keeps its default."""
    prefix, tick = pin(0) if pinned else [], [] if tick_ms is None else ["--tick-ms", str(tick_ms)]
    if kind == "stockquest":
        return prefix + [sys.executable, str(ROOT / "stockquest.py"), "--port", str(port), "--data-dir", data_dir,
                         "--seed", "1", "--log-level", "WARNING", "--max-connections", str(max_connections)] + tick
    return prefix + [sys.executable, str(BASELINES[kind]), "--port", str(port), "--symbols", ",".join(symbols)] + tick


def start_server(kind: str, connections: int, symbols: list[str], *, tick_ms: int | None = None,
                 max_connections: int | None = None) -> ServerProcess:
    """Stock Quest (room for `connections` + 100 unless told), or a baseline simulating `symbols`, on CPU 0;
    returned once its start-up work is done (`settle`)."""
    limit = max_connections or connections + 100
    server = ServerProcess(lambda port, data_dir: server_command(kind, port, data_dir, symbols=symbols,
                                                                 max_connections=limit, tick_ms=tick_ms), name=kind)
    server.settled_s = settle(server.pid)
    return server


def subscribe_message(symbols: list[str], interval_ms: int) -> str:
    return json.dumps({"type": "SUBSCRIBE", "data": {"symbols": symbols, "updateInterval": interval_ms}})


def run_load(server: ServerProcess, connections: int, *, send: str | None, warmup: float, window: float,
             batch: int = BATCH, interval_ms: int = 0, deflate: bool = False) -> tuple[dict, dict]:
    """The load generator's results, and (server CPU s, time, server RSS MiB, machine CPU s) at its window's start
    and end; `deflate`: the clients offer permessage-deflate."""
    command = pin(1) + ["node", str(LOAD_GENERATOR), "--url", f"ws://127.0.0.1:{server.port}/ws/market-data",
                        "--connections", str(connections), "--warmup", str(warmup), "--window", str(window),
                        "--batch", str(batch), "--interval", str(interval_ms), "--deflate", str(int(deflate))]
    command += ["--send", send] if send else []
    return drive(command, connections, warmup=warmup, window=window,
                 sample=lambda: (cpu_seconds(server.pid), time.monotonic(), rss_mib(server.pid),
                                 machine_busy_seconds()))


def drive(command: list[str], connections: int, *, warmup: float, window: float, sample) -> tuple[dict, dict]:
    """Run the load generator `command`: its JSON results, and `sample()` taken at its window's start and end."""
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # e.g. connections that never open; 19,000 handshakes take a minute or two here
    watchdog = threading.Timer(120 + connections / 50 + warmup + window, load.kill)
    watchdog.start()
    try:
        samples = {}
        for line in load.stderr:
            mark = line.strip()
            if mark in ("window start", "window end"):
                samples[mark] = sample()
            else:
                sys.stderr.write(line)
        output = load.stdout.read()
        load.wait()
    finally:
        watchdog.cancel()
    if load.returncode != 0 or len(samples) != 2:
        raise SystemExit(f"load generator failed (exit {load.returncode})")
    return json.loads(output), samples


def per(amount: float, count: float) -> float | None:
    return amount / count if count else None


def measure(server: ServerProcess, connections: int, symbols: list[str], *, interval_ms: int = INTERVAL_MS,
            warmup: float = 3.0, window: float = 10.0, batch: int = BATCH, deflate: bool = False) -> dict:
    """Fan-out to `connections` each subscribing `symbols` every `interval_ms`, over one window: what arrived,
    its delay, and what it cost the server and the load generator.

    `delivered`: the quotes received over those expected in the frames each connection should have got between
    its first and last frame (the load generator's `frames_expected`, which window edges do not shift).
    `all_delivered`: at least 99 % delivered, every connection at least its window's frames less one, and every
    frame with every symbol."""
    result, samples = run_load(server, connections, send=subscribe_message(symbols, interval_ms), warmup=warmup,
                               window=window, batch=batch, interval_ms=interval_ms, deflate=deflate)
    (cpu0, t0, _, all0), (cpu1, t1, rss, all1) = samples["window start"], samples["window end"]
    server_cpu_s, seconds = cpu1 - cpu0, t1 - t0
    frames, quotes = result["frames_per_s"] * result["window_s"], result["quotes_per_s"] * result["window_s"]
    expected_frames = result["window_s"] * 1000 / interval_ms  # per connection
    expected_quotes_per_s = connections * len(symbols) * 1000 / interval_ms
    delivered = quotes / (result["frames_expected"] * len(symbols)) if result["frames_expected"] else 0.0
    return {
        "connections": result["connections"],
        "connect_s": result["connect_s"],
        "ready_s": result["ready_s"],
        "frames_per_s": result["frames_per_s"],
        "received_bytes_per_s": result["bytes_per_s"],  # read by the clients' TCP sockets: the frames as sent
        "deflate_connections": result["deflate_connections"],
        "expected_frames_per_s": connections * 1000 / interval_ms,
        "quotes_per_s": result["quotes_per_s"],
        "expected_quotes_per_s": expected_quotes_per_s,
        "delivered": delivered,
        "frames_per_connection_min": result["frames_per_connection_min"],
        "frames_per_connection_max": result["frames_per_connection_max"],
        "expected_frames_per_connection": expected_frames,
        "quotes_per_frame_min": result["quotes_per_frame_min"],
        "all_delivered": (delivered >= DELIVERED and result["quotes_per_frame_min"] == len(symbols)
                          and result["frames_per_connection_min"] >= math.floor(expected_frames) - 1),
        "delay_p50_ms": result["delay_p50_ms"],
        "delay_p99_ms": result["delay_p99_ms"],
        "delay_max_ms": result["delay_max_ms"],
        "server_cpu_percent": 100 * server_cpu_s / seconds,
        "server_us_per_frame": per(1e6 * server_cpu_s, frames),
        "server_us_per_quote": per(1e6 * server_cpu_s, quotes),
        "load_cpu_percent": 100 * result["cpu_s"] / result["window_s"],
        "load_us_per_frame": per(1e6 * result["cpu_s"], frames),
        # everything else on the machine (other processes, the kernel's softirqs): a shared machine's noise
        "others_cpu_percent": 100 * (all1 - all0 - server_cpu_s) / seconds - 100 * result["cpu_s"] / result["window_s"],
        "rss_mib": rss,
        "closes": result["closes"],
        "errors": result["errors"],
    }


def summary(result: dict) -> str:
    """One run's figures on one line."""
    return ", ".join(f"{k}={v:.{1 if abs(v) >= 10 else 3}f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in result.items())


COLUMNS = (  # heading, result key, format
    ("connections", "connections", "{:.0f}"), ("connect s", "connect_s", "{:.2f}"),
    ("frames/s", "frames_per_s", "{:.0f}"), ("expected/s", "expected_frames_per_s", "{:.0f}"),
    ("quotes/s", "quotes_per_s", "{:.0f}"), ("min frames/conn", "frames_per_connection_min", "{:.0f}"),
    ("delay p50 ms", "delay_p50_ms", "{:.0f}"), ("delay p99 ms", "delay_p99_ms", "{:.0f}"),
    ("server CPU %", "server_cpu_percent", "{:.1f}"), ("server µs/frame", "server_us_per_frame", "{:.1f}"),
    ("server µs/quote", "server_us_per_quote", "{:.2f}"), ("loadgen CPU %", "load_cpu_percent", "{:.1f}"),
    ("loadgen µs/frame", "load_us_per_frame", "{:.1f}"), ("others CPU %", "others_cpu_percent", "{:.0f}"),
    ("RSS MiB", "rss_mib", "{:.0f}"),
    ("closes", "closes", "{:.0f}"), ("errors", "errors", "{:.0f}"),
)
LEGEND = ("(picows: bench/baselines/batched_picows.py, the floor; baseline: bench/baselines/batched_tornado.py; "
          "frames: REAL_TIME_UPDATE frames or the baselines' arrays; quotes: the quote objects in them, each one "
          "update; min frames/conn: the fewest frames any connection got in the window; delay: receive time minus "
          "the quote's time; server µs/frame, µs/quote: server CPU per delivered frame, per delivered quote; "
          "loadgen µs/frame: the load generator's CPU per frame, which should stay below the server's; others CPU %: "
          "the rest of the machine, of 100 % per core (a shared machine's noise); "
          "closes: connections the server closed)")


def median(runs: list[dict], key: str) -> float | None:
    """The median over runs; None when no run has the figure (nothing delivered)."""
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def median_row(runs: list[dict]) -> list[str]:
    return ["-" if (value := median(runs, key)) is None else fmt.format(value) for _, key, fmt in COLUMNS]


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if ours is not None and theirs else "n/a"


def p99_ratios(results: dict, level: int, servers) -> list[str]:
    """Stock Quest's median p99 against each baseline's in the same run."""
    if "stockquest" not in servers:
        return []
    ours = median(results[level, "stockquest"], "delay_p99_ms")
    return [f"{level} connections: stockquest p99 / {kind} p99 = "
            + ratio(ours, median(results[level, kind], "delay_p99_ms")) for kind in servers if kind != "stockquest"]


def report(results: dict, levels: list[int], servers, args) -> tuple[str, str]:
    """The table as plain text and as Markdown, with the p99 ratios per level."""
    tick = "each server's default tick" if args.tick_ms is None else f"tick {args.tick_ms} ms"
    title = (f"medians of {args.repeat} run(s); every connection subscribes to the same {args.symbols} symbols every "
             f"{args.interval_ms} ms; {tick}; warm-up {args.warmup:g} s, window {args.window:g} s; {placement()}; "
             f"{os.cpu_count()} cores")
    headings = ["server"] + [heading for heading, _, _ in COLUMNS]
    rows = [[server] + median_row(results[level, server]) for level in levels for server in servers]
    ratios = [line for level in levels for line in p99_ratios(results, level, servers)]
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
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"some of {','.join(SERVERS)}")
    parser.add_argument("--symbols", type=int, default=SUBSCRIBED, help="symbols each connection subscribes to")
    parser.add_argument("--interval-ms", type=int, default=INTERVAL_MS, help="the subscription's updateInterval")
    parser.add_argument("--tick-ms", type=int, help="every server's market tick (default: each its own, 250 ms)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the last connection opens")
    parser.add_argument("--window", type=float, default=10.0, help="measuring window, seconds")
    parser.add_argument("--batch", type=int, default=BATCH, help="connections the load generator opens at once")
    parser.add_argument("--out", type=Path, help="also write the table to this file as Markdown")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    servers = [kind for kind in SERVERS if kind in args.servers.split(",")]
    if unknown := set(args.servers.split(",")) - set(SERVERS):
        raise SystemExit(f"unknown servers {', '.join(sorted(unknown))}: choose from {', '.join(SERVERS)}")
    check_tools(servers)
    raise_open_files(max(levels) + 200)

    symbols = universe()
    subscribed = symbols[:args.symbols]
    results: dict[tuple[int, str], list[dict]] = {(level, server): [] for level in levels for server in servers}
    for run in range(args.repeat):
        for level in levels:
            for kind in servers:  # alternated, so drift on a shared machine hits all alike
                with start_server(kind, level, symbols, tick_ms=args.tick_ms) as server:
                    result = measure(server, level, subscribed, interval_ms=args.interval_ms, warmup=args.warmup,
                                     window=args.window, batch=args.batch)
                results[level, kind].append(result)
                print(f"run {run + 1} {kind} {level}: {summary(result)}", flush=True)

    text, markdown = report(results, levels, servers, args)
    print("\n" + text)
    if args.out:
        args.out.write_text(markdown)


if __name__ == "__main__":
    main()
