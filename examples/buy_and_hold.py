"""Buy and hold: spend part of the cash on a few stocks, equally, once; then watch the portfolio's value.

    python -m examples.buy_and_hold --guest --duration 60 --symbols NVTX,QBIT,MCRS

Run it again with the same account and it buys only what it does not hold yet.
"""

import asyncio
import sys
from dataclasses import dataclass, field
from decimal import Decimal

from examples.common import FillLog, parser, sign_in
from stockquest_client import Client, ExecutionReport, OrderResult, Portfolio


@dataclass
class Report:
    orders: list[OrderResult] = field(default_factory=list)
    fills: list[ExecutionReport] = field(default_factory=list)
    portfolio: Portfolio | None = None


async def run(client: Client, symbols: list[str], duration: float, invest: Decimal = Decimal("0.6")) -> Report:
    report = Report()
    fills = FillLog(client)
    start = await client.portfolio.snapshot()
    budget_each = start.buying_power * invest / len(symbols)
    for symbol in symbols:
        if start.position(symbol) is not None:
            continue  # already held: holding is the strategy
        quote = await client.market.quote(symbol)
        quantity = int(budget_each / quote.ask)
        result = await client.orders.buy(symbol, quantity)  # a MARKET order: fills at the ask, over a few ticks
        report.orders.append(result)
        print(f"BUY {quantity} {symbol}: {result.order.status if result.accepted else result.error}")
    for result in report.orders:
        if result.accepted:
            await client.orders.wait_closed(result.order.order_id, timeout=max(duration, 30))
    try:  # hold: print the value the server pushes until the time is up
        async with asyncio.timeout(duration), client.portfolio.updates() as updates:
            async for portfolio in updates:
                print(f"value {portfolio.total_value} (return {portfolio.total_return})")
    except TimeoutError:
        pass
    report.fills = await fills.stop()
    report.portfolio = await client.portfolio.snapshot()
    return report


async def main(argv: list[str]) -> Report:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--symbols", default="NVTX,QBIT,MCRS", help="comma-separated (default %(default)s)")
    args = options.parse_args(argv)
    async with await sign_in(args, "buy-and-hold") as client:
        return await run(client, args.symbols.upper().split(","), args.duration)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
