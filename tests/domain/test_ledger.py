"""The ledger's arithmetic: fills into cash, positions, cost basis, realized P&L and commissions; reservations."""

import itertools

import pytest

from domain.ledger import (
    apply_fill,
    div_round_half_even,
    identity_gap,
    position,
    release_cash,
    release_shares,
    replay_fills,
    reserve_cash,
    reserve_shares,
    snapshot_ledger,
)
from domain.trading import Fill, PortfolioLedger, Side

CASH = 10_000_000  # 100,000.00


def new_ledger(cash: int = CASH) -> PortfolioLedger:
    return PortfolioLedger("P1", "u1", "Main", cash, cash)


_execution_numbers = itertools.count(1)


def fill(side: str, quantity: int, price: int, commission: int = 0, symbol: str = "ACME") -> Fill:
    number = next(_execution_numbers)
    return Fill(f"E{number}", "O1", "P1", "u1", symbol, Side(side), quantity, price, commission, 1_000, 2_000)


def assert_all_ints(ledger: PortfolioLedger) -> None:
    for name in ("starting_cash_cents", "cash_cents", "reserved_cash_cents", "commissions_cents"):
        assert type(getattr(ledger, name)) is int, name
    for held in ledger.positions.values():
        for name in ("quantity", "reserved_quantity", "cost_basis_cents", "realized_pnl_cents"):
            assert type(getattr(held, name)) is int, name


def test_buy_takes_notional_and_commission_from_cash_and_adds_cost_basis_without_commission():
    ledger = new_ledger()
    held = apply_fill(ledger, fill("BUY", 10, 12_345, commission=99))
    assert ledger.cash_cents == CASH - 123_450 - 99
    assert (held.quantity, held.cost_basis_cents, held.realized_pnl_cents) == (10, 123_450, 0)
    assert ledger.commissions_cents == 99
    assert identity_gap(ledger) == 0


def test_partial_sell_removes_proportional_cost_rounded_half_even_and_realizes_the_rest():
    ledger = new_ledger()
    apply_fill(ledger, fill("BUY", 3, 333))
    apply_fill(ledger, fill("BUY", 1, 335))  # 4 shares costing 1334
    held = apply_fill(ledger, fill("SELL", 1, 400, commission=7))
    # 1334 / 4 = 333.5 -> 334 (half-even rounds to the even cent)
    assert (held.quantity, held.cost_basis_cents, held.realized_pnl_cents) == (3, 1000, 400 - 334)
    assert ledger.cash_cents == CASH - 1334 + 400 - 7
    assert identity_gap(ledger) == 0


def test_half_cent_ties_round_to_even():
    ledger = new_ledger()
    apply_fill(ledger, fill("BUY", 1, 2))
    apply_fill(ledger, fill("BUY", 1, 3))  # 2 shares costing 5
    held = apply_fill(ledger, fill("SELL", 1, 10))
    assert held.cost_basis_cents == 3  # removed 2.5 -> 2
    apply_fill(ledger, fill("BUY", 1, 4))  # 2 shares costing 7
    held = apply_fill(ledger, fill("SELL", 1, 10))
    assert held.cost_basis_cents == 3  # removed 3.5 -> 4


def test_closing_sell_removes_exactly_all_cost_basis_and_clears_levels_but_keeps_the_flat_position():
    ledger = new_ledger()
    apply_fill(ledger, fill("BUY", 3, 1_001))
    held = position(ledger, "ACME")
    held.stop_loss_cents, held.take_profit_cents = 900, 1_200
    apply_fill(ledger, fill("SELL", 1, 1_100))
    apply_fill(ledger, fill("SELL", 2, 1_050))
    assert (held.quantity, held.cost_basis_cents) == (0, 0)
    assert held.realized_pnl_cents == 1_100 + 2 * 1_050 - 3 * 1_001
    assert held.stop_loss_cents is None and held.take_profit_cents is None
    assert ledger.positions["ACME"] is held
    assert identity_gap(ledger) == 0


