"""Baseline quote fan-out: the plainest well-written Tornado design, to measure Stock Quest's fan-out against.

Same machine, same framework, same protocol subset: a random walk over 38 symbols ticks every 250 ms (`--tick-ms`); each
tick serializes every quote once, then each client whose update interval has come round gets ONE text frame,
a JSON array of its subscribed symbols' latest quotes, made by joining the pre-serialized strings (clients
with the same symbols share the joined frame). Clients are spread over the ticks by when they subscribed.
It has nothing else Stock Quest has (auth, rate limits, slow-consumer handling, history, persistence), so
the gap between the two is the cost of those plus any inefficiency on the hot path.

    .venv/bin/python bench/baselines/batched_tornado.py --port 8001
    # then {"type":"SUBSCRIBE","data":{"symbols":["NVTX","QBIT"],"updateInterval":1000}} on /ws/market-data
"""

import argparse
import asyncio
import random
import time

import tornado.web
import tornado.websocket
import ujson
from tornado.ioloop import PeriodicCallback

# Stock Quest's default universe, so the same SUBSCRIBE works on both servers.
SYMBOLS = ("NVTX,QBIT,CLDW,MCRS,DTVL,PIXL,MEDX,GNMC,CRVL,ORTG,PHLN,BKNR,CAPX,INSW,LDGR,FDLT,PTRL,SUNM,DRLX,"
           "GSCD,BRWN,SHPR,AUTV,HOMY,FTRL,ARLT,RLST,STNB,MCHX,FRWY,PWRG,HYDL,VLTR,GRNY,STRM,TLXA,SOCL,GMRA")
TICK_MS = 250
MIN_INTERVAL_MS = 100


class Market:
    """A random walk per symbol; after each tick, `encoded` holds every quote's JSON, serialized once."""

    def __init__(self, symbols: list[str], seed: int):
        self.random = random.Random(seed)
        self.prices = {symbol: self.random.uniform(20, 300) for symbol in symbols}
        self.volumes = dict.fromkeys(symbols, 0)
        self.encoded: dict[str, str] = {}
        self.tick()

    def tick(self) -> None:
        now_ms = int(time.time() * 1000)
        for symbol, price in self.prices.items():
            price = max(1.0, price * (1 + self.random.gauss(0, 0.001)))
            self.prices[symbol] = price
            self.volumes[symbol] += self.random.randint(0, 500)
            spread = max(0.01, round(price * 0.0005, 2))
            self.encoded[symbol] = ujson.dumps({
                "symbol": symbol, "price": round(price, 2), "bid": round(price - spread, 2),
                "ask": round(price + spread, 2), "volume": self.volumes[symbol], "time": now_ms,
            })


class Fanout:
    """The subscribed clients, and the tick loop that sends each its frame when its interval has come round."""

    def __init__(self, market: Market):
        self.market = market
        self.clients: set[MarketDataSocket] = set()  # the subscribed ones
        self.connections = 0

    def on_tick(self) -> None:
        self.market.tick()
        now_ms = int(time.time() * 1000)
        encoded = self.market.encoded
        frames: dict[tuple[str, ...], str] = {}
        for client in list(self.clients):
            if now_ms < client.due_ms:
                continue
            client.due_ms = max(client.due_ms + client.interval_ms, now_ms + client.interval_ms // 2)
            frame = frames.get(client.symbols)
            if frame is None:
                frame = frames[client.symbols] = "[" + ",".join(encoded[s] for s in client.symbols) + "]"
            try:
                client.write_message(frame)
            except tornado.websocket.WebSocketClosedError:
                self.clients.discard(client)


class MarketDataSocket(tornado.websocket.WebSocketHandler):
    """One client: SUBSCRIBE adds symbols and sets the update interval; everything else is ignored."""

    def initialize(self, fanout: Fanout):
        self.fanout = fanout
        self.symbols: tuple[str, ...] = ()
        self.interval_ms = 1000
        self.due_ms = 0

    def open(self):
        self.set_nodelay(True)
        self.fanout.connections += 1

    def on_message(self, message):
        try:
            request = ujson.loads(message)
            data = request.get("data") or {}
            if request.get("type") != "SUBSCRIBE":
                return
            known = [s for s in data.get("symbols", ()) if s in self.fanout.market.encoded]
            interval = max(MIN_INTERVAL_MS, int(data.get("updateInterval") or 1000))
        except (ValueError, TypeError, AttributeError):
            return  # not a well-formed SUBSCRIBE
        self.symbols = tuple(sorted(set(self.symbols) | set(known)))
        self.interval_ms = interval
        self.due_ms = int(time.time() * 1000) + interval
        if self.symbols:
            self.fanout.clients.add(self)

    def on_close(self):
        self.fanout.connections -= 1
        self.fanout.clients.discard(self)


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, fanout: Fanout):
        self.fanout = fanout

    def get(self):
        self.write({"status": "ok", "connections": self.fanout.connections})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--symbols", default=SYMBOLS, help="comma-separated symbols to simulate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tick-ms", type=int, default=TICK_MS, help=f"market tick (default {TICK_MS})")
    args = parser.parse_args()
    fanout = Fanout(Market(args.symbols.split(","), args.seed))
    app = tornado.web.Application([
        (r"/ws/market-data", MarketDataSocket, dict(fanout=fanout)),
        (r"/healthz", HealthHandler, dict(fanout=fanout)),
    ])
    app.listen(args.port, "127.0.0.1", backlog=4096)  # as Stock Quest: a bench opens connections in bursts
    PeriodicCallback(fanout.on_tick, args.tick_ms).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
