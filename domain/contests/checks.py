"""A contest's rules as order checks: what plugs a contest into the order engine's one list of checks."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from domain.market import Quote
from domain.orders import Check, CheckContext, Rejection
from domain.risk.limits import RiskLimits
from domain.risk.pretrade import pre_trade_check
from domain.trading import RejectReason, TradingTerms

from .contest import Contest, Moment

__all__ = ["ContestChecks"]

_NO_LIMITS = RiskLimits()


@dataclass(frozen=True, slots=True)
class ContestChecks:
    """The order checks and terms of every class contest for one OrderEngine; a portfolio in no contest
    (`contest_for(portfolio_id)` is None) passes every check and keeps the engine's own terms.

    Give the engine `gate_checks=(checks.gate,)`, `extra_checks=(checks.rules, <the risk check>)` and
    `terms_for=checks.terms_for`. `now()` tells the moment (wall clock and simulated day), `quotes()` the latest
    quotes (for a portfolio's total value). Submit records the rejection; modify raises BadRequest with its text.

    - gate (before the engine's own checks, so it is the reason whatever else is wrong): CONTEST_NOT_OPEN while
      the contest is a draft or once it has finished, by `Contest.status_at` (never a stale stored status).
    - rules (after the engine's own): NOTE_REQUIRED when the contest asks for a note and the order has none (or a
      blank one); SYMBOL_NOT_ALLOWED for a symbol outside the allowed symbols and sectors; RISK_LIMIT when the
      order takes a position past the contest's max_position_weight, judged as the pre-trade risk check judges
      maxPositionWeight. A modify keeps its note and symbol, so only the weight is judged again.
    - terms_for: the contest's commission and short selling (the engine rejects a short sale INSUFFICIENT_SHARES).
    """

    contest_for: Callable[[str], Contest | None]
    now: Callable[[], Moment]
    quotes: Callable[[], Mapping[str, Quote]]
    _weight: Check = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_weight", pre_trade_check(self._weight_limits, self.quotes))

    def _weight_limits(self, portfolio_id: str) -> RiskLimits:
        contest = self.contest_for(portfolio_id)
        if contest is None or contest.rules.max_position_weight is None:
            return _NO_LIMITS
        return RiskLimits(max_position_weight=contest.rules.max_position_weight)

    def terms_for(self, portfolio_id: str) -> TradingTerms | None:
        contest = self.contest_for(portfolio_id)
        return None if contest is None else contest.rules.terms()

    def gate(self, check: CheckContext) -> Rejection | None:
        contest = self.contest_for(check.ledger.portfolio_id)
        if contest is None:
            return None
        reason = contest.closed_reason(self.now())
        return None if reason is None else Rejection(RejectReason.CONTEST_NOT_OPEN, reason)

    def rules(self, check: CheckContext) -> Rejection | None:
        contest = self.contest_for(check.ledger.portfolio_id)
        if contest is None:
            return None
        rules, request = contest.rules, check.request
        if check.replacing is None:
            if rules.note_required and not (request.note or "").strip():
                return Rejection(RejectReason.NOTE_REQUIRED,
                                 f'the contest "{contest.name}" asks for a note with every order: say why you trade')
            quote = check.quote  # the engine's own checks passed: the symbol is known, so a submit has its quote
            if not rules.allows(request.symbol, quote.sector):
                return Rejection(RejectReason.SYMBOL_NOT_ALLOWED,
                                 f'{request.symbol} ({quote.sector}) is not traded in the contest "{contest.name}": '
                                 f"it allows {rules.allowed_text()}")
        if rules.max_position_weight is None:
            return None
        verdict = self._weight(check)
        if verdict is None:
            return None
        reason, message = verdict
        return Rejection(RejectReason(reason), f'{message} (a rule of the contest "{contest.name}")')