def test_short_sale_opens_negative_position_and_buy_to_cover_realizes_the_difference():
    ledger = new_ledger()
    held = apply_fill(ledger, fill("SELL", 10, 1_000, commission=5))
    assert (held.quantity, held.cost_basis_cents) == (-10, -10_000)
    assert ledger.cash_cents == CASH + 10_000 - 5
    apply_fill(ledger, fill("BUY", 4, 900))
    assert (held.quantity, held.cost_basis_cents, held.realized_pnl_cents) == (-6, -6_000, 400)
    apply_fill(ledger, fill("BUY", 10, 950))  # covers 6, then goes long 4
    assert (held.quantity, held.cost_basis_cents, held.realized_pnl_cents) == (4, 3_800, 400 + 300)
    assert identity_gap(ledger) == 0


def test_a_long_sequence_of_fills_keeps_the_identity_to_the_cent_and_only_ints():
    ledger = new_ledger()
    prices = [1_003, 997, 1_011, 1_007, 989, 1_013, 1_001]
    for k, price in enumerate(prices * 5):
        apply_fill(ledger, fill("BUY", 7 + k % 3, price, commission=k % 4, symbol="AB"[k % 2]))
        apply_fill(ledger, fill("SELL", 3 + k % 5, price + 3, commission=k % 3, symbol="AB"[k % 2]))
        assert identity_gap(ledger) == 0
    assert_all_ints(ledger)


def test_replay_of_the_fills_reproduces_the_ledger():
    ledger = new_ledger()
    fills = [fill("BUY", 10, 1_000, 3), fill("SELL", 3, 1_100, 2), fill("BUY", 5, 990, 1, symbol="B"),
             fill("SELL", 7, 1_020, 2)]
    for f in fills:
        apply_fill(ledger, f)
    replayed = replay_fills("P1", "u1", "Main", CASH, fills)
    assert replayed == ledger


def test_fill_of_another_portfolio_or_with_a_zero_quantity_is_refused():
    ledger = new_ledger()
    with pytest.raises(ValueError):
        apply_fill(ledger, Fill("E1", "O1", "P2", "u1", "ACME", Side.BUY, 1, 100, 0, 0, 0))
    with pytest.raises(ValueError):
        apply_fill(ledger, Fill("E1", "O1", "P1", "u1", "ACME", Side.BUY, 0, 100, 0, 0, 0))
    assert ledger == new_ledger()


def test_cash_reservations_cannot_exceed_buying_power_or_release_more_than_held():
    ledger = new_ledger(1_000)
    reserve_cash(ledger, 600)
    assert ledger.buying_power_cents == 400
    with pytest.raises(ValueError):
        reserve_cash(ledger, 401)
    with pytest.raises(ValueError):
        release_cash(ledger, 601)
    release_cash(ledger, 600)
    assert ledger.reserved_cash_cents == 0


def test_share_reservations_need_unreserved_shares_unless_shorting():
    ledger = new_ledger()
    apply_fill(ledger, fill("BUY", 10, 100))
    reserve_shares(ledger, "ACME", 6)
    with pytest.raises(ValueError):
        reserve_shares(ledger, "ACME", 5)
    assert reserve_shares(ledger, "ACME", 5, allow_short=True).reserved_quantity == 11
    with pytest.raises(ValueError):
        release_shares(ledger, "ACME", 12)
    with pytest.raises(ValueError):
        release_shares(ledger, "NOPE", 1)
    assert release_shares(ledger, "ACME", 11).reserved_quantity == 0


def test_snapshot_is_independent_of_the_live_ledger():
    ledger = new_ledger()
    apply_fill(ledger, fill("BUY", 10, 100))
    copy = snapshot_ledger(ledger)
    apply_fill(ledger, fill("BUY", 10, 100))
    assert copy.positions["ACME"].quantity == 10
    assert ledger.positions["ACME"].quantity == 20


@pytest.mark.parametrize(
    "numerator, denominator, expected",
    [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (10, 3, 3), (11, 3, 4), (-10, 3, -3), (-11, 3, -4), (0, 7, 0)],
)
def test_integer_division_rounds_half_even_for_both_signs(numerator, denominator, expected):
    assert div_round_half_even(numerator, denominator) == expected
