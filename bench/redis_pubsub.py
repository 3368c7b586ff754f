"""Redis as the cluster uses it: messages a second through realtime.redis_broker.RedisBroker to 1..4 subscribers.

The publisher is a RedisBroker in this process, as the engine's is: `publish` queues, one writer task PUBLISHes
the queue through one connection in pipelined batches of up to 512 (redis-py's asyncio client). Each subscriber
is a process of its own with a RedisBroker subscribed to the channel, as every gateway is: a dedicated pub/sub
connection read one message at a time, each handed to a handler (here one that counts). redis-py parses replies
in Python unless `hiredis` is installed; which parser ran is printed. Two kinds of message: a `market.quotes`
tick (every symbol changed, made by the market simulator and `fanout.encode_quotes`, as the engine publishes
it: ~11 KB) and a hub publication (`--hub-bytes`, default 512: an order event is 370 to 600 bytes).

Closed loop: the publisher keeps at most 4 MiB (and 4,096 messages) published but not yet counted by the slowest
subscriber, and within that publishes as fast as it can; so Redis never holds more than that for a subscriber (it
drops a pub/sub client whose output buffer passes 8 MB for 60 s or 32 MB at once) and the rates are the most this
set-up carries. Placement: redis-server alone on CPU 0; the publisher and every subscriber share CPU 1. On two
cores the Python clients are the limit (one core for 1 + k processes), so besides the rates the script reports
Redis's own CPU per published and per delivered message (`INFO cpu`), and `INFO commandstats`'s time per PUBLISH.
One Redis core's capacity is extrapolated from them: 1 / (µs per publish) publishes a second, assuming the cost
stays linear in the rate (Redis batches more per event-loop turn when busier, so this errs low), fitted as
a + b·k over k subscribers.

    .venv/bin/python bench/redis_pubsub.py                         # 1..4 subscribers, both kinds, 3 runs each
    .venv/bin/python bench/redis_pubsub.py --subscribers 1,4 --repeat 1 --window 2 --out /tmp/redis.md
"""

import argparse
import asyncio
import contextlib
import importlib.util
import os
import random
import statistics
import sys
import time
from pathlib import Path

from procstat import RedisProcess, cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

__all__ = ["KINDS", "fit", "measure_all", "messages", "parser_name", "report"]

CHANNEL = "bench.pubsub"
IN_FLIGHT_BYTES = 4 * 2**20
IN_FLIGHT_MESSAGES = 4096
KINDS = ("market.quotes", "hub")
PINNED = len(os.sched_getaffinity(0)) >= 2


def parser_name() -> str:
    return "hiredis (C)" if importlib.util.find_spec("hiredis") else "redis-py's Python parser (no hiredis)"


def messages(hub_bytes: int) -> dict[str, bytes]:
    """A real market tick with every symbol changed, as the engine publishes it, and a hub publication of
    `hub_bytes` (a hub header as realtime.hub writes it, its data padded to the size)."""
    from domain.market import MarketSimulator
    from realtime.fanout import encode_quotes
    from realtime.protocol import encode_data

    start_ms = 1_796_630_000_000
    simulator = MarketSimulator(rng=random.Random(1), start_market_ms=start_ms, history_days=1, minute_history_days=1)
    result = simulator.tick(start_ms + 250, start_ms + 250)
    quotes = encode_quotes(result.version, [simulator.quote(symbol) for symbol in result.changed], start_ms + 250)
    header = encode_data({"channels": ["orders:user:1", "orders:portfolio:1", "orders:session:" + "f" * 32],
                          "type": "EXECUTION_REPORT", "offset": 2})
    padding = max(0, hub_bytes - len(header) - len('\n{"pad":""}'))
    hub = f'{header}\n{{"pad":"{"x" * padding}"}}'.encode()
    return {"market.quotes": quotes, "hub": hub}


