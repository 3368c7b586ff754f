"""A class contest's rules: what its portfolios start with, pay, may trade, and which limits hold them."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from domain.errors import BadRequest
from domain.risk.limits import DEFAULT_STARTING_CASH_CENTS, MAX_MONEY_LIMIT_CENTS, RiskLimits, default_limits
from domain.trading import Commission, TradingTerms

__all__ = ["ContestRules", "MIN_TEAM_SIZE", "MAX_TEAM_SIZE", "MAX_PER_SHARE_CENTS", "parse_weight"]

MIN_TEAM_SIZE = 2
MAX_TEAM_SIZE = 5
MAX_PER_SHARE_CENTS = Decimal(10_000)  # 100.00 a share: anything more is a typo, not a fee
_MAX_LISTED = 500  # symbols or sectors in an allow list


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: Iterable[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise BadRequest(f"{what} must be a list of names, not one string")
    names = frozenset(value)
    if not names:
        raise BadRequest(f"{what} is empty: leave it unset to allow everything")
    if len(names) > _MAX_LISTED or any(not isinstance(n, str) or not n.strip() or len(n) > 64 for n in names):
        raise BadRequest(f"{what} must be at most {_MAX_LISTED} non-blank names of up to 64 characters")
    return names


def parse_weight(value: object, what: str) -> Decimal | None:
    """A weight in (0, 1] as an exact Decimal; a float is read through its repr, so 0.3 is Decimal("0.3")."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be a fraction above 0 and at most 1")
    try:
        weight = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise BadRequest(f"{what} must be a fraction above 0 and at most 1") from None
    if not weight.is_finite() or not 0 < weight <= 1:
        raise BadRequest(f"{what} must be a fraction above 0 and at most 1")
    return weight


@dataclass(frozen=True, slots=True)
class ContestRules:
    """What every portfolio of one contest plays by; a teacher sets them while the contest is a draft.

    - starting_cash_cents: each portfolio's cash at the start.
    - commission: per order (charged on its first fill) and per share, as the engine's Commission charges it.
    - short_selling: whether a sell may go beyond the shares held.
    - allowed_symbols / allowed_sectors: what may be traded; None allows everything, and with both given a symbol
      listed in either (by itself or by its sector) is allowed.
    - max_position_weight: how large a share of the portfolio's value (cash included) an order may take one
      position to, a Decimal fraction in (0, 1]; None: no contest cap.
    - house_risk_limits: whether the house risk defaults (`default_limits` of the starting cash) hold as well.
    - note_required: every order needs a journal note saying why.
    - max_team_size: None for one portfolio per student; 2 to 5 for teams of 2 up to that many sharing one.

    Invalid values raise BadRequest (a teacher typed them).
    """

    starting_cash_cents: int = DEFAULT_STARTING_CASH_CENTS
    commission: Commission = Commission()
    short_selling: bool = False
    allowed_symbols: frozenset[str] | None = None
    allowed_sectors: frozenset[str] | None = None
    max_position_weight: Decimal | None = None
    house_risk_limits: bool = True
    note_required: bool = False
    max_team_size: int | None = None

    def __post_init__(self):
        cash = self.starting_cash_cents
        if not _whole(cash) or not 0 < cash <= MAX_MONEY_LIMIT_CENTS:
            raise BadRequest("the starting cash must be a positive whole number of cents")
        commission = self.commission
        if not isinstance(commission, Commission):
            raise BadRequest("the commission must be a Commission")
        per_share = commission.per_share_cents
        if (not _whole(commission.per_order_cents) or not 0 <= commission.per_order_cents <= MAX_MONEY_LIMIT_CENTS
                or not isinstance(per_share, Decimal) or not per_share.is_finite()
                or not 0 <= per_share <= MAX_PER_SHARE_CENTS):
            raise BadRequest("commissions must be non-negative: whole cents per order, at most "
                             f"{MAX_PER_SHARE_CENTS} cents per share")
        for attr in ("short_selling", "house_risk_limits", "note_required"):
            if not isinstance(getattr(self, attr), bool):
                raise BadRequest(f"{attr} must be true or false")
        object.__setattr__(self, "allowed_symbols", _names(self.allowed_symbols, "allowed_symbols"))
        object.__setattr__(self, "allowed_sectors", _names(self.allowed_sectors, "allowed_sectors"))
        object.__setattr__(self, "max_position_weight", parse_weight(self.max_position_weight, "max_position_weight"))
        size = self.max_team_size
        if size is not None and (not _whole(size) or not MIN_TEAM_SIZE <= size <= MAX_TEAM_SIZE):
            raise BadRequest(f"max_team_size must be from {MIN_TEAM_SIZE} to {MAX_TEAM_SIZE}, or unset for no teams")

    @property
    def teams(self) -> bool:
        """Whether students play in teams sharing a portfolio."""
        return self.max_team_size is not None

    def allows(self, symbol: str, sector: str) -> bool:
        """Whether `symbol` (in `sector`) may be traded in this contest."""
        if self.allowed_symbols is None and self.allowed_sectors is None:
            return True
        return bool((self.allowed_symbols and symbol in self.allowed_symbols)
                    or (self.allowed_sectors and sector in self.allowed_sectors))

    def allowed_text(self) -> str:
        """What may be traded, for a rejection's message: "the sectors Energy, Tech and the symbols ACME"."""
        parts = []
        if self.allowed_sectors:
            parts.append(f"the sector{'s' if len(self.allowed_sectors) > 1 else ''} "
                         f"{', '.join(sorted(self.allowed_sectors))}")
        if self.allowed_symbols:
            parts.append(f"the symbol{'s' if len(self.allowed_symbols) > 1 else ''} "
                         f"{', '.join(sorted(self.allowed_symbols))}")
        return " and ".join(parts) if parts else "every symbol"

    def terms(self) -> TradingTerms:
        """The engine's per-portfolio terms for a portfolio of this contest: its commission and short selling."""
        return TradingTerms(self.commission, self.short_selling)

    def risk_limits(self) -> RiskLimits:
        """The limits a portfolio of this contest starts with: the house defaults for its starting cash (or none),
        with the position weight capped at the contest's max_position_weight too, so that alerts warn near it."""
        limits = default_limits(self.starting_cash_cents) if self.house_risk_limits else RiskLimits()
        cap = self.max_position_weight
        if cap is None:
            return limits
        house = limits.max_position_weight
        return replace(limits, max_position_weight=cap if house is None else min(cap, house))
