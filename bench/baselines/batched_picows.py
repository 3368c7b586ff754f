"""Baseline quote fan-out on picows: batched_tornado.py's design with the least Python between it and the socket.

The same market (batched_tornado's `Market`, imported), the same SUBSCRIBE on /ws/market-data and the same
frames: each tick serializes every quote once, then each client whose update interval has come round gets ONE
text frame, a JSON array of its subscribed symbols' latest quotes, joined from the pre-serialized strings and
shared by clients with the same symbols. Only the WebSocket layer differs: picows (Cython, a callback per frame,
no Future or Task per send) in place of Tornado. So it is the floor: what this design costs in one Python
process on this machine, below which no Python fan-out on the same event loop can be expected to go. It runs on
the standard asyncio loop, as Stock Quest does (no uvloop), with picows's default transport (aiofastnet, one of
its dependencies). A bench-only dependency: `.venv/bin/pip install -r bench/requirements.txt` (`make bench`).

    .venv/bin/python bench/baselines/batched_picows.py --port 8002
    # then {"type":"SUBSCRIBE","data":{"symbols":["NVTX","QBIT"],"updateInterval":1000}} on /ws/market-data
"""

import argparse
import asyncio
import math
import time

import ujson
from batched_tornado import MIN_INTERVAL_MS, SYMBOLS, TICK_MS, Market  # the same market and protocol subset
from picows import (
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)


class Fanout:
    """The subscribed clients, and the tick that sends each its frame when its interval has come round."""

    def __init__(self, market: Market):
        self.market = market
        self.clients: set[MarketDataListener] = set()  # the subscribed ones
        self.connections = 0

    def on_tick(self) -> None:
        self.market.tick()
        now_ms = int(time.time() * 1000)
        encoded = self.market.encoded
        frames: dict[tuple[str, ...], bytes] = {}
        for client in list(self.clients):
            if now_ms < client.due_ms:
                continue
            client.due_ms = max(client.due_ms + client.interval_ms, now_ms + client.interval_ms // 2)
            frame = frames.get(client.symbols)
            if frame is None:
                frame = frames[client.symbols] = ("[" + ",".join(encoded[s] for s in client.symbols) + "]").encode()
            client.transport.send(WSMsgType.TEXT, frame)  # after a close, picows ignores it


class MarketDataListener(WSListener):
    """One client: SUBSCRIBE adds symbols and sets the update interval; everything else is ignored."""

    def __init__(self, fanout: Fanout):
        super().__init__()
        self.fanout = fanout
        self.transport: WSTransport | None = None
        self.symbols: tuple[str, ...] = ()
        self.interval_ms = 1000
        self.due_ms = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport  # picows sets TCP_NODELAY itself
        self.fanout.connections += 1

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type == WSMsgType.TEXT and frame.fin:  # a SUBSCRIBE always fits one frame
            self.subscribe(frame.get_payload_as_bytes())

    def subscribe(self, message: bytes) -> None:
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

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.fanout.connections -= 1
        self.fanout.clients.discard(self)


def every(period_s: float, callback) -> None:
    """Call `callback` every `period_s` on the running loop, skipping missed calls: Tornado's PeriodicCallback."""
    loop = asyncio.get_running_loop()

    def run(due: float) -> None:
        callback()
        due += period_s
        now = loop.time()
        if due <= now:
            due += (math.floor((now - due) / period_s) + 1) * period_s
        loop.call_at(due, run, due)

    loop.call_at(loop.time() + period_s, run, loop.time() + period_s)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--symbols", default=SYMBOLS, help="comma-separated symbols to simulate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tick-ms", type=int, default=TICK_MS, help=f"market tick (default {TICK_MS})")
    args = parser.parse_args()
    fanout = Fanout(Market(args.symbols.split(","), args.seed))

    def route(request):
        """The market-data socket, /healthz as a plain 200 (picows answers it and closes), else 404."""
        if request.path == b"/ws/market-data":
            return MarketDataListener(fanout)
        if request.path == b"/healthz":
            body = ujson.dumps({"status": "ok", "connections": fanout.connections}).encode()
            ok = WSUpgradeResponse.create_ok_response(body, {"Content-Type": "application/json"})
            return WSUpgradeResponseWithListener(ok, None)
        return None

    # backlog as the other servers (a bench opens connections in bursts); a SUBSCRIBE is small, and picows
    # allocates its read buffer up front (16 KiB by default) and grows it when a frame needs more
    server = await ws_create_server(route, "127.0.0.1", args.port, backlog=4096, read_buffer_init_size=1024)
    every(args.tick_ms / 1000, fanout.on_tick)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
