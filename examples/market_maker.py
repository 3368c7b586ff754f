"""Market maker: rest a limit buy at the bid and a limit sell at the ask; follow the quote; earn the spread.

    python -m examples.market_maker --guest --duration 120 --symbol NVTX --size 20

It first buys some inventory (there is no short selling), then keeps one buy and one sell resting. When the
quote moves away from an order it moves the order (MODIFY_ORDER: same order, new price); when an order
fills it places a new one. On exit it cancels what still rests.
"""

import asyncio
import sys
from dataclasses import dataclass, field
from decimal import Decimal

from examples.common import FillLog, parser, sign_in
from stockquest_client import Client, ExecutionReport, Order, Quote, ServerError


@dataclass
class Report:
    placed: list[Order] = field(default_factory=list)
    moves: int = 0
    cancelled: list[Order] = field(default_factory=list)
    fills: list[ExecutionReport] = field(default_factory=list)


class MarketMaker:
    def __init__(self, client: Client, symbol: str, size: int, max_inventory: int, requote: Decimal):
        self.client, self.symbol, self.size = client, symbol, size
        self.max_inventory, self.requote = max_inventory, requote
        self.bid_id: str | None = None  # our resting buy
        self.ask_id: str | None = None  # our resting sell
        self.report = Report()

    def _open(self, order_id: str | None) -> Order | None:
        order = self.client.orders.orders.get(order_id) if order_id else None
        return order if order is not None and order.is_open else None

    async def shares_held(self) -> int:
        position = (await self.client.portfolio.snapshot()).position(self.symbol)
        return position.quantity if position else 0

    async def on_quote(self, quote: Quote) -> None:
        """Keep one buy at the bid and one sell at the ask, within the inventory bounds."""
        held = await self.shares_held()
        self.bid_id = await self._keep("BUY", self.bid_id, quote.bid, min(self.size, self.max_inventory - held))
        self.ask_id = await self._keep("SELL", self.ask_id, quote.ask, min(self.size, held))

    async def _keep(self, side: str, order_id: str | None, price: Decimal, quantity: int) -> str | None:
        order = self._open(order_id)
        if order is None:
            if quantity <= 0:
                return None
            result = await self.client.orders.submit(self.symbol, side, quantity, limit_price=price,
                                                     time_in_force="GTC")
            if not result.accepted:
                print(f"{side} rejected: {result.error}")
                return None
            self.report.placed.append(result.order)
            return result.order.order_id
        if abs(order.limit_price - price) >= self.requote:
            try:  # the order may fill meanwhile: then the server says it is no longer open
                await self.client.orders.modify(order.order_id, limit_price=price)
                self.report.moves += 1
            except ServerError as error:
                print(f"could not move {order.order_id}: {error.message}")
        return order.order_id

    async def cancel_all(self) -> None:
        for order in self.client.orders.open_orders(self.symbol):
            try:
                self.report.cancelled.append(await self.client.orders.cancel(order.order_id))
            except ServerError:
                pass  # filled in the meantime


async def run(client: Client, symbol: str, duration: float, size: int = 20,
              requote: Decimal = Decimal("0.05")) -> Report:
    maker = MarketMaker(client, symbol, size, max_inventory=4 * size, requote=requote)
    fills = FillLog(client)
    if await maker.shares_held() < size:
        first = await client.orders.buy(symbol, 2 * size)  # inventory to sell from
        await client.orders.wait_closed(first.order.order_id)
    try:
        async with asyncio.timeout(duration), client.market.quotes([symbol], interval_ms=500) as quotes:
            async for quote in quotes:
                await maker.on_quote(quote)
    except TimeoutError:
        pass
    await maker.cancel_all()
    maker.report.fills = await fills.stop()
    return maker.report


async def main(argv: list[str]) -> Report:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--symbol", default="NVTX")
    options.add_argument("--size", type=int, default=20, help="shares per order (default %(default)s)")
    args = options.parse_args(argv)
    async with await sign_in(args, "market-maker") as client:
        report = await run(client, args.symbol.upper(), args.duration, args.size)
        print(f"placed {len(report.placed)}, moved {report.moves}, filled {len(report.fills)}, "
              f"cancelled {len(report.cancelled)}")
        return report


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
