"""Order-throughput benchmark: SUBMIT_ORDER to ORDER_SUBMITTED on one server process, with durability on.

For every measurement it starts the real server (`stockquest.py`) on a free 127.0.0.1 port with a fresh
temporary data directory, waits for its start-up work to finish (the signal warm-up), registers users over
`POST /api/auth/register`, and opens N /ws/orders connections that each keep up to `--window` SUBMIT_ORDER
requests outstanding: far LIMIT buys (half the bid, GTC) that rest, so no fill interferes. The server
commits every order to SQLite (WAL) before it sends ORDER_SUBMITTED, so acknowledgements per second is the
durable order rate. After a warm-up it measures over a window: acks/s, latency from send to ack (p50, p99),
the server's CPU (from /proc/PID/stat, also per ack) and this client's CPU (the client shares the machine:
near 100 % it is the bottleneck).
The first level is the baseline, run in the same invocation; each level repeats and medians are printed.
Client sockets set TCP_NODELAY (as browsers do; tornado's client does not by default, and Nagle's
algorithm then holds back pipelined frames: up to half the throughput in an A/B run here). Also printed:
the longest time without any acknowledgement (a whole-server stall, as opposed to one connection waiting)
and the machine's other CPU use, which on a shared machine explains a server saturating below 100 % CPU.

Rate limit: the server allows 20 messages/s per connection (bursts of 40) by default. So by default every
connection is paced at `--rate` (18/s) and load comes from many connections, one user per connection
(`--conns-per-user`; a user may hold 10 /ws/orders connections). With `--lift-rate-limit` the server is
started with `--rate-limit 1000000000` and connections are not paced: one connection is then pipelined as
fast as the server answers.

Resting orders accumulate during a measurement (the engine scans every open order on each tick), which is
one reason each measurement gets a fresh server.

    .venv/bin/python bench/orders_throughput.py --levels 1,25,100,200 --repeat 3
    .venv/bin/python bench/orders_throughput.py --lift-rate-limit --levels 1,4,16 --window 16 --repeat 3
"""

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import tornado.httpclient
import tornado.websocket
import ujson
from procstat import ServerProcess, cpu_seconds, machine_busy_seconds, settle

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("NVTX", "QBIT", "MCRS", "BKNR", "SUNM", "TLXA", "DTVL", "PHLN")
SERVER_LIMIT = "20 messages/s per connection, bursts of 40"
RATE = 18.0  # requests/s per connection by default: under the server's limit
WINDOW = 8  # outstanding requests per connection by default


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def start_server(lifted: bool, prefix: tuple[str, ...] = ()) -> ServerProcess:
    """Stock Quest with room for the bench's users and orders; `prefix` e.g. pins it (taskset)."""
    def command(port: int, data_dir: str) -> list[str]:
        flags = ["--port", str(port), "--data-dir", data_dir, "--seed", "1", "--log-level", "WARNING",
                 "--starting-cash", "1000000000",  # far limits reserve cash: never run out
                 "--sign-ups-per-minute", "1000000"]  # every bench user registers from 127.0.0.1
        if lifted:
            flags += ["--rate-limit", "1000000000"]
        return [*prefix, sys.executable, str(ROOT / "stockquest.py"), *flags]

    return ServerProcess(command)


class Connection:
    """One /ws/orders connection: keeps `window` far LIMIT buys outstanding, paced at `rate`/s (0: unpaced)."""

    def __init__(self, conn, portfolio_id: str, symbol: str, price: float, window: int, rate: float, stats: dict):
        self.conn, self.stats = conn, stats
        self.window, self.interval = window, (1.0 / rate if rate else 0.0)
        self.prefix = f'{{"type":"SUBMIT_ORDER","data":{{"portfolioId":"{portfolio_id}","symbol":"{symbol}",' \
                      f'"side":"BUY","orderType":"LIMIT","quantity":1,"limitPrice":{price},"timeInForce":"GTC"}},' \
                      f'"requestId":"'
        self.sent: dict[str, float] = {}
        self.count = 0
        self.slots = asyncio.Semaphore(window)
        self.closing = False

    async def run(self, stop: asyncio.Event) -> None:
        reader = asyncio.create_task(self._read())
        try:
            next_at = time.perf_counter()
            while not stop.is_set() and not reader.done():
                await self.slots.acquire()
                if self.interval:
                    now = time.perf_counter()
                    if next_at > now:
                        await asyncio.sleep(next_at - now)
                    next_at = max(next_at + self.interval, time.perf_counter() - self.interval)
                if stop.is_set():
                    break
                self.count += 1
                request_id = str(self.count)
                self.sent[request_id] = time.perf_counter()
                await self.conn.write_message(self.prefix + request_id + '"}')
            await self._drain()
        finally:
            self.closing = True
            self.conn.close()
            await asyncio.gather(reader, return_exceptions=True)

    async def _drain(self, timeout: float = 30.0) -> None:
        deadline = time.perf_counter() + timeout
        while self.sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    async def _read(self) -> None:
        stats = self.stats
        while True:
            text = await self.conn.read_message()
            if text is None:
                stats["closed"] += not self.closing  # closed by the server
                self.sent.clear()
                for _ in range(self.window):  # unblock the sender
                    self.slots.release()
                return
            start = text.find('"requestId":"')
            if start < 0:
                continue  # CONNECTION_ESTABLISHED, ACTIVE_ORDERS, HEARTBEAT
            start += 13
            sent = self.sent.pop(text[start:text.index('"', start)], None)
            if sent is None:
                continue
            now = time.perf_counter()
            self.slots.release()
            if text.startswith('{"type":"ORDER_SUBMITTED"'):
                stats["acks"].append((now, now - sent))
            elif '"RATE_LIMITED"' in text:
                stats["rate_limited"] += 1
            else:
                stats["other"] += 1
                stats.setdefault("other_example", text[:300])