# a subscriber process ---------------------------------------------------------------------------------------------
async def subscribe(url: str, every: int) -> None:
    """Count what arrives on CHANNEL; print "ready" once Redis confirms the subscription, then the count every
    `every` messages; stop when stdin closes."""
    from realtime.redis_broker import RedisBroker

    broker, count, out = RedisBroker(url), 0, sys.stdout

    def counted(_channel: str, _message: bytes) -> None:
        nonlocal count
        count += 1
        if count % every == 0:
            out.write(f"{count}\n")
            out.flush()

    broker.subscribe(CHANNEL, counted)
    await broker.start()
    while CHANNEL not in broker.subscribed_channels:
        await asyncio.sleep(0.01)
    out.write("ready\n")
    out.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await broker.stop()


# the publisher and the measurement --------------------------------------------------------------------------------
class Subscriber:
    """A subscriber process and the last count it reported."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process, self.count = process, 0

    @classmethod
    async def start(cls, url: str, every: int, progress: asyncio.Event) -> "Subscriber":
        process = await asyncio.create_subprocess_exec(
            *(["taskset", "-c", "1"] if PINNED else []), sys.executable, __file__, "--subscriber", url,
            "--every", str(every), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        subscriber = cls(process)
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        if line.strip() != b"ready":
            raise SystemExit(f"a subscriber did not start: {line!r}")
        subscriber.reader = asyncio.create_task(subscriber._read(progress))
        return subscriber

    async def _read(self, progress: asyncio.Event) -> None:
        async for line in self.process.stdout:
            self.count = int(line)
            progress.set()

    async def stop(self) -> None:
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self.reader.cancel()


async def stop_when_sent(publisher, subs: list[Subscriber], published: int, every: int) -> None:
    """Stop the publisher once every subscriber has (nearly) all it published, so that its writer is idle.

    RedisBroker.stop() cancels the writer task and waits for it; on Python 3.11 a cancel that comes as a pipelined
    write finishes is lost (asyncio.wait_for, which redis-py puts around every write, returns the write's result
    instead of raising), and the writer waits for more to send for ever. An idle writer is cancelled cleanly."""
    deadline = time.monotonic() + 10
    while published - min(sub.count for sub in subs) >= every and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the last pipeline's replies
    try:
        await asyncio.wait_for(publisher.stop(), 5)
    except TimeoutError:
        print("  the publisher's RedisBroker.stop() did not return in 5 s (its writer's cancel was lost)", flush=True)


def redis_stats(port: int) -> tuple[float, int, int]:
    """(CPU seconds, PUBLISH calls, µs in PUBLISH) of redis-server so far, from INFO cpu (getrusage: finer than
    /proc's 10 ms clock ticks, which a few % of a core over seconds would make coarse) and INFO commandstats."""
    import redis

    client = redis.Redis(port=port)
    try:
        cpu, stats = client.info("cpu"), client.info("commandstats").get("cmdstat_publish", {})
    finally:
        client.close()
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"], int(stats.get("calls", 0)), int(stats.get("usec", 0))


async def run_once(server: RedisProcess, message: bytes, subscribers: int, *, warmup: float, window: float) -> dict:
    """Publish `message` closed loop to `subscribers` subscriber processes; the figures of one window."""
    from realtime.redis_broker import RedisBroker

    in_flight = max(64, min(IN_FLIGHT_MESSAGES, IN_FLIGHT_BYTES // len(message)))
    every, chunk = max(1, min(128, in_flight // 8)), max(1, min(64, in_flight // 4))
    progress = asyncio.Event()
    subs = [await Subscriber.start(server.url, every, progress) for _ in range(subscribers)]
    publisher = RedisBroker(server.url)
    await publisher.start()
    published, running = 0, True

    async def pump() -> None:
        nonlocal published
        while running:
            if published + chunk - min(sub.count for sub in subs) <= in_flight:
                for _ in range(chunk):
                    publisher.publish(CHANNEL, message)
                published += chunk
                await asyncio.sleep(0)  # the writer task sends what is queued
            else:
                progress.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progress.wait(), 1)

    def sample() -> tuple:
        return (time.monotonic(), published, [sub.count for sub in subs], redis_stats(server.port),
                cpu_seconds(os.getpid()), [cpu_seconds(sub.process.pid) for sub in subs])

    pumping = asyncio.create_task(pump())
    try:
        await asyncio.sleep(warmup)
        t0, published0, counts0, (redis0, calls0, usec0), pub0, subs0 = sample()
        await asyncio.sleep(window)
        t1, published1, counts1, (redis1, calls1, usec1), pub1, subs1 = sample()
    finally:
        running = False
        progress.set()
        await pumping
        await stop_when_sent(publisher, subs, published, every)
        for sub in subs:
            await sub.stop()
    seconds = t1 - t0
    received = [b - a for a, b in zip(counts0, counts1, strict=True)]
    sent, delivered = published1 - published0, sum(received)
    sub_cpu = [b - a for a, b in zip(subs0, subs1, strict=True)]
    return {
        "subscribers": subscribers,
        "bytes": len(message),
        "published_per_s": sent / seconds,
        "delivered_per_s": delivered / seconds,
        "per_subscriber_per_s": min(received) / seconds,
        "mb_out_per_s": delivered * len(message) / seconds / 1e6,
        "redis_cpu_percent": 100 * (redis1 - redis0) / seconds,
        "redis_us_per_publish": 1e6 * (redis1 - redis0) / sent if sent else None,
        "redis_us_per_delivery": 1e6 * (redis1 - redis0) / delivered if delivered else None,
        "publish_command_us": (usec1 - usec0) / (calls1 - calls0) if calls1 > calls0 else None,
        "publisher_cpu_percent": 100 * (pub1 - pub0) / seconds,
        "publisher_us_per_message": 1e6 * (pub1 - pub0) / sent if sent else None,
        "subscriber_cpu_percent": 100 * statistics.mean(sub_cpu) / seconds,
        "subscriber_us_per_message": (1e6 * sum(sub_cpu) / delivered) if delivered else None,
    }


@contextlib.contextmanager
def on_cpu(cpu: int):
    """Keeps this process (the publisher) on `cpu` for a while, when there are two cores to choose from."""
    if not PINNED:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure_all(kinds, levels: list[int], *, repeat: int, warmup: float, window: float, hub_bytes: int,
                log=print) -> dict[tuple[str, int], list[dict]]:
    """Every kind × subscriber count, `repeat` times (alternated), each with a fresh redis-server on CPU 0."""
    bodies = messages(hub_bytes)
    results: dict[tuple[str, int], list[dict]] = {(kind, k): [] for kind in kinds for k in levels}
    with on_cpu(1):
        for run in range(repeat):
            for kind in kinds:
                for k in levels:
                    with RedisProcess(["taskset", "-c", "0"] if PINNED else []) as server:
                        result = asyncio.run(run_once(server, bodies[kind], k, warmup=warmup, window=window))
                    results[kind, k].append(result)
                    log(f"run {run + 1} {kind} × {k} subscriber(s): " + ", ".join(
                        f"{key}={value:,.{1 if abs(value) >= 10 else 3}f}" if isinstance(value, float)
                        else f"{key}={value}" for key, value in result.items() if value is not None))
    return results


def median(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def fit(results: dict[tuple[str, int], list[dict]], kind: str) -> tuple[float, float] | None:
    """(a, b): Redis's µs per publish ≈ a + b·k over the subscriber counts k measured (least squares of medians)."""
    points = [(k, median(runs, "redis_us_per_publish")) for (name, k), runs in results.items() if name == kind]
    points = [(k, us) for k, us in points if us is not None]
    if len(points) < 2:
        return None
    slope, intercept = statistics.linear_regression([k for k, _ in points], [us for _, us in points])
    return intercept, slope


COLUMNS = (  # heading, key, format
    ("bytes", "bytes", "{:,.0f}"), ("published/s", "published_per_s", "{:,.0f}"),
    ("delivered/s (all subscribers)", "delivered_per_s", "{:,.0f}"),
    ("per subscriber/s (slowest)", "per_subscriber_per_s", "{:,.0f}"), ("MB/s out of Redis", "mb_out_per_s", "{:.1f}"),
    ("Redis CPU %", "redis_cpu_percent", "{:.1f}"), ("Redis µs/publish", "redis_us_per_publish", "{:.2f}"),
    ("Redis µs/delivery", "redis_us_per_delivery", "{:.2f}"), ("PUBLISH command µs", "publish_command_us", "{:.2f}"),
    ("publisher CPU %", "publisher_cpu_percent", "{:.0f}"), ("publisher µs/msg", "publisher_us_per_message", "{:.1f}"),
    ("subscriber CPU % (each)", "subscriber_cpu_percent", "{:.0f}"),
    ("subscriber µs/msg", "subscriber_us_per_message", "{:.1f}"),
)


def report(results: dict[tuple[str, int], list[dict]], *, repeat: int, warmup: float, window: float) -> str:
    """A Markdown table of medians, then the extrapolation of one Redis core per kind."""
    headings = ["message", "subscribers"] + [heading for heading, _, _ in COLUMNS]
    rows = [[kind, str(k)] + ["-" if (value := median(runs, key)) is None else fmt.format(value)
                              for _, key, fmt in COLUMNS] for (kind, k), runs in results.items()]
    lines = [f"Medians of {repeat} run(s); warm-up {warmup:g} s, window {window:g} s; redis-server on CPU 0, the "
             f"publisher and every subscriber on CPU 1{'' if PINNED else ' (not pinned: one core)'}; "
             f"redis-py {redis_version()} with {parser_name()}.", "",
             "| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Redis µs/publish and µs/delivery: redis-server's CPU (user + system, INFO cpu) over the window per "
              "message published and per message delivered to a subscriber; PUBLISH command µs: INFO commandstats, "
              "the command alone (without reading requests and writing to sockets). subscriber µs/msg: a "
              "subscriber's CPU per message it received (redis-py reading, RedisBroker's reader task, a counting "
              "handler): what every gateway spends per hub publication before the hub looks at it.", ""]
    for kind in dict.fromkeys(name for name, _ in results):
        if (line := fit(results, kind)) is not None:
            a, b = line
            capacity = ", ".join(f"{k}: {1e6 / (a + b * k):,.0f}/s" for k in (1, 4, 16, 64) if a + b * k > 0)
            lines.append(f"- {kind}: Redis CPU per publish ≈ {a:.2f} + {b:.2f} µs × subscribers; one Redis core, "
                         f"if that stays linear, publishes to k subscribers at most ({capacity}).")
    return "\n".join(lines) + "\n"


def redis_version() -> str:
    import redis

    return redis.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="1,2,3,4", help="subscriber counts, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"some of {','.join(KINDS)}")
    parser.add_argument("--hub-bytes", type=int, default=512, help="the size of a hub publication")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--out", type=Path, help="also write the table to this file as Markdown")
    parser.add_argument("--subscriber", metavar="URL", help=argparse.SUPPRESS)  # a subscriber process
    parser.add_argument("--every", type=int, default=128, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber:
        asyncio.run(subscribe(args.subscriber, args.every))
        return
    kinds = [kind for kind in KINDS if kind in args.kinds.split(",")]
    results = measure_all(kinds, [int(k) for k in args.subscribers.split(",")], repeat=args.repeat,
                          warmup=args.warmup, window=args.window, hub_bytes=args.hub_bytes)
    text = report(results, repeat=args.repeat, warmup=args.warmup, window=args.window)
    print("\n" + text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
