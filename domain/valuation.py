"""Portfolio valuation: positions and portfolios in cents at the current quotes, sector weights, diversification."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from domain.market import Quote
from domain.trading import PortfolioLedger, Position
from domain.users import User

__all__ = [
    "FULL_POSITION_COUNT",
    "FULL_SECTOR_COUNT",
    "UNKNOWN_SECTOR",
    "PositionView",
    "PortfolioView",
    "PortfolioSummary",
    "Standing",
    "position_view",
    "portfolio_view",
    "portfolio_summary",
    "diversification_score",
    "sector_allocation",
    "rank_standings",
    "position_values_cents",
    "sector_of",
    "value_cents",
]

FULL_POSITION_COUNT = 10  # this many equal positions count as fully spread
FULL_SECTOR_COUNT = 8  # the default universe's sectors
UNKNOWN_SECTOR = "Unknown"
_POSITION_SHARE = Fraction(7, 10)
_SECTOR_SHARE = Fraction(3, 10)


@dataclass(frozen=True, slots=True)
class PositionView:
    """One position valued at its quote: money in cents (average cost exact), percentages already rounded."""

    symbol: str
    quantity: int
    average_cost_cents: Decimal | None      # cost basis / quantity, None when flat
    cost_basis_cents: int
    market_price_cents: int | Decimal | None  # the quote's price, or the average cost when there is no quote
    market_value_cents: int
    unrealized_pnl_cents: int
    unrealized_pnl_percent: float           # percent of the cost basis, 2 dp
    realized_pnl_cents: int
    weight: float                           # share of the portfolio's total value, 4 dp
    day_change_cents: int
    stop_loss_cents: int | None
    take_profit_cents: int | None
    sector: str


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """One portfolio valued at the current quotes; `positions` is None when they were not asked for."""

    portfolio_id: str
    name: str
    owner_id: str
    cash_cents: int
    reserved_cash_cents: int
    buying_power_cents: int
    positions_value_cents: int
    total_value_cents: int
    total_cost_cents: int
    unrealized_pnl_cents: int
    realized_pnl_cents: int
    total_return_cents: int
    total_return_percent: float             # percent of the starting cash, 2 dp
    day_change_cents: int
    diversification_score: float            # 0..100, 2 dp
    positions: tuple[PositionView, ...] | None = None


@dataclass(frozen=True, slots=True)
class PortfolioSummary:
    """A portfolio in a list: its values (no positions) and how many positions are open."""

    portfolio: PortfolioView
    position_count: int


def _fixed(value: Fraction | int, places: int) -> float:
    """An exact number rounded half-even to `places` decimals, as a float (the only rounding valuation does)."""
    return float(round(Fraction(value), places))


def _ratio(numerator: int | float, denominator: int | float, places: int) -> float:
    """numerator / denominator rounded to `places`; 0.0 when the denominator is not positive."""
    return _fixed(Fraction(numerator) / Fraction(denominator), places) if denominator > 0 else 0.0


def _market_value_cents(position: Position, quote: Quote | None) -> int:
    """Quantity × price; a position with no quote (a symbol gone from the market) is carried at cost."""
    return position.quantity * quote.price if quote is not None else position.cost_basis_cents


def _day_change_cents(position: Position, quote: Quote | None) -> int:
    return position.quantity * (quote.price - quote.previous_close) if quote is not None else 0


def sector_of(symbol: str, quotes: Mapping[str, Quote], sectors: Mapping[str, str]) -> str:
    """The symbol's sector from `sectors`, else from its quote, else UNKNOWN_SECTOR."""
    if symbol in sectors:
        return sectors[symbol]
    quote = quotes.get(symbol)
    return quote.sector if quote is not None else UNKNOWN_SECTOR


def position_values_cents(ledger: PortfolioLedger, quotes: Mapping[str, Quote]) -> dict[str, int]:
    """Market value in cents of every open position (quantity ≠ 0), by symbol in symbol order."""
    return {
        symbol: _market_value_cents(position, quotes.get(symbol))
        for symbol, position in sorted(ledger.positions.items())
        if position.quantity
    }


