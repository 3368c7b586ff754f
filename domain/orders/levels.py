"""Protective levels: a long position's stop loss and take profit, set by its owner, triggered by the tick scan."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from domain.errors import BadRequest
from domain.ledger import copy_position
from domain.market import Quote
from domain.trading import PortfolioLedger, Position

__all__ = ["KEEP", "LevelTrigger", "set_levels", "scan_levels"]


class _Keep:
    """The default of set_position_levels' arguments: leave that level as it is (None clears it)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


@dataclass(frozen=True, slots=True)
class LevelTrigger:
    """A stop-loss or take-profit level the price reached, and the market sell it placed (None if nothing to sell)."""

    portfolio_id: str
    user_id: str
    symbol: str
    kind: str  # "STOP_LOSS" | "TAKE_PROFIT"
    level_cents: int
    price_cents: int
    order_id: str | None


def set_levels(
    ledger: PortfolioLedger,
    symbol: str,
    stop_loss_cents: "int | None | _Keep",
    take_profit_cents: "int | None | _Keep",
    price_problem: Callable[[str, object], str | None],
) -> Position:
    """Set (an int), clear (None) or keep (KEEP) a long position's stop loss and take profit; returns a copy of it.

    BadRequest without a long position in `symbol`, for a level that is not a valid price (`price_problem(name,
    cents)` says what is wrong with it), or for a stop loss at or above the take profit.
    """
    held = ledger.positions.get(symbol) if isinstance(symbol, str) else None
    if held is None or held.quantity <= 0:
        raise BadRequest(f"no position in {symbol!r}")
    stop = held.stop_loss_cents if stop_loss_cents is KEEP else stop_loss_cents
    take = held.take_profit_cents if take_profit_cents is KEEP else take_profit_cents
    for name, value in (("stop loss", stop), ("take profit", take)):
        problem = None if value is None else price_problem(name, value)
        if problem:
            raise BadRequest(problem)
    if stop is not None and take is not None and stop >= take:
        raise BadRequest("the stop loss must be below the take profit")
    held.stop_loss_cents, held.take_profit_cents = stop, take
    return copy_position(held)


def scan_levels(
    ledgers: Iterable[PortfolioLedger],
    quotes: Mapping[str, Quote],
    sell: Callable[[PortfolioLedger, Position, Quote], str | None],
) -> list[LevelTrigger]:
    """The per-tick scan: every long position whose price is at or below its stop loss, or at or above its take
    profit, has both levels cleared and is handed to `sell` (which places the market sell and returns its order
    id, or None with nothing to sell); returns the levels reached, in the order they were handled."""
    triggers = []
    for ledger in ledgers:
        for held in list(ledger.positions.values()):
            if held.quantity <= 0 or (held.stop_loss_cents is None and held.take_profit_cents is None):
                continue
            quote = quotes.get(held.symbol)
            if quote is None:
                continue
            if held.stop_loss_cents is not None and quote.price <= held.stop_loss_cents:
                kind, level = "STOP_LOSS", held.stop_loss_cents
            elif held.take_profit_cents is not None and quote.price >= held.take_profit_cents:
                kind, level = "TAKE_PROFIT", held.take_profit_cents
            else:
                continue
            held.stop_loss_cents = held.take_profit_cents = None
            order_id = sell(ledger, held, quote)
            triggers.append(
                LevelTrigger(ledger.portfolio_id, ledger.owner_id, held.symbol, kind, level, quote.price, order_id)
            )
    return triggers
