"""permessage-deflate benchmark: Stock Quest's quote fan-out with `--compression` off and on, in the same run.

The set-up of bench/fanout.py (whose functions this reuses): for each repeat and each mode, a fresh server on
CPU 0, settled, then `bench/load/ws_load.js` on CPU 1 opening `--connections` WebSocket connections (default
1,000), each subscribing to `--symbols` symbols (default 10) every `--interval-ms` (default 1000). With
compression on, the server runs with `--compression` and the load generator offers permessage-deflate
(`--deflate 1`, Node ws's defaults); off, neither. Bytes on the wire are what the clients' TCP sockets read over
the window (every frame as the server sent it, without TCP/IP headers; the server sends nothing else on them).
Not /proc/PID/io's `wchar`: it counts write(2), not the send(2) the server's sockets are written with.
RSS per connection is the server's RSS at the window's end over the connections, less the same figure with
compression off (what the compressors hold). Medians of the repeats; with `--out` the table as Markdown.

    .venv/bin/python bench/compression.py --connections 1000 --repeat 3
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

import fanout
from procstat import ServerProcess, settle

MODES = {"off": [], "on": ["--compression"]}
COLUMNS = (  # heading, result key, format
    ("received KB/s", "received_kb_per_s", "{:.0f}"),
    ("bytes/update", "bytes_per_frame", "{:.0f}"), ("frames/s", "frames_per_s", "{:.0f}"),
    ("server CPU %", "server_cpu_percent", "{:.1f}"), ("server µs/update", "server_us_per_frame", "{:.1f}"),
    ("delay p50 ms", "delay_p50_ms", "{:.0f}"), ("delay p99 ms", "delay_p99_ms", "{:.0f}"),
    ("RSS MiB", "rss_mib", "{:.0f}"), ("loadgen CPU %", "load_cpu_percent", "{:.1f}"),
    ("deflate conns", "deflate_connections", "{:.0f}"), ("closes", "closes", "{:.0f}"),
)


def start(mode: str, connections: int, symbols: list[str]) -> ServerProcess:
    """Stock Quest with compression `mode` on CPU 0, once its start-up work is done."""
    def command(port: int, data_dir: str) -> list[str]:
        return fanout.server_command("stockquest", port, data_dir, symbols=symbols,
                              max_connections=connections + 100) + MODES[mode]
    server = ServerProcess(command, name=f"stockquest-compression-{mode}")
    server.settled_s = settle(server.pid)
    return server


def derived(result: dict) -> dict:
    """The byte figures in KB (1,000 bytes) and per delivered update frame."""
    return {**result, "received_kb_per_s": result["received_bytes_per_s"] / 1000,
            "bytes_per_frame": result["received_bytes_per_s"] / result["frames_per_s"] if result["frames_per_s"]
            else None}


def median(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def report(results: dict[str, list[dict]], args) -> str:
    """The medians as a Markdown table, with the on/off ratios and RSS per connection."""
    title = (f"medians of {args.repeat} run(s); {args.connections} connections each subscribing to the same "
             f"{args.symbols} symbols every {args.interval_ms} ms; warm-up {args.warmup:g} s, window "
             f"{args.window:g} s; {fanout.placement()}; {os.cpu_count()} cores")
    headings = ["compression"] + [heading for heading, _, _ in COLUMNS]
    rows = [[mode] + ["-" if (value := median(runs, key)) is None else fmt.format(value)
                      for _, key, fmt in COLUMNS] for mode, runs in results.items()]
    lines = [title, "", "| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    off, on = results["off"], results["on"]
    lines += [""]
    for label, key in (("received bytes", "received_kb_per_s"), ("server CPU", "server_cpu_percent"),
                       ("server µs/update", "server_us_per_frame")):
        lines.append(f"- {label}, on / off: {median(on, key) / median(off, key):.2f}x")
    rss = 1024 * (median(on, "rss_mib") - median(off, "rss_mib")) / args.connections
    lines.append(f"- server RSS with compression, per connection: {rss:+.1f} KiB")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=fanout.SUBSCRIBED, help="symbols each connection subscribes to")
    parser.add_argument("--interval-ms", type=int, default=fanout.INTERVAL_MS, help="the subscription's updateInterval")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the last connection opens")
    parser.add_argument("--window", type=float, default=10.0, help="measuring window, seconds")
    parser.add_argument("--out", type=Path, help="also write the table to this file as Markdown")
    args = parser.parse_args()
    fanout.check_tools(["stockquest"])
    fanout.raise_open_files(args.connections + 200)

    subscribed = fanout.universe()[:args.symbols]
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for run in range(args.repeat):
        for mode in MODES:  # alternated, so drift on a shared machine hits both alike
            with start(mode, args.connections, subscribed) as server:
                result = derived(fanout.measure(server, args.connections, subscribed, interval_ms=args.interval_ms,
                                         warmup=args.warmup, window=args.window, deflate=mode == "on"))
            results[mode].append(result)
            print(f"run {run + 1} compression {mode}: {fanout.summary(result)}", flush=True)
            expected = args.connections if mode == "on" else 0
            if result["deflate_connections"] != expected:
                sys.exit(f"{result['deflate_connections']} connections negotiated deflate, expected {expected}")

    markdown = report(results, args)
    print("\n" + markdown)
    if args.out:
        args.out.write_text(markdown)


if __name__ == "__main__":
    main()