def value_cents(ledger: PortfolioLedger, quotes: Mapping[str, Quote]) -> int:
    """Total portfolio value in cents: cash plus the market value of every position (cheap, for value history)."""
    return ledger.cash_cents + sum(
        _market_value_cents(position, quotes.get(symbol))
        for symbol, position in ledger.positions.items()
        if position.quantity
    )


def position_view(position: Position, quote: Quote | None, total_value_cents: int, sector: str) -> PositionView:
    """One position valued at its quote, in exact cents; only the percentages are rounded here.

    Average cost is cost basis / quantity (commissions excluded), None when flat; the P&L percent is against
    the cost basis, in percent to 2 dp; weight is market value / portfolio total value (cash included in the
    total, so cash takes the rest) to 4 dp; day change is quantity × (price − previous close). With no quote
    the position is carried at cost: its price is the average cost and its day change 0.
    """
    market_value = _market_value_cents(position, quote)
    unrealized = market_value - position.cost_basis_cents
    return PositionView(
        symbol=position.symbol,
        quantity=position.quantity,
        average_cost_cents=position.average_cost,
        cost_basis_cents=position.cost_basis_cents,
        market_price_cents=quote.price if quote is not None else position.average_cost,
        market_value_cents=market_value,
        unrealized_pnl_cents=unrealized,
        unrealized_pnl_percent=_ratio(unrealized * 100, abs(position.cost_basis_cents), 2),
        realized_pnl_cents=position.realized_pnl_cents,
        weight=_ratio(market_value, total_value_cents, 4),
        day_change_cents=_day_change_cents(position, quote),
        stop_loss_cents=position.stop_loss_cents,
        take_profit_cents=position.take_profit_cents,
        sector=sector,
    )


def portfolio_view(
    ledger: PortfolioLedger,
    quotes: Mapping[str, Quote],
    sectors: Mapping[str, str],
    *,
    include_positions: bool = True,
) -> PortfolioView:
    """One portfolio valued at the current quotes; without `include_positions` its `positions` are None.

    total value = cash + positions value; total cost = Σ cost basis of open positions; unrealized P&L =
    positions value − total cost; realized P&L = Σ realized over every position, closed ones included
    (commissions excluded, as in the ledger); total return = total value − starting cash (so commissions do
    count there), its percent against starting cash; day change = Σ positions' day change. Positions with
    quantity 0 are not listed; listed ones are in symbol order.
    """
    held = [position for _, position in sorted(ledger.positions.items()) if position.quantity]
    values = {p.symbol: _market_value_cents(p, quotes.get(p.symbol)) for p in held}
    positions_value = sum(values.values())
    total_value = ledger.cash_cents + positions_value
    total_cost = sum(p.cost_basis_cents for p in held)
    total_return = total_value - ledger.starting_cash_cents
    symbol_sectors = {p.symbol: sector_of(p.symbol, quotes, sectors) for p in held}
    positions = None
    if include_positions:
        positions = tuple(
            position_view(p, quotes.get(p.symbol), total_value, symbol_sectors[p.symbol]) for p in held
        )
    return PortfolioView(
        portfolio_id=ledger.portfolio_id,
        name=ledger.name,
        owner_id=ledger.owner_id,
        cash_cents=ledger.cash_cents,
        reserved_cash_cents=ledger.reserved_cash_cents,
        buying_power_cents=ledger.buying_power_cents,
        positions_value_cents=positions_value,
        total_value_cents=total_value,
        total_cost_cents=total_cost,
        unrealized_pnl_cents=positions_value - total_cost,
        realized_pnl_cents=sum(p.realized_pnl_cents for p in ledger.positions.values()),
        total_return_cents=total_return,
        total_return_percent=_ratio(total_return * 100, ledger.starting_cash_cents, 2),
        day_change_cents=sum(_day_change_cents(p, quotes.get(p.symbol)) for p in held),
        diversification_score=diversification_score(values, symbol_sectors),
        positions=positions,
    )


