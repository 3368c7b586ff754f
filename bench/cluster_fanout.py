"""Quote fan-out past one process: 1, 2 and 4 gateways sharing one Redis and one engine, against the single process
at the same load, on this machine; then Redis itself (bench/redis_pubsub.py). Writes bench/results/<date>-cluster.md.

For each repeat, each level runs on fresh processes, alternated so drift on a shared machine hits all alike:
`single` is the server alone (no Redis), as bench/fanout.py runs it; `G` is a redis-server (temporary folder, free
port, no persistence), one `--role engine` process (which takes the lease and runs the market) and G `--role
gateway` processes, each with its own data folder, started once the engine runs and measured once every gateway's
/healthz says `"engine": "elsewhere"` and every process has settled (the engine's signal warm-up). Every process
gets the same `--tick-ms` (a gateway's fan-out phases follow it) and `--seed 1`.

Placement on two cores (taskset): the fan-out processes, the single server or all G gateways, share CPU 0; the
engine, redis-server and the load generator share CPU 1. So the gateways together get the one core the single
process gets, and the comparison is the cost of the cluster's path (the engine publishes each tick once to Redis;
each gateway reads it, decodes it and fans it out) and of splitting one core's work over G processes. It does not
show gateways on more cores adding throughput: this machine has no core to give them (docs/scaling.md).

The load: `bench/load/ws_load.js` (Node, the one bench/fanout.py uses) opens C WebSocket market-data connections,
round robin over the gateways' ports (`--url` with several URLs), each subscribing to the same S symbols every
`--interval-ms`, and over its window counts update frames, their quotes and each quote's delay (receive time minus
the quote's `time`, stamped by the engine). An update is one quote delivered to one client. Meanwhile this script
reads each process's CPU from /proc/PID/stat (Redis's from INFO cpu, finer); the load generator reports its own.
"fan-out µs/update" is the fan-out processes' CPU per delivered update (the single server's includes its market
simulation, which the engine's CPU shows: 1-1.5 % of a core); "all servers µs/frame" adds the engine and Redis,
the whole server side's cost of a frame.

    .venv/bin/python bench/cluster_fanout.py                      # ~10 min: 4,000 × 10 symbols @250 ms, 3 runs
    .venv/bin/python bench/cluster_fanout.py --quick              # a smoke run of ~1.5 min; its figures judge nothing
    .venv/bin/python bench/cluster_fanout.py --gateways 1,2 --connections 2000 --repeat 1 --redis-repeat 0
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import sys
import time
import urllib.request
from pathlib import Path

import fanout
import redis_pubsub
from fanout import median, per, pin
from goals import command_output, table, version
from procstat import RedisProcess, ServerProcess, cpu_seconds, machine_busy_seconds, rss_mib, settle

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FANOUT_CPU, OTHER_CPU = 0, 1
STARTUP_NOISE = ("service DEGRADED (broker CONNECTED, engine UNAVAILABLE)", "service OK (broker CONNECTED, engine "
                 "AVAILABLE)")  # a gateway's first half second, before it hears the engine's first beat


def placement() -> str:
    return ("the single server or every gateway on CPU 0; the engine, redis-server and the load generator on CPU 1 "
            "(taskset)" if fanout.PINNED else "not pinned (no taskset or one core)")


# the processes ------------------------------------------------------------------------------------------------------
def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return json.loads(response.read())


def wait_for(check, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} within {timeout_s:g} s: no")
        time.sleep(0.05)


def stockquest(*options: str, cpu: int, connections: int, tick_ms: int | None):
    """The command line of a Stock Quest process on `cpu`, as ServerProcess wants it."""
    tick = [] if tick_ms is None else ["--tick-ms", str(tick_ms)]

    def command(port: int, data_dir: str) -> list[str]:
        return pin(cpu) + [sys.executable, str(ROOT / "stockquest.py"), *options, "--port", str(port), "--data-dir",
                           data_dir, "--seed", "1", "--log-level", "WARNING", "--max-connections",
                           str(connections + 100)] + tick
    return command


class Setup:
    """The processes of one level, started fresh: `ports` take the clients, `pids` are measured (name → pid);
    stopped in reverse order (gateways, engine, Redis) on exit, each process's warnings printed."""

    def __init__(self, gateways: int, connections: int, tick_ms: int | None):
        self.gateways, self.stack = gateways, contextlib.ExitStack()
        self.servers: list[ServerProcess] = []
        self.redis_port: int | None = None
        try:
            if gateways == 0:
                self.single(connections, tick_ms)
            else:
                self.cluster(gateways, connections, tick_ms)
        except BaseException:
            self.stack.close()
            raise

    def single(self, connections: int, tick_ms: int | None) -> None:
        server = self.start(stockquest(cpu=FANOUT_CPU, connections=connections, tick_ms=tick_ms), "single")
        self.ports, self.pids = [server.port], {"server": server.pid}
        settle(server.pid)

    def cluster(self, gateways: int, connections: int, tick_ms: int | None) -> None:
        redis = self.stack.enter_context(RedisProcess(pin(OTHER_CPU)))
        self.redis_port, cluster = redis.port, ("--redis-url", redis.url)
        engine = self.start(stockquest("--role", "engine", *cluster, cpu=OTHER_CPU, connections=100, tick_ms=tick_ms),
                            "engine")
        wait_for(lambda: health(engine.port).get("engine") == "here", "the engine took the lease")
        per_gateway = math.ceil(connections / gateways)
        started = [self.start(stockquest("--role", "gateway", *cluster, cpu=FANOUT_CPU, connections=per_gateway,
                                         tick_ms=tick_ms), f"gateway{i + 1}") for i in range(gateways)]
        for gateway in started:
            wait_for(lambda port=gateway.port: health(port)["engine"] == "elsewhere", "a gateway heard the engine")
        self.ports = [gateway.port for gateway in started]
        self.pids = {f"gateway {i + 1}": gateway.pid for i, gateway in enumerate(started)}
        self.pids |= {"engine": engine.pid, "redis": redis.pid}
        for pid in self.pids.values():
            settle(pid)

    def start(self, command, name: str) -> ServerProcess:
        server = self.stack.enter_context(ServerProcess(command, name=name))
        self.stack.callback(self.report_warnings, server)  # runs before the server stops: its log is still there
        self.servers.append(server)
        return server

    @staticmethod
    def report_warnings(server: ServerProcess) -> None:
        lines = [line for line in server.log_path.read_text().splitlines()
                 if " WARNING " in line and not line.endswith(STARTUP_NOISE)]
        if lines:
            print(f"  {server.name} logged {len(lines)} warning(s), first: {lines[0]}", flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stack.close()


# one measurement -----------------------------------------------------------------------------------------------------
def sample(setup: "Setup") -> dict:
    """Every process's CPU seconds and RSS now; Redis's CPU from INFO cpu, finer than /proc's 10 ms ticks (it uses a
    fraction of a percent here)."""
    cpu = {name: cpu_seconds(pid) for name, pid in setup.pids.items()}
    if setup.redis_port is not None:
        cpu["redis"] = redis_pubsub.redis_stats(setup.redis_port)[0]
    return {"time": time.monotonic(), "machine": machine_busy_seconds(), "cpu": cpu,
            "rss": {name: rss_mib(pid) for name, pid in setup.pids.items()}}


def run_load(setup: Setup, connections: int, symbols: list[str], interval_ms: int, *, warmup: float,
             window: float) -> tuple[dict, dict]:
    """The load generator's results (connections round robin over the setup's ports), and samples of every
    process at its window's start and end."""
    urls = ",".join(f"ws://127.0.0.1:{port}/ws/market-data" for port in setup.ports)
    command = pin(OTHER_CPU) + ["node", str(fanout.LOAD_GENERATOR), "--url", urls, "--connections", str(connections),
                                "--warmup", str(warmup), "--window", str(window), "--batch", str(fanout.BATCH),
                                "--interval", str(interval_ms),
                                "--send", fanout.subscribe_message(symbols, interval_ms)]
    return fanout.drive(command, connections, warmup=warmup, window=window, sample=lambda: sample(setup))


def measure(setup: Setup, connections: int, symbols: list[str], interval_ms: int, *, warmup: float,
            window: float) -> dict:
    """One window's figures; "delivered" and "all delivered" as bench/fanout.py judges them."""
    result, samples = run_load(setup, connections, symbols, interval_ms, warmup=warmup, window=window)
    start, end = samples["window start"], samples["window end"]
    seconds = end["time"] - start["time"]
    cpu = {name: end["cpu"][name] - start["cpu"][name] for name in setup.pids}
    fanout_names = [name for name in setup.pids if name == "server" or name.startswith("gateway")]
    fanout_cpu, all_cpu = sum(cpu[name] for name in fanout_names), sum(cpu.values())
    frames, quotes = result["frames_per_s"] * result["window_s"], result["quotes_per_s"] * result["window_s"]
    expected_frames = result["window_s"] * 1000 / interval_ms
    delivered = quotes / (result["frames_expected"] * len(symbols)) if result["frames_expected"] else 0.0
    load_percent = 100 * result["cpu_s"] / result["window_s"]
    return {
        "gateways": setup.gateways,
        "connections": result["connections"],
        "connect_s": result["connect_s"],
        "quotes_per_s": result["quotes_per_s"],
        "expected_quotes_per_s": connections * len(symbols) * 1000 / interval_ms,
        "delivered": delivered,
        "all_delivered": (delivered >= fanout.DELIVERED and result["quotes_per_frame_min"] == len(symbols)
                          and result["frames_per_connection_min"] >= math.floor(expected_frames) - 1),
        "frames_per_s": result["frames_per_s"],
        "frames_per_connection_min": result["frames_per_connection_min"],
        "expected_frames_per_connection": expected_frames,
        "delay_p50_ms": result["delay_p50_ms"],
        "delay_p99_ms": result["delay_p99_ms"],
        "delay_max_ms": result["delay_max_ms"],
        "fanout_cpu_percent": 100 * fanout_cpu / seconds,
        "busiest_fanout_cpu_percent": 100 * max(cpu[name] for name in fanout_names) / seconds,
        "engine_cpu_percent": 100 * cpu["engine"] / seconds if "engine" in cpu else None,
        "redis_cpu_percent": 100 * cpu["redis"] / seconds if "redis" in cpu else None,
        "load_cpu_percent": load_percent,
        "others_cpu_percent": 100 * (end["machine"] - start["machine"] - all_cpu) / seconds - load_percent,
        "fanout_us_per_update": per(1e6 * fanout_cpu, quotes),
        "fanout_us_per_frame": per(1e6 * fanout_cpu, frames),
        "all_us_per_frame": per(1e6 * all_cpu, frames),
        "load_us_per_frame": per(1e6 * result["cpu_s"], frames),
        "fanout_rss_mib": sum(end["rss"][name] for name in fanout_names),
        "closes": result["closes"],
        "errors": result["errors"],
    }


def summary(result: dict) -> str:
    return ", ".join(f"{k}={v:.{1 if abs(v) >= 10 else 3}f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in result.items() if v is not None)


# the report ----------------------------------------------------------------------------------------------------------
def name(gateways: int) -> str:
    return "single process" if gateways == 0 else f"{gateways} gateway{'s' if gateways > 1 else ''}"


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


COLUMNS = (  # heading, key, digits
    ("delivered updates/s", "quotes_per_s", 0), ("offered/s", "expected_quotes_per_s", 0),
    ("min frames/conn", "frames_per_connection_min", 0), ("delay p50 ms", "delay_p50_ms", 0),
    ("p99 ms", "delay_p99_ms", 0), ("max ms", "delay_max_ms", 0), ("fan-out CPU %", "fanout_cpu_percent", 1),
    ("busiest process %", "busiest_fanout_cpu_percent", 1), ("engine CPU %", "engine_cpu_percent", 1),
    ("Redis CPU %", "redis_cpu_percent", 1), ("loadgen CPU %", "load_cpu_percent", 1),
    ("others CPU %", "others_cpu_percent", 0), ("fan-out µs/update", "fanout_us_per_update", 2),
    ("fan-out µs/frame", "fanout_us_per_frame", 1), ("all servers µs/frame", "all_us_per_frame", 1),
    ("fan-out RSS MiB", "fanout_rss_mib", 0), ("connect s", "connect_s", 2),
)
LEGEND = ("An update is one quote delivered to one client; a frame is one REAL_TIME_UPDATE (S quotes). "
          "min frames/conn: the fewest frames any connection got in the window. "
          "Delay: receive time minus the quote's time (the engine's tick). "
          "fan-out CPU %: the single server, or every gateway together, of one core; busiest process: the busiest "
          "gateway (or the single server). engine, Redis: their processes (none for the single process, whose market "
          "runs inside it). others: the rest of the machine over the same window, of 100 % per core (a shared "
          "machine's noise). fan-out µs/update, µs/frame: the fan-out processes' CPU per delivered update, per frame; "
          "all servers µs/frame: with the engine and Redis. Every update delivered: ≥ 99 % of the quotes due in the "
          "frames each connection should have got between its first and last frame, every connection its window's "
          "frames less one at least, every frame with every symbol.")


def delivered_text(runs: list[dict]) -> str:
    good = sum(bool(run["all_delivered"]) for run in runs)
    return f"{good}/{len(runs)} runs delivered every update (median {100 * median(runs, 'delivered'):.1f} %)"


def comparisons(results: dict[int, list[dict]]) -> list[str]:
    """Each cluster level against the single process of the same invocation, in medians."""
    if 0 not in results:
        return []
    base = results[0]

    def ratio(runs: list[dict], key: str) -> str:
        ours, theirs = median(runs, key), median(base, key)
        return f"{ours / theirs:.2f}×" if ours is not None and theirs else "n/a"

    lines = [f"{name(0)}: {delivered_text(base)}"]
    for level, runs in results.items():
        if level:
            lines.append(f"{name(level)}: {delivered_text(runs)}; against the single process: delivered "
                         f"{ratio(runs, 'quotes_per_s')}, p50 {ratio(runs, 'delay_p50_ms')}, p99 "
                         f"{ratio(runs, 'delay_p99_ms')}, fan-out µs/update {ratio(runs, 'fanout_us_per_update')}, all "
                         f"servers µs/frame {ratio(runs, 'all_us_per_frame')}")
    return lines


def fanout_report(results: dict[int, list[dict]], args) -> str:
    headings = ["setup"] + [heading for heading, _, _ in COLUMNS]
    rows = [[name(level)] + [number(median(runs, key), digits) for _, key, digits in COLUMNS]
            for level, runs in results.items()]
    tick = "the default 250 ms tick" if args.tick_ms is None else f"a {args.tick_ms} ms tick"
    return "\n".join([
        f"{args.connections:,} WebSocket connections, each subscribing to the same {args.symbols} symbols every "
        f"{args.interval_ms} ms ({tick}), spread evenly over the gateways; medians of {args.repeat} run(s) per setup, "
        f"warm-up {args.warmup:g} s, window {args.window:g} s; {placement()}.", "",
        table(headings, rows), "", *[f"- {line}" for line in comparisons(results)], "", LEGEND])


def machine() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "?")
    ws = json.loads((ROOT / "node_modules" / "ws" / "package.json").read_text())["version"]
    changed = command_output(["git", "status", "--porcelain", "--untracked-files=no"]).splitlines()
    return [
        f"CPU: {model}; {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)",
        f"kernel: {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, Tornado {version('tornado')}, redis-py {version('redis')} with "
        f"{redis_pubsub.parser_name()}, {command_output(['redis-server', '--version']).split(' sha=')[0]}",
        f"Node {command_output(['node', '--version'])}, ws {ws}",
        f"commit: {command_output(['git', 'rev-parse', '--short', 'HEAD'])}"
        + (f" with {len(changed)} uncommitted changed files" if changed else ""),
        f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}",
    ]


