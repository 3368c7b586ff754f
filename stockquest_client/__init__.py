"""An asyncio client for Stock Quest Realtime, for trading bots (docs/bots.md).

    from stockquest_client import Client

    async with await Client.login("http://127.0.0.1:8080", "alice", "a long password") as client:
        events = client.orders.events()
        result = await client.orders.buy("NVTX", 10)
        async for event in events:
            print(event.type, event.execution or event.order)

Depends only on Tornado (its WebSocket and HTTP clients) and the standard library.
"""

from .client import Client
from .connection import Connection
from .endpoints import MarketData, Orders, Portfolios, Risk, Signals, Subscription
from .errors import (
    ClientClosed,
    ConnectionLost,
    LoginFailed,
    MalformedMessage,
    RequestTimeout,
    ServerError,
    StockQuestError,
)
from .messages import (
    Bar,
    Envelope,
    ErrorReply,
    ExecutionReport,
    ModelPerformance,
    Order,
    OrderEvent,
    OrderResult,
    Portfolio,
    Position,
    PositionDetails,
    Quote,
    RiskAlert,
    RiskSnapshot,
    Signal,
    SymbolInfo,
    Trade,
    parse_envelope,
)

__all__ = [
    "Client", "Connection", "MarketData", "Orders", "Portfolios", "Risk", "Signals", "Subscription",
    "StockQuestError", "ServerError", "RequestTimeout", "ConnectionLost", "ClientClosed", "LoginFailed",
    "MalformedMessage", "Envelope", "ErrorReply", "Quote", "Bar", "SymbolInfo", "Order", "ExecutionReport",
    "OrderEvent", "OrderResult", "Portfolio", "Position", "PositionDetails", "Trade", "Signal", "ModelPerformance",
    "RiskSnapshot", "RiskAlert", "parse_envelope",
]