def portfolio_summary(
    ledger: PortfolioLedger, quotes: Mapping[str, Quote], sectors: Mapping[str, str]
) -> PortfolioSummary:
    """A portfolio for a list: its values without positions, and how many positions are open."""
    return PortfolioSummary(
        portfolio=portfolio_view(ledger, quotes, sectors, include_positions=False),
        position_count=sum(1 for position in ledger.positions.values() if position.quantity),
    )


def _spread(amounts: list[Fraction], full_count: int) -> Fraction:
    """(1 − HHI of the shares) / (1 − 1/full_count), capped at 1: 0 for one holding, 1 for full_count equal ones."""
    total = sum(amounts)
    if total <= 0 or full_count < 2:
        return Fraction(0)
    hhi = sum((amount / total) ** 2 for amount in amounts)
    return min(Fraction(1), (1 - hhi) / (1 - Fraction(1, full_count)))


def diversification_score(
    weights_by_symbol: Mapping[str, int | float | Decimal],
    sectors: Mapping[str, str],
    *,
    full_positions: int = FULL_POSITION_COUNT,
    full_sectors: int = FULL_SECTOR_COUNT,
) -> float:
    """How spread the holdings are, 0..100 (2 dp); cash is excluded.

    score = 100 × (0.7 × P + 0.3 × S), where, with w the holdings' shares of their own total (market values
    or weights are both fine; absolute values, so a short counts by its size),
        P = min(1, (1 − Σ w_i²) / (1 − 1/full_positions))    over positions,
        S = min(1, (1 − Σ s_k²) / (1 − 1/full_sectors))      over sector sums s_k (UNKNOWN_SECTOR if unmapped).
    No positions or one position → 0; two equal positions in one sector → 70 × (1/2) / (9/10) = 38.89;
    full_positions equal positions spread evenly over full_sectors sectors → 100.
    """
    amounts = {symbol: abs(Fraction(value)) for symbol, value in weights_by_symbol.items() if value}
    by_sector: dict[str, Fraction] = {}
    for symbol, amount in amounts.items():
        sector = sectors.get(symbol, UNKNOWN_SECTOR)
        by_sector[sector] = by_sector.get(sector, Fraction(0)) + amount
    score = 100 * (
        _POSITION_SHARE * _spread(list(amounts.values()), full_positions)
        + _SECTOR_SHARE * _spread(list(by_sector.values()), full_sectors)
    )
    return _fixed(score, 2)


def sector_allocation(
    values_by_symbol: Mapping[str, int],
    sectors: Mapping[str, str],
    *,
    total: int | None = None,
) -> dict[str, float]:
    """Each sector's summed value as a share of `total` (4 dp), in sector-name order.

    With `total` omitted it is the sum of the values, so positions only and the shares sum to 1. Pass the
    portfolio's total value (cash included) to get shares on the same basis as Position.weight: a sector's
    share is then the sum of its positions' weights and cash takes the rest. Shorts count negative.
    Empty when the total is not positive.
    """
    if total is None:
        total = sum(values_by_symbol.values())
    if total <= 0:
        return {}
    by_sector: dict[str, int] = {}
    for symbol, value in values_by_symbol.items():
        sector = sectors.get(symbol, UNKNOWN_SECTOR)
        by_sector[sector] = by_sector.get(sector, 0) + value
    return {sector: _ratio(value, total, 4) for sector, value in sorted(by_sector.items())}


@dataclass(frozen=True, slots=True)
class Standing:
    """One line of the class leaderboard: a rank, a student, and their main portfolio's view."""

    rank: int
    user: User
    portfolio: PortfolioView


def rank_standings(players: Iterable[tuple[User, PortfolioView]]) -> list[Standing]:
    """The leaderboard of (student, main portfolio) in the order they joined: best total return first, ranks 1..n,
    ties to whoever joined first."""
    joined = list(players)
    order = sorted(range(len(joined)), key=lambda i: (-joined[i][1].total_return_percent, i))
    return [Standing(rank, *joined[i]) for rank, i in enumerate(order, start=1)]
