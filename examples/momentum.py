"""Momentum: follow a model's calls from /ws/ml-signals: buy on BUY, sell everything on SELL.

    python -m examples.momentum --guest --duration 120 --symbols NVTX,QBIT --model momentum

Every call it hears is kept with what the bot did about it and why, so a run can be read afterwards.
"""

import asyncio
import sys
from dataclasses import dataclass, field
from decimal import Decimal

from examples.common import FillLog, parser, sign_in
from stockquest_client import Client, ExecutionReport, OrderResult, Signal


@dataclass
class Decision:
    signal: Signal
    action: str  # BUY, SELL or NONE
    why: str
    result: OrderResult | None = None


@dataclass
class Report:
    decisions: list[Decision] = field(default_factory=list)
    fills: list[ExecutionReport] = field(default_factory=list)


async def decide(client: Client, signal: Signal, held: dict[str, int], lot_value: Decimal,
                 min_confidence: float) -> Decision:
    """One call in, one decision out: trade only on a confident BUY or SELL that changes what we hold."""
    if signal.signal == "HOLD":
        return Decision(signal, "NONE", "the model says HOLD")
    if signal.confidence < min_confidence:
        return Decision(signal, "NONE", f"confidence {signal.confidence:.2f} under {min_confidence}")
    if signal.signal == "BUY":
        if held.get(signal.symbol):
            return Decision(signal, "NONE", "already holding")
        quote = await client.market.quote(signal.symbol)
        quantity = int(lot_value / quote.ask)
        result = await client.orders.buy(signal.symbol, quantity)
        if result.accepted:
            held[signal.symbol] = quantity
        return Decision(signal, "BUY", result.error or f"bought {quantity}", result)
    if not held.get(signal.symbol):
        return Decision(signal, "NONE", "SELL, but nothing held")
    result = await client.orders.sell(signal.symbol, held[signal.symbol])
    if result.accepted:
        held[signal.symbol] = 0
    return Decision(signal, "SELL", result.error or "sold all", result)


async def run(client: Client, symbols: list[str], duration: float, model: str = "momentum",
              lot_value: Decimal = Decimal("10000"), min_confidence: float = 0.3) -> Report:
    report = Report()
    fills = FillLog(client)
    start = await client.portfolio.snapshot()
    held = {p.symbol: p.quantity for p in start.positions or ()}
    try:
        async with asyncio.timeout(duration), client.signals.updates(symbols, [model]) as signals:
            async for signal in signals:
                decision = await decide(client, signal, held, lot_value, min_confidence)
                report.decisions.append(decision)
                print(f"{signal.symbol} {signal.signal} {signal.score:+.2f}: {decision.action} ({decision.why})")
    except TimeoutError:
        pass
    await asyncio.sleep(1)  # let the last market orders fill before reading the log
    report.fills = await fills.stop()
    return report


async def main(argv: list[str]) -> Report:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--symbols", default="NVTX,QBIT,SUNM", help="comma-separated (default %(default)s)")
    options.add_argument("--model", default="momentum",
                         choices=("momentum", "meanReversion", "trend", "online", "ensemble"))
    options.add_argument("--min-confidence", type=float, default=0.3)
    args = options.parse_args(argv)
    async with await sign_in(args, "momentum") as client:
        return await run(client, args.symbols.upper().split(","), args.duration, args.model,
                         min_confidence=args.min_confidence)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
