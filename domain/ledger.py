"""The portfolio ledger's arithmetic: fills into cash, positions, cost basis and realized P&L; reservations."""

from collections.abc import Iterable

from domain.money import div_round_half_even
from domain.trading import Fill, PortfolioLedger, Position, Side, shallow_copier

__all__ = [
    "position",
    "apply_fill",
    "reserve_cash",
    "release_cash",
    "reserve_shares",
    "release_shares",
    "identity_gap",
    "snapshot_ledger",
    "copy_position",
    "replay_fills",
]


def position(ledger: PortfolioLedger, symbol: str) -> Position:
    """The ledger's position in `symbol`, created flat if there is none yet."""
    held = ledger.positions.get(symbol)
    if held is None:
        held = ledger.positions[symbol] = Position(symbol)
    return held


def apply_fill(ledger: PortfolioLedger, fill: Fill) -> Position:
    """Book one fill: cash, quantity, cost basis, realized P&L and commissions; return the position.

    A buy costs `quantity * price + commission` and adds `quantity * price` to cost basis. A sell brings
    `quantity * price - commission`; the shares it closes take their proportional part of the cost basis
    (rounded half-even to a cent, exactly all of it when the position closes) and realize proceeds minus that.
    A sell beyond a long position (short selling, when the engine allows it) opens a short position whose cost
    basis is negative (the proceeds); a buy closes it symmetrically. Closing a position clears its protective
    levels; the flat position stays in the ledger because its realized P&L belongs to the identity.
    Every amount is an integer number of cents, so
    `starting_cash = cash + sum(cost basis) - sum(realized P&L) + commissions` holds exactly after every fill.
    """
    if fill.portfolio_id != ledger.portfolio_id:
        raise ValueError(f"fill {fill.execution_id} is for {fill.portfolio_id}, not {ledger.portfolio_id}")
    if fill.quantity <= 0 or fill.price_cents <= 0 or fill.commission_cents < 0:
        raise ValueError(f"fill {fill.execution_id} has a non-positive quantity or price or a negative commission")
    held = position(ledger, fill.symbol)
    notional = fill.quantity * fill.price_cents
    if fill.side is Side.BUY:
        ledger.cash_cents -= notional + fill.commission_cents
        delta = fill.quantity
    else:
        ledger.cash_cents += notional - fill.commission_cents
        delta = -fill.quantity
    ledger.commissions_cents += fill.commission_cents

    if held.quantity and (held.quantity > 0) != (delta > 0):
        # The fill closes (part of) an existing position in the opposite direction.
        closing = min(abs(delta), abs(held.quantity))
        if closing == abs(held.quantity):
            removed = held.cost_basis_cents
        else:
            removed = div_round_half_even(held.cost_basis_cents * closing, abs(held.quantity))
        signed_closing = closing if delta > 0 else -closing
        held.realized_pnl_cents += -signed_closing * fill.price_cents - removed
        held.cost_basis_cents -= removed
        held.quantity += signed_closing
        delta -= signed_closing
        if held.quantity == 0:
            held.stop_loss_cents = held.take_profit_cents = None
    if delta:
        held.quantity += delta
        held.cost_basis_cents += delta * fill.price_cents
    return held


def reserve_cash(ledger: PortfolioLedger, cents: int) -> None:
    """Hold `cents` of buying power for an open buy order (ValueError if it is not there)."""
    if cents < 0 or cents > ledger.buying_power_cents:
        raise ValueError(f"cannot reserve {cents} cents with buying power {ledger.buying_power_cents}")
    ledger.reserved_cash_cents += cents


def release_cash(ledger: PortfolioLedger, cents: int) -> None:
    """Give back `cents` a buy order held (ValueError if more than is reserved)."""
    if cents < 0 or cents > ledger.reserved_cash_cents:
        raise ValueError(f"cannot release {cents} cents of {ledger.reserved_cash_cents} reserved")
    ledger.reserved_cash_cents -= cents


def reserve_shares(ledger: PortfolioLedger, symbol: str, quantity: int, *, allow_short: bool = False) -> Position:
    """Hold `quantity` shares for an open sell order; beyond the unreserved shares only when shorting is allowed."""
    held = position(ledger, symbol)
    if quantity < 0 or (not allow_short and quantity > held.quantity - held.reserved_quantity):
        raise ValueError(f"cannot reserve {quantity} {symbol}: {held.quantity - held.reserved_quantity} unreserved")
    held.reserved_quantity += quantity
    return held


def release_shares(ledger: PortfolioLedger, symbol: str, quantity: int) -> Position:
    """Give back `quantity` shares a sell order held (ValueError if more than is reserved)."""
    held = ledger.positions.get(symbol)
    if held is None or quantity < 0 or quantity > held.reserved_quantity:
        reserved = 0 if held is None else held.reserved_quantity
        raise ValueError(f"cannot release {quantity} {symbol}: {reserved} reserved")
    held.reserved_quantity -= quantity
    return held


def identity_gap(ledger: PortfolioLedger) -> int:
    """starting cash - (cash + sum(cost basis) - sum(realized P&L) + commissions): zero when the books balance."""
    cost = sum(p.cost_basis_cents for p in ledger.positions.values())
    realized = sum(p.realized_pnl_cents for p in ledger.positions.values())
    return ledger.starting_cash_cents - (ledger.cash_cents + cost - realized + ledger.commissions_cents)


_copy_ledger, copy_position = shallow_copier(PortfolioLedger), shallow_copier(Position)


def snapshot_ledger(ledger: PortfolioLedger) -> PortfolioLedger:
    """An independent copy (positions copied too), for storage and events while the engine goes on mutating."""
    copy = _copy_ledger(ledger)
    copy.positions = {symbol: copy_position(p) for symbol, p in ledger.positions.items()}
    return copy


def replay_fills(
    portfolio_id: str, owner_id: str, name: str, starting_cash_cents: int, fills: Iterable[Fill]
) -> PortfolioLedger:
    """The ledger that `fills` (in execution order) make from a fresh portfolio: what reconciliation compares with.

    Reservations and protective levels are not fills, so they come out zero and unset.
    """
    ledger = PortfolioLedger(portfolio_id, owner_id, name, starting_cash_cents, starting_cash_cents)
    for fill in fills:
        apply_fill(ledger, fill)
    return ledger