def results_path(started: datetime.datetime, quick: bool) -> Path:
    """bench/results/<date>-cluster.md, never overwriting an earlier run of the same day."""
    stem = f"{started:%Y-%m-%d}-cluster" + ("-quick" if quick else "")
    path, n = RESULTS / f"{stem}.md", 2
    while path.exists():
        path, n = RESULTS / f"{stem}-{n}.md", n + 1
    return path


# running -------------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 connections, short windows, 1 run")
    parser.add_argument("--gateways", default="1,2,4", help="gateway counts, comma-separated (the single process "
                        "runs too unless --no-single)")
    parser.add_argument("--no-single", action="store_true", help="skip the single-process baseline")
    parser.add_argument("--connections", type=int, default=4000)
    parser.add_argument("--symbols", type=int, default=10, help="symbols each connection subscribes to")
    parser.add_argument("--interval-ms", type=int, default=250, help="the subscription's updateInterval")
    parser.add_argument("--tick-ms", type=int, help="every process's market tick (default: the server's, 250 ms)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the last connection opens")
    parser.add_argument("--window", type=float, default=10.0, help="measuring window, seconds")
    parser.add_argument("--redis-repeat", type=int, default=2, help="runs of each Redis micro-benchmark (0: none)")
    parser.add_argument("--out", type=Path, help="the results file (default bench/results/<date>-cluster.md)")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.repeat, args.warmup, args.window = 1000, 1, 1.0, 4.0
        args.redis_repeat = min(args.redis_repeat, 1)
    levels = ([] if args.no_single else [0]) + [int(g) for g in args.gateways.split(",")]
    fanout.check_tools(["stockquest"])
    fanout.raise_open_files(args.connections + 200)
    symbols = fanout.universe()[:args.symbols]
    started, start = datetime.datetime.now(), time.monotonic()

    results: dict[int, list[dict]] = {level: [] for level in levels}
    raw: list[str] = []
    for run in range(args.repeat):
        for level in levels:
            with Setup(level, args.connections, args.tick_ms) as setup:
                result = measure(setup, args.connections, symbols, args.interval_ms, warmup=args.warmup,
                                 window=args.window)
            results[level].append(result)
            raw.append(f"run {run + 1} {name(level)}: {summary(result)}")
            print(raw[-1], flush=True)
    fanout_text = fanout_report(results, args)
    print("\n" + fanout_text, flush=True)

    redis_text, redis_raw = "", []
    if args.redis_repeat:
        levels_k = [1, 4] if args.quick else [1, 2, 3, 4]
        window = 1.5 if args.quick else 3.0
        print("\nRedis as the cluster uses it (bench/redis_pubsub.py):", flush=True)

        def log(line: str) -> None:
            redis_raw.append(line)
            print(line, flush=True)

        redis_results = redis_pubsub.measure_all(redis_pubsub.KINDS, levels_k, repeat=args.redis_repeat, warmup=1.0,
                                                 window=window, hub_bytes=512, log=log)
        redis_text = redis_pubsub.report(redis_results, repeat=args.redis_repeat, warmup=1.0, window=window)
        print("\n" + redis_text, flush=True)

    elapsed = time.monotonic() - start
    title = f"# Fan-out past one process, {started:%Y-%m-%d %H:%M}" + (" (--quick)" if args.quick else "")
    parts = [title, ""]
    if args.quick:
        parts += ["A --quick smoke run: 1,000 connections, short windows, one run; its figures judge nothing.", ""]
    parts += [f"Run time {elapsed / 60:.1f} min: `{' '.join(['bench/cluster_fanout.py', *sys.argv[1:]])}`.", "",
              "## Fan-out: gateways against the single process", "", fanout_text, ""]
    if redis_text:
        parts += ["## Redis as the cluster uses it", "", redis_text, ""]
    parts += ["## Raw figures", "", "```text", *raw, *redis_raw, "```", "", "## Machine", "",
              *[f"- {line}" for line in machine()], ""]
    path = args.out or results_path(started, args.quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    print(f"written to {path} ({elapsed / 60:.1f} min)")


if __name__ == "__main__":
    main()
