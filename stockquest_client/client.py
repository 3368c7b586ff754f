"""The entry point: sign in over REST, then reach the five endpoints through one `Client`.

    async with await Client.guest("http://127.0.0.1:8080", nickname="my bot") as client:
        quote = await client.market.quote("NVTX")
        result = await client.orders.buy("NVTX", 10)
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import tornado.httpclient

from .connection import Connection
from .endpoints import MarketData, Orders, Portfolios, Risk, Signals
from .errors import ClientClosed, LoginFailed, MalformedMessage

__all__ = ["Client"]


class Client:
    """A signed-in user's session with a Stock Quest server: `market`, `orders`, `portfolio`, `risk`, `signals`.

    Each endpoint opens its own WebSocket on first use and keeps it open (reconnecting) until `close()`.
    Options: `request_timeout` (s) for every request; `rate` and `burst`, the messages per second each socket
    may send (the server allows 20, bursts of 40; the default leaves room for the bot's other sockets' timing).
    """

    def __init__(self, base_url: str, token: str | None, *, user: dict | None = None,
                 credentials: tuple[str, str] | None = None, request_timeout: float = 10.0, rate: float = 15.0,
                 burst: int = 30, backoff: tuple[float, float] = (0.25, 10.0)):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.user = user or {}
        self.order_id_prefix = f"bot{uuid.uuid4().hex[:6]}"
        self._credentials = credentials
        self._options = dict(request_timeout=request_timeout, rate=rate, burst=burst, backoff=backoff)
        self._portfolio_id: str | None = None
        self._closed = False
        self.market = MarketData(self)
        self.orders = Orders(self)
        self.portfolio = Portfolios(self)
        self.risk = Risk(self)
        self.signals = Signals(self)

    # signing in -------------------------------------------------------------------------------------------
    @classmethod
    async def login(cls, base_url: str, username: str, password: str, **options) -> Client:
        """Log in with a registered account; after a 4401 (token expired) the client logs in again by itself."""
        answer = await _post(base_url, "/api/auth/login", {"username": username, "password": password})
        return cls(base_url, answer["token"], user=answer.get("user"), credentials=(username, password), **options)

    @classmethod
    async def register(cls, base_url: str, username: str, password: str, **options) -> Client:
        """Create an account (username 3-32 of A-Z a-z 0-9 _ . -, password 8-256 characters) and sign in."""
        answer = await _post(base_url, "/api/auth/register", {"username": username, "password": password})
        return cls(base_url, answer["token"], user=answer.get("user"), credentials=(username, password), **options)

    @classmethod
    async def guest(cls, base_url: str, nickname: str = "bot", **options) -> Client:
        """A new password-less student account (classroom mode); its token lasts 12 h and cannot be renewed."""
        answer = await _post(base_url, "/api/auth/guest", {"nickname": nickname})
        return cls(base_url, answer["token"], user=answer.get("user"), **options)

    @property
    def user_id(self) -> str | None:
        return self.user.get("userId")

    async def _token(self, refresh: bool) -> str | None:
        if self._closed:
            raise ClientClosed("client closed")
        if refresh and self._credentials is not None:
            answer = await _post(self.base_url, "/api/auth/login",
                                 {"username": self._credentials[0], "password": self._credentials[1]})
            self.token = answer["token"]
        return self.token

    def _connection(self, path: str, on_open) -> Connection:
        if self._closed:
            raise ClientClosed("client closed")
        scheme, netloc, base_path, _, _ = urlsplit(self.base_url)
        url = urlunsplit(("wss" if scheme == "https" else "ws", netloc, base_path + path, "", ""))
        return Connection(url, self._token, on_open=on_open, **self._options)

    async def portfolio_id(self) -> str:
        """The user's first portfolio (a new user has exactly one): where orders go unless told otherwise."""
        if self._portfolio_id is None:
            portfolios = await self.portfolio.list()
            if not portfolios:
                raise MalformedMessage("PORTFOLIO_LIST named no portfolio")
            self._portfolio_id = portfolios[0].portfolio_id
        return self._portfolio_id

    # closing ------------------------------------------------------------------------------------------------
    async def close(self) -> None:
        """Close every socket; iterators end, pending requests raise ClientClosed."""
        self._closed = True
        for endpoint in (self.market, self.orders, self.portfolio, self.risk, self.signals):
            await endpoint.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def _post(base_url: str, path: str, body: dict) -> dict:
    """POST JSON to the REST API; LoginFailed with the server's code and message on an error status."""
    http = tornado.httpclient.AsyncHTTPClient()
    response = await http.fetch(base_url.rstrip("/") + path, method="POST", body=json.dumps(body),
                                headers={"Content-Type": "application/json"}, raise_error=False, request_timeout=20)
    if response.code == 599:
        raise LoginFailed(599, None, str(response.error))
    try:
        answer = json.loads(response.body or b"{}", parse_float=Decimal)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if response.code >= 400 or not isinstance(answer.get("token"), str):
        raise LoginFailed(response.code, answer.get("code"), str(answer.get("error") or response.reason))
    return answer
