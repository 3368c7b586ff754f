"""Soak: connection churn and an order flow against one server for N minutes; RSS, fds, errors and the ledger.

Starts the real server (`stockquest.py`) on 127.0.0.1 with a fresh data directory. For `--minutes` it keeps
`--traders` users each submitting paced orders (MARKET and LIMIT buys and sells, cancels) on one /ws/orders
connection, and churns short sessions: every second `--churn` connections open on a random endpoint, native
or over SockJS's websocket transport, do one thing (subscribe to quotes, read a portfolio, ask for a signal)
and close. Every `--sample` seconds it prints the server's RSS and open file descriptors, the sessions and
orders so far, and any ERROR INTERNAL or unexpected close. At the end the server is stopped with SIGTERM and
every portfolio is reconciled against its fills.

    .venv/bin/python bench/soak.py --minutes 20
"""

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tornado.httpclient
import tornado.websocket
import ujson
from procstat import free_port, rss_mib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SYMBOLS = ["NVTX", "CRVL", "QBIT", "MEDX", "BKNR", "PHLN"]


class Soak:
    def __init__(self, port: int, rng: random.Random):
        self.port, self.rng = port, rng
        self.counts = {"sessions": 0, "acks": 0, "internal": 0, "unexpected": 0}
        self.examples: list[str] = []

    def url(self, path: str, token: str | None, sockjs: bool) -> str:
        if sockjs:
            path += f"/000/{self.rng.randrange(10**9)}/websocket"
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?token={token}" if token else "")

    def note(self, kind: str, what: str) -> None:
        self.counts[kind] += 1
        if len(self.examples) < 10:
            self.examples.append(what[:300])

    async def register(self, name: str) -> dict:
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(f"http://127.0.0.1:{self.port}/api/auth/register", method="POST",
                                      body=ujson.dumps({"username": name, "password": "soak password"}))
        return ujson.loads(response.body)

    async def session(self, token: str) -> None:
        """One short visit: open, do one thing, read the answer, close."""
        sockjs = self.rng.random() < 0.3
        path, message = self.rng.choice([
            ("/ws/market-data", {"type": "SUBSCRIBE", "data": {"symbols": self.rng.sample(SYMBOLS, 3)}}),
            ("/ws/portfolio", {"type": "HEARTBEAT"}),
            ("/ws/ml-signals", {"type": "REQUEST_SIGNAL", "data": {"symbol": self.rng.choice(SYMBOLS)}}),
            ("/ws/risk-monitoring", {"type": "HEARTBEAT"}),
        ])
        conn = await tornado.websocket.websocket_connect(self.url(path, token, sockjs))
        try:
            text = ujson.dumps({**message, "requestId": "soak"})
            await conn.write_message(ujson.dumps([text]) if sockjs else text)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                frame = await asyncio.wait_for(conn.read_message(), 10)
                if frame is None:
                    self.note("unexpected", f"{path} closed {conn.close_code}")
                    return
                texts = ujson.loads(frame[1:]) if sockjs and frame.startswith("a") else [frame]
                for message in (ujson.loads(text) for text in texts if text.startswith("{")):
                    if message["type"] == "ERROR" and message["data"]["code"] == "INTERNAL":
                        self.note("internal", ujson.dumps(message))
                    if message.get("requestId") == "soak":
                        self.counts["sessions"] += 1
                        return
        finally:
            conn.close()

    async def churn(self, tokens: list[str], per_second: int, until: float) -> None:
        while time.monotonic() < until:
            started = time.monotonic()
            results = await asyncio.gather(*(self.session(self.rng.choice(tokens)) for _ in range(per_second)),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    self.note("unexpected", repr(result))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    async def trade(self, user: dict, until: float) -> None:
        conn = await tornado.websocket.websocket_connect(self.url("/ws/orders", user["token"], False))
        portfolio_id, resting, n = None, [], 0
        listing = await tornado.websocket.websocket_connect(self.url("/ws/portfolio", user["token"], False))
        while portfolio_id is None:
            message = ujson.loads(await listing.read_message())
            if message["type"] == "PORTFOLIO_LIST":
                portfolio_id = message["data"]["portfolios"][0]["portfolioId"]
        listing.close()
        reader = asyncio.create_task(self.read_orders(conn, resting))
        try:
            while time.monotonic() < until:
                n += 1
                if resting and self.rng.random() < 0.2:
                    request = {"type": "CANCEL_ORDER", "data": {"orderId": resting.pop(0)}}
                else:
                    side = self.rng.choice(["BUY", "BUY", "SELL"])
                    order = {"portfolioId": portfolio_id, "symbol": self.rng.choice(SYMBOLS), "side": side,
                             "quantity": self.rng.randint(1, 5), "orderType": "MARKET"}
                    if self.rng.random() < 0.4:
                        order.update(orderType="LIMIT", limitPrice=1.0 if side == "BUY" else 100000.0,
                                     timeInForce="GTC")
                    request = {"type": "SUBMIT_ORDER", "data": order}
                await conn.write_message(ujson.dumps({**request, "requestId": f"o{n}"}))
                await asyncio.sleep(0.2)
        finally:
            conn.close()
            reader.cancel()

    async def read_orders(self, conn, resting: list[str]) -> None:
        while (frame := await conn.read_message()) is not None:
            message = ujson.loads(frame)
            if message.get("requestId", "").startswith("o"):
                self.counts["acks"] += 1
                if message["type"] == "ORDER_SUBMITTED" and message["data"]["order"]["orderType"] == "LIMIT":
                    resting.append(message["data"]["order"]["orderId"])
            if message["type"] == "ERROR" and message["data"]["code"] == "INTERNAL":
                self.note("internal", frame)


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def run(args) -> int:
    port, data_dir = free_port(), tempfile.mkdtemp(prefix="sq-soak-")
    log_path = Path(data_dir) / "server.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen([sys.executable, str(ROOT / "stockquest.py"), "--port", str(port), "--data-dir",
                                   data_dir, "--seed", "1", "--log-level", "WARNING", "--sign-ups-per-minute",
                                   "100000", "--starting-cash", "10000000"], stdout=log_file,
                                  stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                await tornado.httpclient.AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/healthz")
                break
            except Exception:
                await asyncio.sleep(0.1)
        soak = Soak(port, random.Random(args.seed))
        users = [await soak.register(f"soak{n}") for n in range(args.traders)]
        until = time.monotonic() + args.minutes * 60
        work = [asyncio.create_task(soak.churn([u["token"] for u in users], args.churn, until)),
                *(asyncio.create_task(soak.trade(user, until)) for user in users)]
        started = time.monotonic()
        print(f"{'minute':>6} {'RSS MiB':>8} {'fds':>5} {'sessions':>9} {'order acks':>11} {'INTERNAL':>9} "
              f"{'unexpected':>11}", flush=True)
        while not all(task.done() for task in work):
            await asyncio.sleep(args.sample)
            c = soak.counts
            print(f"{(time.monotonic() - started) / 60:6.1f} {rss_mib(server.pid):8.1f} {fds(server.pid):5d} "
                  f"{c['sessions']:9d} {c['acks']:11d} {c['internal']:9d} {c['unexpected']:11d}", flush=True)
        for task in work:
            if task.exception():
                print("task failed:", repr(task.exception()))
    finally:
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=30)
    from domain.clock import SystemClock
    from services.storage import Storage

    with Storage.in_dir(data_dir, SystemClock()) as storage:
        portfolios = [pid for user in users for pid in storage.portfolio_ids_of(user["user"]["userId"])]
        reconciled = [storage.reconcile(pid) for pid in portfolios]
        resting = len(storage.load_trading(0)[1])
    bad = [r for r in reconciled if not r["ok"]]
    log_errors = [line for line in log_path.read_text().splitlines() if " ERROR " in line or "Traceback" in line]
    print(f"server exit {exit_code}; {len(portfolios)} portfolios, {sum(r['fills'] for r in reconciled)} fills, "
          f"{resting} orders left open (far limits rest: the engine holds them), {len(bad)} portfolios that do "
          f"not reconcile; {len(log_errors)} ERROR lines in the server log")
    for example in soak.examples + log_errors[:5]:
        print("  ", example)
    return 1 if bad or log_errors or soak.counts["internal"] or exit_code != 0 else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--traders", type=int, default=20, help="users placing orders, 5 per second each")
    parser.add_argument("--churn", type=int, default=20, help="short sessions opened per second")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between lines of figures")
    parser.add_argument("--seed", type=int, default=1)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
