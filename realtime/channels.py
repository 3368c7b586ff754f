"""Channel names: what each channel of the hub carries, built and read back in this one place.

Names are segments joined by ':', most general first, so that `ConnectionHub.channels(prefix)` can list
a family ("risk:") or one portfolio's channels ("portfolio:17:"). Ids in names have passed an access
check and the field schema before anyone subscribes.
"""

__all__ = [
    "MARKET",
    "RISK",
    "RISK_ALL",
    "portfolio_prefix",
    "portfolio_positions",
    "portfolio_values",
    "read_portfolio",
    "risk",
    "read_risk",
    "RISK_CONTEST",
    "risk_of_contest",
    "read_risk_contest",
    "signals",
    "signals_prefix",
    "read_signals",
    "orders_of_user",
    "orders_of_portfolio",
    "orders_of_session",
    "contest_prefix",
    "contest",
    "contest_portfolio",
]

MARKET = "market"
"""MARKET_STATUS and MARKET_OVERVIEW: every market-data connection hears it."""

RISK = "risk:"
RISK_ALL = "risk:*"
"""The default class's risk feed (teachers and admins): RISK_RANKING and the RISK_ALERT of every portfolio in no
contest."""
RISK_CONTEST = "risk:contest:"
"""Where each contest's risk feed is named (`risk_of_contest`)."""

_POSITIONS = "positions"
_VALUES = "value"
_ALL_MODELS = "*"


def portfolio_prefix(portfolio_id: str = "") -> str:
    """Every portfolio channel ("portfolio:"), or one portfolio's ("portfolio:17:")."""
    return f"portfolio:{portfolio_id}:" if portfolio_id else "portfolio:"


def portfolio_positions(portfolio_id: str) -> str:
    """POSITION_UPDATE of one portfolio (every 2 s and after each fill)."""
    return f"portfolio:{portfolio_id}:{_POSITIONS}"


def portfolio_values(portfolio_id: str, interval_ms: int) -> str:
    """PORTFOLIO_UPDATE of one portfolio, every `interval_ms` and after each fill."""
    return f"portfolio:{portfolio_id}:{_VALUES}:{int(interval_ms)}"


def read_portfolio(channel: str) -> tuple[str, int | None]:
    """(portfolio id, value interval in ms, or None for the positions channel) of a portfolio channel.

    >>> read_portfolio("portfolio:17:value:5000"), read_portfolio("portfolio:17:positions")
    (('17', 5000), ('17', None))
    """
    _, portfolio_id, kind, *interval = channel.split(":")
    return portfolio_id, int(interval[0]) if kind == _VALUES else None


def risk(portfolio_id: str) -> str:
    """RISK_UPDATE (every 5 s) and RISK_ALERT of one portfolio."""
    return f"{RISK}{portfolio_id}"


def risk_of_contest(contest_id: str) -> str:
    """RISK_RANKING and RISK_ALERT of one contest's portfolios, for its teacher (`risk:*` is the default class's)."""
    return f"{RISK_CONTEST}{contest_id}"


def read_risk_contest(channel: str) -> str | None:
    """The contest id of a contest's risk channel; None for any other."""
    return channel.removeprefix(RISK_CONTEST) if channel.startswith(RISK_CONTEST) else None


def read_risk(channel: str) -> str | None:
    """The portfolio id of a portfolio's risk channel; None for the class-wide one."""
    return None if channel == RISK_ALL else channel.removeprefix(RISK)


def signals_prefix(symbol: str = "") -> str:
    """Every signals channel ("signals:"), or one symbol's ("signals:NVTX:")."""
    return f"signals:{symbol}:" if symbol else "signals:"


def signals(symbol: str, models: tuple[str, ...] | None) -> str:
    """SIGNAL_UPDATE of one symbol, with only the signals of `models` (None: every model).

    A connection holds one signals channel per symbol; `models` is already in canonical order.
    """
    return signals_prefix(symbol) + (",".join(models) if models else _ALL_MODELS)


def read_signals(channel: str) -> tuple[str, tuple[str, ...] | None]:
    """(symbol, models or None for every model) of a signals channel.

    >>> read_signals("signals:NVTX:*"), read_signals("signals:NVTX:momentum,trend")
    (('NVTX', None), ('NVTX', ('momentum', 'trend')))
    """
    _, symbol, models = channel.split(":", 2)
    return symbol, None if models == _ALL_MODELS else tuple(models.split(","))


def orders_of_user(user_id: str) -> str:
    """Every order event of one user (SUBSCRIBE_ORDERS without a portfolio)."""
    return f"orders:user:{user_id}"


def orders_of_portfolio(portfolio_id: str) -> str:
    """The order events of one portfolio (SUBSCRIBE_ORDERS {portfolioId})."""
    return f"orders:portfolio:{portfolio_id}"


def orders_of_session(session_id: str) -> str:
    """The events of the orders one connection placed: it hears them even without SUBSCRIBE_ORDERS."""
    return f"orders:session:{session_id}"


def contest_prefix(contest_id: str) -> str:
    """Every channel of one contest."""
    return f"contest:{contest_id}:"


def contest(contest_id: str) -> str:
    """CONTEST_UPDATE: the contest's status and ranking, to everyone watching it."""
    return f"contest:{contest_id}:updates"


def contest_portfolio(contest_id: str, portfolio_id: str) -> str:
    """ASSIGNMENT_PROGRESS: one contest portfolio's checklist, to the students who play in it."""
    return f"contest:{contest_id}:portfolio:{portfolio_id}"