async def register(port: int, count: int, batch: int = 8) -> list[dict]:
    """`count` new users (register, then read their portfolio id from PORTFOLIO_LIST)."""
    client = tornado.httpclient.AsyncHTTPClient()

    async def one(n: int) -> dict:
        response = await client.fetch(f"http://127.0.0.1:{port}/api/auth/register", method="POST",
                                      body=ujson.dumps({"username": f"bench{n}", "password": "bench password"}))
        token = ujson.loads(response.body)["token"]
        conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/portfolio?token={token}")
        try:
            while True:
                message = ujson.loads(await conn.read_message())
                if message["type"] == "PORTFOLIO_LIST":
                    return {"token": token, "portfolio_id": message["data"]["portfolios"][0]["portfolioId"]}
        finally:
            conn.close()

    users = []
    for first in range(0, count, batch):  # the server hashes passwords on a small thread pool
        users += await asyncio.gather(*(one(n) for n in range(first, min(count, first + batch))))
    return users


async def far_prices(port: int) -> dict[str, float]:
    conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/market-data")
    try:
        await conn.write_message(ujson.dumps({"type": "REQUEST_QUOTE", "data": {"symbols": list(SYMBOLS)}}))
        while True:
            message = ujson.loads(await conn.read_message())
            if message["type"] == "QUOTE_RESPONSE":
                return {q["symbol"]: max(1, round(q["bid"] * 100) // 2) / 100 for q in message["data"]["quotes"]}
    finally:
        conn.close()


async def measure(server: ServerProcess, connections: int, *, lifted: bool = False, rate: float = RATE,
                  window: int = WINDOW, conns_per_user: int = 1, warmup: float = 2.0, duration: float = 8.0,
                  on_flowing: Callable[[], None] | None = None) -> dict:
    """Orders from `connections` connections over one window (paced at `rate`/s each unless `lifted`: the server
    must have been started alike); `on_flowing` is called once they are sending, before the warm-up."""
    port = server.port
    users = await register(port, -(-connections // conns_per_user))
    prices = await far_prices(port)
    stats = {"acks": [], "rate_limited": 0, "other": 0, "closed": 0}
    rate = 0.0 if lifted else rate
    clients = []
    for n in range(connections):
        user = users[n // conns_per_user]
        conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/orders?token={user['token']}")
        conn.protocol.set_nodelay(True)  # as browsers do; Nagle on the client would hold back pipelined frames
        symbol = SYMBOLS[n % len(SYMBOLS)]
        clients.append(Connection(conn, user["portfolio_id"], symbol, prices[symbol], window, rate, stats))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client.run(stop)) for client in clients]
    if on_flowing is not None:
        on_flowing()
    await asyncio.sleep(warmup)
    cpu0, own0, all0, t0 = (cpu_seconds(server.pid), time.process_time(), machine_busy_seconds(),
                            time.perf_counter())
    await asyncio.sleep(duration)
    cpu1, own1, all1, t1 = (cpu_seconds(server.pid), time.process_time(), machine_busy_seconds(),
                            time.perf_counter())
    stop.set()
    await asyncio.gather(*tasks)
    measured = sorted((at, latency) for at, latency in stats["acks"] if t0 <= at <= t1)
    latencies = [latency * 1000 for _, latency in measured]
    # the longest time without any acknowledgement: a stall of the whole server, not of one connection
    times = [t0] + [at for at, _ in measured] + [t1]
    return {
        "connections": connections,
        "offered_per_s": connections * rate if rate else float("nan"),
        "acks_per_s": len(latencies) / (t1 - t0),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies, default=float("nan")),
        "longest_gap_ms": 1000 * max(b - a for a, b in zip(times, times[1:], strict=False)),
        "server_cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
        "server_us_per_ack": 1e6 * (cpu1 - cpu0) / len(latencies) if latencies else float("nan"),
        "client_cpu_percent": 100 * (own1 - own0) / (t1 - t0),
        # everything else on the machine (other processes, the kernel's softirqs): a shared machine's noise
        "others_cpu_percent": 100 * ((all1 - all0) - (cpu1 - cpu0) - (own1 - own0)) / (t1 - t0),
        "rate_limited": stats["rate_limited"],
        "other_replies": stats["other"],
        "closed": stats["closed"],
        **({"other_example": stats["other_example"]} if "other_example" in stats else {}),
    }


def run(connections: int, *, lifted: bool = False, prefix: tuple[str, ...] = (), **options) -> dict:
    """One measurement (`measure`'s options) on a fresh server, once its start-up work is done."""
    with start_server(lifted, prefix) as server:
        settle(server.pid)
        return asyncio.run(measure(server, connections, lifted=lifted, **options))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,25,100,200", help="connection counts; the first is the baseline")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=WINDOW, help="outstanding requests per connection")
    parser.add_argument("--rate", type=float, default=RATE,
                        help=f"requests/s per connection (server limit: {SERVER_LIMIT}); ignored when lifted")
    parser.add_argument("--lift-rate-limit", action="store_true",
                        help="start the server with its per-connection rate limit raised (no server flag exists)")
    parser.add_argument("--conns-per-user", type=int, default=1, help="at most 10 (the per-user limit)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0, help="measuring window, seconds")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    if not 1 <= args.conns_per_user <= 10:
        raise SystemExit("--conns-per-user must be 1 to 10")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it too
    if 2 * max(levels) + 100 > hard:
        raise SystemExit(f"open-file limit {hard} is too low for {max(levels)} connections")

    results: dict[int, list[dict]] = {level: [] for level in levels}
    for repeat in range(args.repeat):
        for level in levels:
            result = run(level, lifted=args.lift_rate_limit, rate=args.rate, window=args.window,
                         conns_per_user=args.conns_per_user, warmup=args.warmup, duration=args.duration)
            results[level].append(result)
            print(f"run {repeat + 1} level {level}: " + ", ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()), flush=True)

    pacing = "unpaced, server rate limit lifted" if args.lift_rate_limit else \
        f"paced at {args.rate:g}/s per connection (server limit {SERVER_LIMIT})"
    print(f"\nmedians of {args.repeat} runs; far LIMIT buys that rest, every ack after its SQLite (WAL) commit; "
          f"window {args.window}; {pacing}; {args.conns_per_user} connection(s) per user; {os.cpu_count()} cores")
    columns = [("connections", 11), ("offered/s", 9), ("acks/s", 8), ("p50 ms", 7), ("p99 ms", 8), ("gap ms", 7),
               ("server CPU %", 12), ("client CPU %", 12), ("others CPU %", 12), ("rate-limited", 12),
               ("acks/CPU-s", 10), ("vs base", 8)]
    print(" ".join(f"{name:>{width}}" for name, width in columns))
    base = None
    for level in levels:
        def med(key, level=level):
            return statistics.median(r[key] for r in results[level])
        acks, cpu = med("acks_per_s"), med("server_cpu_percent")
        per_cpu = acks / (cpu / 100) if cpu else float("nan")
        base = base or per_cpu
        cells = [str(level), "-" if args.lift_rate_limit else f"{level * args.rate:.0f}", f"{acks:.0f}",
                 f"{med('p50_ms'):.1f}", f"{med('p99_ms'):.1f}", f"{med('longest_gap_ms'):.0f}", f"{cpu:.1f}",
                 f"{med('client_cpu_percent'):.1f}", f"{med('others_cpu_percent'):.1f}",
                 f"{med('rate_limited'):.0f}", f"{per_cpu:.0f}", f"{per_cpu / base:.2f}x"]
        print(" ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, columns, strict=True)))
    print("(gap: the longest time in the window without any acknowledgement, i.e. a whole-server stall;\n"
          " acks/CPU-s: acknowledgements per second of server CPU; vs base: that, relative to the baseline level;\n"
          f" others CPU %: the rest of the machine, of {os.cpu_count() * 100} %: when it is high, the figures are "
          "squeezed by other load)")


if __name__ == "__main__":
    main()
