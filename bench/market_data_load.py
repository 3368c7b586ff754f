"""Market-data load benchmark: how many subscribed connections one server process holds, at what CPU.

Starts the real server (`stockquest.py`) on 127.0.0.1, opens N WebSocket connections that each
SUBSCRIBE to 10 symbols at 1 update/s, then measures over a window: the server's CPU (from
/proc/PID/stat), its resident memory, the updates the clients received per second, and the
delay from a quote's `time` to its arrival. A small baseline level runs in the same invocation
so figures can be compared on a shared, noisy machine; each level repeats and medians are printed.

    .venv/bin/python bench/market_data_load.py --levels 100,1000,2000 --repeat 3
"""

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tornado.httpclient
import tornado.websocket
import ujson
from procstat import cpu_seconds, free_port, rss_mib

ROOT = Path(__file__).resolve().parent.parent








class Client:
    """One benchmark connection: counts REAL_TIME_UPDATE frames and their delays."""

    def __init__(self, stats):
        self.stats = stats

    async def run(self, url: str, symbols: list[str], ready: asyncio.Event, stop: asyncio.Event):
        conn = await tornado.websocket.websocket_connect(url, max_message_size=16 * 2**20)
        try:
            await self._receive(conn, symbols, ready, stop)
        finally:
            conn.close()

    async def _receive(self, conn, symbols, ready, stop):
        await conn.read_message()  # CONNECTION_ESTABLISHED
        await conn.write_message(ujson.dumps({"type": "SUBSCRIBE", "data": {"symbols": symbols,
                                                                            "updateInterval": 1000}}))
        ready.set()
        while not stop.is_set():
            text = await conn.read_message()
            if text is None:
                self.stats["closed"] += 1
                return
            if self.stats["measuring"] and text.startswith('{"type":"REAL_TIME_UPDATE"'):
                self.stats["updates"] += 1
                self.stats["quotes"] += text.count('"symbol":')
                if self.stats["updates"] % 10 == 0:  # sample: parsing every frame would load the client
                    now_ms = time.time() * 1000
                    message = ujson.loads(text)
                    self.stats["delays"].append(now_ms - message["data"]["quotes"][0]["time"])


async def run_level(port: int, pid: int, connections: int, symbols: list[str], warmup: float, window: float):
    stats = {"updates": 0, "quotes": 0, "delays": [], "closed": 0, "measuring": False}
    stop = asyncio.Event()
    url = f"ws://127.0.0.1:{port}/ws/market-data"
    tasks, readies = [], []
    for n in range(connections):
        ready = asyncio.Event()
        readies.append(ready)
        chosen = [symbols[(n + k) % len(symbols)] for k in range(10)]
        tasks.append(asyncio.create_task(Client(stats).run(url, chosen, ready, stop)))
        if n % 100 == 99:
            await asyncio.sleep(0.05)  # let the server accept in batches
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
    await asyncio.sleep(warmup)
    stats["measuring"] = True
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    stats["measuring"] = False
    rss = rss_mib(pid)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await server_drained(port)
    delays = sorted(stats["delays"]) or [float("nan")]
    return {
        "connections": connections,
        "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "updates_per_s": stats["updates"] / (t1 - t0),
        "expected_per_s": connections * 1.0,
        "quotes_per_s": stats["quotes"] / (t1 - t0),
        "delay_p50_ms": delays[len(delays) // 2],
        "delay_p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "rss_mib": rss,
        "closed": stats["closed"],
    }


async def server_drained(port: int, timeout: float = 60.0) -> None:
    """Wait until the server has seen every connection of a level close, so levels do not overlap."""
    client = tornado.httpclient.AsyncHTTPClient()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = ujson.loads((await client.fetch(f"http://127.0.0.1:{port}/healthz")).body)
        if health["connections"] == 0:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"server still holds {health['connections']} connections after {timeout} s")


def start_server(port: int, data_dir: str, max_connections: int) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / "stockquest.py"), "--port", str(port), "--data-dir", data_dir,
               "--seed", "1", "--log-level", "WARNING", "--max-connections", str(max_connections)]
    log = open(Path(data_dir) / "server.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    client = tornado.httpclient.HTTPClient()
    for _ in range(150):
        try:
            client.fetch(f"http://127.0.0.1:{port}/healthz")
            client.close()
            return process
        except (OSError, tornado.httpclient.HTTPClientError):
            if process.poll() is not None:
                raise SystemExit((Path(data_dir) / "server.log").read_text()) from None
            time.sleep(0.1)
    raise SystemExit("server did not start")


async def symbol_list(port: int) -> list[str]:
    conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/market-data")
    await conn.read_message()
    await conn.write_message('{"type":"REQUEST_SYMBOLS"}')
    while True:
        message = ujson.loads(await conn.read_message())
        if message["type"] == "SYMBOL_LIST":
            conn.close()
            return [s["symbol"] for s in message["data"]["symbols"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="100,1000,2000", help="connection counts; the first is the baseline")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it too
    if max(levels) + 100 > hard:
        raise SystemExit(f"open-file limit {hard} is below {max(levels) + 100}")

    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(port, data_dir, max(levels) + 100)
        try:
            symbols = asyncio.run(symbol_list(port))
            results: dict[int, list[dict]] = {level: [] for level in levels}
            for run in range(args.repeat):
                for level in levels:
                    result = asyncio.run(run_level(port, server.pid, level, symbols, args.warmup, args.window))
                    results[level].append(result)
                    print(f"run {run + 1} level {level}: " + ", ".join(
                        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()),
                        flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)

    print(f"\nmedians of {args.repeat} runs, 10 symbols per connection at 1 update/s, "
          f"{os.cpu_count()} cores, server pid {server.pid}")
    print(f"{'connections':>11} {'server CPU %':>12} {'updates/s':>10} {'expected':>9} {'delay p50 ms':>13} "
          f"{'delay p99 ms':>13} {'RSS MiB':>8} {'CPU vs base':>11}")
    base_cpu_per_conn = None
    for level in levels:
        def med(key, level=level):
            return statistics.median(r[key] for r in results[level])
        cpu = med("cpu_percent")
        per_conn = cpu / level
        base_cpu_per_conn = base_cpu_per_conn or per_conn
        print(f"{level:>11} {cpu:>12.1f} {med('updates_per_s'):>10.0f} {level:>9} {med('delay_p50_ms'):>13.1f} "
              f"{med('delay_p99_ms'):>13.1f} {med('rss_mib'):>8.0f} {per_conn / base_cpu_per_conn:>10.2f}x")
    print("(CPU vs base: server CPU per connection relative to the baseline level)")


if __name__ == "__main__":
    main()
