"""The portfolio family on the wire: Position, Portfolio, PORTFOLIO_LIST entries, pushes and PORTFOLIO_ANALYTICS."""

from domain.analytics import PortfolioAnalytics
from domain.valuation import PortfolioSummary, PortfolioView, PositionView, Standing
from realtime.wire import money, ratio

__all__ = [
    "position", "flat_position", "portfolio", "portfolio_values", "summary", "position_update", "standing", "analytics",
]


def position(p: PositionView) -> dict:
    """The protocol's Position object, plus `sector`."""
    return {
        "symbol": p.symbol,
        "quantity": p.quantity,
        "averageCost": money(p.average_cost_cents),
        "costBasis": money(p.cost_basis_cents),
        "marketPrice": money(p.market_price_cents),
        "marketValue": money(p.market_value_cents),
        "unrealizedPnL": money(p.unrealized_pnl_cents),
        "unrealizedPnLPercent": p.unrealized_pnl_percent,
        "realizedPnL": money(p.realized_pnl_cents),
        "weight": p.weight,
        "dayChange": money(p.day_change_cents),
        "stopLoss": money(p.stop_loss_cents),
        "takeProfit": money(p.take_profit_cents),
        "sector": p.sector,
    }


def flat_position(symbol: str, sector: str) -> dict:
    """POSITION_DETAILS' position for a symbol the portfolio does not hold."""
    return {"symbol": symbol, "quantity": 0, "sector": sector}


def portfolio_values(v: PortfolioView) -> dict:
    """The Portfolio object without `positions`: what PORTFOLIO_UPDATE carries."""
    return {
        "portfolioId": v.portfolio_id,
        "name": v.name,
        "ownerId": v.owner_id,
        "cash": money(v.cash_cents),
        "reservedCash": money(v.reserved_cash_cents),
        "buyingPower": money(v.buying_power_cents),
        "positionsValue": money(v.positions_value_cents),
        "totalValue": money(v.total_value_cents),
        "totalCost": money(v.total_cost_cents),
        "unrealizedPnL": money(v.unrealized_pnl_cents),
        "realizedPnL": money(v.realized_pnl_cents),
        "totalReturn": money(v.total_return_cents),
        "totalReturnPercent": v.total_return_percent,
        "dayChange": money(v.day_change_cents),
        "diversificationScore": v.diversification_score,
    }


def portfolio(v: PortfolioView) -> dict:
    """The protocol's Portfolio object; `positions` only when the view was taken with them."""
    data = portfolio_values(v)
    if v.positions is not None:
        data["positions"] = [position(p) for p in v.positions]
    return data


def summary(s: PortfolioSummary) -> dict:
    """A PORTFOLIO_LIST entry: the Portfolio object without `positions`, plus `positionCount`."""
    return {**portfolio_values(s.portfolio), "positionCount": s.position_count}


def position_update(portfolio_id: str, positions: list[PositionView] | tuple[PositionView, ...]) -> dict:
    """POSITION_UPDATE data: the portfolio's listed positions."""
    return {"portfolioId": portfolio_id, "positions": [position(p) for p in positions]}


def standing(s: Standing) -> dict:
    """One /api/leaderboard entry."""
    return {"rank": s.rank, "userId": str(s.user.id), "name": s.user.display_name,
            "portfolioId": s.portfolio.portfolio_id, "totalValue": money(s.portfolio.total_value_cents),
            "totalReturnPercent": s.portfolio.total_return_percent}


def analytics(a: PortfolioAnalytics) -> dict:
    """PORTFOLIO_ANALYTICS data: money in currency units, ratios as fractions to 4 dp (None, never NaN)."""
    return {
        "portfolioId": a.portfolio_id,
        "totalCost": money(a.total_cost_cents),
        "unrealizedPnL": money(a.unrealized_pnl_cents),
        "realizedPnL": money(a.realized_pnl_cents),
        "diversificationScore": a.diversification_score,
        "sectorAllocation": dict(a.sector_allocation),
        "returns": {"day": ratio(a.returns.day), "total": ratio(a.returns.total)},
        "volatility": ratio(a.volatility),
        "sharpeRatio": ratio(a.sharpe_ratio),
        "maxDrawdown": ratio(a.max_drawdown),
        "beta": ratio(a.beta),
        "winRate": ratio(a.win_rate),
    }
