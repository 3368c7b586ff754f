"""SockJS compatibility layer: sockjs-tornado 1.0.7 brought up to the SockJS 0.3.3 protocol on Tornado 6.

sockjs-tornado supplies the session machinery; the thin subclasses here fix where it falls short of
the protocol as sockjs-node speaks it and as the official sockjs-protocol test suite checks it:

* a session closed inside ``on_open`` on a polling transport (xhr, jsonp) used to write its close
  frame into the response that already carried ``o`` and overrun its Content-Length; the close
  frame now waits for the next poll, which gets ``c[code,"reason"]`` (messages queued before the
  close are delivered first);
* close frames are JSON-encoded (``c[4401,"Bad \\"token\\""]``), so any reason is safe;
* an HTTP/1.0 client asking for keep-alive on a streaming transport gets ``Connection: close`` and
  the connection really closes when the response ends (it used to hang forever);
* the raw ``/websocket`` endpoint and the ``.../websocket`` transport send a WebSocket close frame
  with the session's code and reason (``3000 "Go away!"`` by default, custom 4xxx/1xxx codes
  otherwise); a POST to either is an empty 405 with ``Allow: GET``;
* ``xhr_send``'s 204 keeps ``Content-Type: text/plain``; no-cache responses say ``no-transform``;
  JSONP bodies start with ``/**/``; JSONP and htmlfile callbacks must match ``[a-zA-Z0-9_.-]+``
  and are otherwise refused with a 500 that does not echo them (they used to be reflected into a
  script, or silently mangled so ``_jp.a1.cb`` stopped working);
* CORS follows sockjs-node: ``Origin`` echoed with credentials, ``*`` without them when absent;
* streaming transports (xhr_streaming, eventsource, htmlfile) get heartbeats too (sockjs-tornado
  started them only for websocket and polling), and a heartbeat never goes into a polling
  response that already carries a frame;
* the router starts no timer when built: its session sweeper and stats start on first use inside
  the serving loop, so it can be built before the IOLoop runs (``make_app`` in a fixture).

Public API::

    router = make_sockjs_router(MyConnection, "/ws/market-data", settings={"heartbeat_delay": 25})
    app = tornado.web.Application(router.urls + other_rules)

    class MyConnection(sockjs.tornado.SockJSConnection):
        def on_open(self, info):          # info: ConnectionInfo (below)
            token = info.get_argument("token") or bearer(info.get_header("Authorization"))
            if pending_bytes(self) > 1 << 20:   # slow consumer
                self.close(4008, "Slow consumer")

``close(code=3000, reason="Go away!")`` works on every connection the router creates (the router
serves a subclass that adds the arguments when ``connection_factory`` keeps sockjs-tornado's
argument-less ``close()``); ``connection.session.close(code, reason)`` is the same thing. The client
receives ``c[code,"reason"]`` on every transport, also when the close happens inside ``on_open``.

``ConnectionInfo`` (the ``on_open`` argument) gives, from the request that opened the session:
``ip`` (``request.remote_ip``: the peer, or X-Real-Ip/X-Forwarded-For when the HTTPServer runs with
``xheaders=True``), ``arguments`` (query-string arguments as ``{name: [str, ...]}``;
``get_argument("token")`` returns the first as ``str`` or None), ``headers`` (a copy of all request
headers, case-insensitive: ``get_header("Origin")``, ``get_header("Authorization")``, Host,
User-Agent, X-Forwarded-For...), ``cookies``, ``path`` and ``transport`` (``websocket``, ``xhr``,
``xhr_streaming``, ``eventsource``, ``htmlfile``, ``jsonp`` or ``rawwebsocket``). sockjs-tornado 1.0.7
has no header whitelist (sockjs-node's drops Origin and Authorization; this one passes every
header). Browsers send Origin on WebSocket handshakes and on POSTs (xhr, xhr_streaming) but not on
same-origin GETs (eventsource, htmlfile, jsonp), and SockJS clients cannot set Authorization, so a
token usually comes as ``?token=`` on the SockJS URL (sockjs-client keeps the query string on
every transport request) or in a first message.

Defaults (``DEFAULT_SETTINGS``; any key can be given in ``settings``, unknown keys are an error):
websocket enabled (``"websocket": False`` or ``disabled_transports`` turn transports off),
``heartbeat_delay`` 25 s, ``disconnect_delay`` 5 s, ``response_limit`` 128 KiB per streaming
response, ``jsessionid`` False (sockjs-node's default; True sets the JSESSIONID cookie for sticky
load balancers), ``verify_ip`` True (a polling session only accepts requests from the IP that
opened it), ``websocket_allow_origin`` ``"*"`` (the application checks Origin itself and closes
with 1008), ``session_check_interval`` 1 s, ``sockjs_url`` the sockjs-client 1.x build the iframe
page loads.
"""

import email.utils
import hashlib
import html
import logging
import re
import secrets
import time
import warnings

from tornado import iostream, websocket
from tornado.ioloop import IOLoop, PeriodicCallback

with warnings.catch_warnings():
    # Importing sockjs-tornado decorates its handlers with a shim Tornado 6 no longer needs; nothing to act on.
    warnings.filterwarnings("ignore", "@asynchronous is deprecated", DeprecationWarning)
    from sockjs.tornado import proto, router, session, sessioncontainer, static, stats, transports
    from sockjs.tornado.conn import SockJSConnection
    from sockjs.tornado.transports import htmlfile

__all__ = [
    "DEFAULT_SETTINGS",
    "CompatConnectionInfo",
    "CompatRouter",
    "CompatSession",
    "SockJSConnection",
    "make_sockjs_router",
    "pending_bytes",
    "unsent_bytes",
]

LOG = logging.getLogger(__name__)

DEFAULT_SETTINGS = {
    "session_check_interval": 1,
    "disconnect_delay": 5,
    "heartbeat_delay": 25,
    "disabled_transports": [],
    "websocket": True,
    "sockjs_url": "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js",
    "response_limit": 128 * 1024,
    "jsessionid": False,
    "immediate_flush": True,
    "disable_nagle": True,
    "verify_ip": True,
    "websocket_allow_origin": "*",
}

NO_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0"
CACHE_SECONDS = 31536000
CALLBACK_RE = re.compile(r"[a-zA-Z0-9_.-]+")

IFRAME_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="%s"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""


def close_frame(code: int, reason: str) -> str:
    """The SockJS close frame, JSON-encoded like sockjs-node's: ``c[3000,"Go away!"]``."""
    return "c" + proto.json_encode([code, reason])


def _ws_close_args(code: int, reason: str) -> tuple[int, str]:
    """A code and reason a WebSocket close frame may carry (RFC 6455 codes, reason <= 123 bytes)."""
    if not (3000 <= code <= 4999 or (1000 <= code <= 1014 and code not in (1004, 1005, 1006))):
        code = 1000
    data = reason.encode("utf-8")[:123]
    return code, data.decode("utf-8", "ignore")


def unsent_bytes(stream) -> int:
    """Bytes written to a Tornado ``IOStream`` and not yet handed to the socket (0 for None or a closed one).

    IOStream has no public counter for this; its two write indexes are what it flushes by. Native
    WebSocket connections measure their backlog with this too (the tests check it against a client that
    does not read, so a Tornado that renames them fails a test instead of hiding every backlog).
    """
    if stream is None or stream.closed():
        return 0
    return max(0, stream._total_write_index - stream._total_write_done_index)


def _handler_stream(handler):
    """The socket stream under a SockJS transport handler: its WebSocket's, else its HTTP connection's."""
    if handler is None:
        return None
    ws_connection = getattr(handler, "ws_connection", None)
    stream = getattr(ws_connection, "stream", None)
    if stream is None:
        connection = getattr(getattr(handler, "request", None), "connection", None)
        stream = getattr(connection, "stream", None)
    return stream


def pending_bytes(connection) -> int:
    """Bytes queued for ``connection`` and not yet sent: its session queue plus the socket buffer.

    On polling transports output waits in the session between polls; on streaming and WebSocket
    transports it waits in Tornado's stream buffer while the client reads slowly. Frames are
    JSON with non-ASCII escaped, so characters are bytes. A closed connection counts 0.
    """
    sess = getattr(connection, "session", None)
    if sess is None or sess.is_closed:
        return 0
    queued = len(getattr(sess, "send_queue", "") or "")
    return queued + unsent_bytes(_handler_stream(sess.handler))


class CompatConnectionInfo(session.ConnectionInfo):
    """What a connection learns about its client when it opens (see the module docstring)."""

    def __init__(self, ip, cookies, arguments, headers, path, transport):
        super().__init__(ip, cookies, arguments, headers, path)
        self.transport = transport

    def get_argument(self, name):
        """The first query argument ``name`` as ``str``, or None."""
        values = self.arguments.get(name)
        return values[0] if values else None


class CompatSession(session.Session):
    """One SockJS session: its queue, heartbeat and close, on every HTTP and WebSocket transport."""

    def set_handler(self, handler, start_heartbeat=True):
        if self.handler is None and self.is_closed and not self._ip_mismatch(handler):
            # A closed session answers each new request with what is left, then the close frame.
            if self.send_queue:
                handler.send_pack("a[%s]" % self.send_queue)
                self.send_queue = ""
            if handler.can_send_frame():
                handler.send_pack(close_frame(*self.get_close_reason()))
            return False
        # Polling transports start the heartbeat themselves; streaming ones never asked for it.
        start = start_heartbeat or not getattr(handler, "single_frame", False)
        return super().set_handler(handler, start)

    def _ip_mismatch(self, handler) -> bool:
        return bool(self._verify_ip and self.conn_info is not None
                    and handler.request.remote_ip != self.conn_info.ip)

    def verify_state(self):
        try:
            super().verify_state()
        except Exception:
            LOG.exception("SockJS on_open failed")
            self.close(1011, "Internal error")

    def close(self, code=3000, message="Go away!"):
        if self.state == session.CLOSED:
            return
        handler = self.handler
        if handler is not None and handler.can_send_frame():
            if self.send_queue:
                handler.send_pack("a[%s]" % self.send_queue)
                self.send_queue = ""
            # A polling response carries one frame: if it went, the next poll gets the close frame.
            if handler.can_send_frame():
                handler.send_pack(close_frame(code, message))
        session.BaseSession.close(self, code, message)

    def _heartbeat(self):
        if self.handler is None:
            self.stop_heartbeat()
        elif self.handler.can_send_frame():  # never a second frame into a polling response
            self.handler.send_pack(proto.HEARTBEAT)


class CompatRouter(router.SockJSRouter):
    """Routes one SockJS service (a prefix) to its connection class and owns its sessions.

    Unlike ``SockJSRouter`` it starts no timer when built (the session sweeper and stats start on
    first use, inside the loop that serves them) and routes to the compat transports below.
    """

    def __init__(self, connection, prefix: str, settings: dict | None = None):
        # SockJSRouter.__init__ is not called: it starts timers at once and routes to its own classes.
        self._connection = connection
        self.settings = _merge_settings(settings or {})
        self.websockets_enabled = "websocket" not in self.settings["disabled_transports"]
        self.cookie_needed = bool(self.settings["jsessionid"])
        self._session_kls = CompatSession
        self._sessions = sessioncontainer.SessionContainer()
        self._sessions_cleanup = None
        self._stats = None
        self._transport_urls = self._make_urls(re.escape(prefix.rstrip("/")))

    @property
    def io_loop(self):
        return IOLoop.current()

    @property
    def stats(self):
        if self._stats is None:
            self._stats = stats.StatsCollector(None)
        return self._stats

    def create_session(self, session_id, register=True):
        if self._sessions_cleanup is None:
            interval_ms = self.settings["session_check_interval"] * 1000
            self._sessions_cleanup = PeriodicCallback(self._sessions.expire, interval_ms)
            self._sessions_cleanup.start()
        return super().create_session(session_id, register)

    def stop(self) -> None:
        """Stop this router's timers (sessions stay as they are)."""
        if self._sessions_cleanup is not None:
            self._sessions_cleanup.stop()
            self._sessions_cleanup = None
        if self._stats is not None:
            self._stats._callback.stop()

    def _make_urls(self, prefix: str) -> list:
        kwargs = dict(server=self)
        base = prefix + r"/[^/.]+/(?P<session_id>[^/.]+)"
        urls = [(base + "/xhr_send$", XhrSendHandler, kwargs), (base + "/jsonp_send$", JSONPSendHandler, kwargs)]
        for name, handler in TRANSPORTS.items():
            if name not in self.settings["disabled_transports"]:
                urls.append((f"{base}/{name}$", handler, kwargs))
        urls.append((prefix + "/info$", InfoHandler, kwargs))
        urls.append((prefix + r"/iframe[0-9a-z_.-]*\.html$", IFrameHandler, kwargs))
        if self.websockets_enabled:
            urls.append((prefix + "/websocket$", RawWebSocketTransport, kwargs))
        urls.append((prefix + "/?$", GreetingsHandler, kwargs))
        return urls


def _merge_settings(overrides: dict) -> dict:
    unknown = set(overrides) - set(DEFAULT_SETTINGS)
    if unknown:
        raise ValueError(f"unknown SockJS settings: {sorted(unknown)}")
    merged = {**DEFAULT_SETTINGS, **overrides}
    disabled = list(merged["disabled_transports"])
    if not merged["websocket"] and "websocket" not in disabled:
        disabled.append("websocket")
    merged["disabled_transports"] = disabled
    merged["websocket"] = "websocket" not in disabled
    return merged


def _close_with_code(self, code=3000, reason="Go away!"):
    """Close the session; the client gets ``c[code,"reason"]`` (and a WebSocket close frame)."""
    self.session.close(code, reason)


def _with_close_codes(connection_factory):
    if connection_factory.close is not SockJSConnection.close:
        return connection_factory
    namespace = {"close": _close_with_code, "__module__": connection_factory.__module__,
                 "__doc__": connection_factory.__doc__, "__qualname__": connection_factory.__qualname__}
    return type(connection_factory.__name__, (connection_factory,), namespace)


def make_sockjs_router(connection_factory, prefix: str, *, settings: dict | None = None) -> CompatRouter:
    """A router serving ``connection_factory`` (a SockJSConnection subclass) at ``prefix``.

    ``prefix`` is a path without trailing slash (``/ws/orders``); add ``router.urls`` to the
    Application. It may be built before the IOLoop runs. ``settings`` override ``DEFAULT_SETTINGS``.
    """
    return CompatRouter(_with_close_codes(connection_factory), prefix, settings)


# Handlers ---------------------------------------------------------------------------------------


class _TransportMixin:
    """What every compat transport shares: connection info and the frame-sending contract."""

    single_frame = False

    def get_conn_info(self):
        request = self.request
        arguments = {name: [v.decode("utf-8", "replace") for v in values]
                     for name, values in request.query_arguments.items()}
        return CompatConnectionInfo(request.remote_ip, request.cookies, arguments,
                                    request.headers.copy(), request.path, self.name)


class _HTTPMixin(_TransportMixin):
    """CORS, caching and cookie headers as sockjs-node sends them."""

    _connection_lost = False

    def preflight(self):
        origin = self.request.headers.get("Origin")
        if origin:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
        else:
            self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Vary", "Origin")
        headers = self.request.headers.get("Access-Control-Request-Headers")
        if headers:
            self.set_header("Access-Control-Allow-Headers", headers)

    def disable_cache(self):
        self.set_header("Cache-Control", NO_CACHE)

    def enable_cache(self):
        self.set_header("Cache-Control", "public, max-age=%d" % CACHE_SECONDS)
        self.set_header("Expires", email.utils.formatdate(time.time() + CACHE_SECONDS, usegmt=True))
        self.set_header("Access-Control-Max-Age", str(CACHE_SECONDS))

    def compute_etag(self):
        return None

    def on_connection_close(self):
        self._connection_lost = True
        super().on_connection_close()

    def can_send_frame(self) -> bool:
        if self._finished or self._connection_lost:
            return False
        return self.active or not self.single_frame

    def _valid_callback(self):
        """The ``c`` argument, or None after answering 500 (without echoing it)."""
        callback = self.get_argument("c", None, strip=False)
        if callback and CALLBACK_RE.fullmatch(callback):
            return callback
        self.set_status(500)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish('"callback" parameter required' if not callback else 'invalid "callback" parameter')
        return None


class _StreamingMixin(_HTTPMixin):
    """Streaming responses end when the session closes or ``response_limit`` bytes went out."""

    def prepare(self):
        super().prepare()
        if self.request.version == "HTTP/1.0":
            # A body of unknown length ends only when the connection closes: tell the client, and
            # make Tornado close it (it would otherwise honour the 1.0 client's keep-alive).
            self.request.headers["Connection"] = "close"
            self.set_header("Connection", "close")
            if hasattr(self.request.connection, "_disconnect_on_finish"):
                self.request.connection._disconnect_on_finish = True


class XhrPollingTransport(_HTTPMixin, transports.XhrPollingTransport):
    single_frame = True


class XhrStreamingTransport(_StreamingMixin, transports.XhrStreamingTransport):
    pass


class EventSourceTransport(_StreamingMixin, transports.EventSourceTransport):
    def get(self, session_id):
        self._auto_finish = False  # the session finishes the response (sockjs-tornado does the same)
        self.preflight()
        self.handle_session_cookie()
        self.disable_cache()
        self.set_header("Content-Type", "text/event-stream")
        self.write("\r\n")
        self.flush()
        if not self._attach_session(session_id):
            self.finish()
        elif self.session:
            self.session.flush()


class HtmlFileTransport(_StreamingMixin, transports.HtmlFileTransport):
    def get(self, session_id):
        self._auto_finish = False
        self.preflight()
        self.handle_session_cookie()
        self.disable_cache()
        callback = self._valid_callback()
        if callback is None:
            return
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(htmlfile.HTMLFILE_HEAD % callback)
        self.flush()
        if not self._attach_session(session_id):
            self.finish()
        elif self.session:
            self.session.flush()


class JSONPTransport(_HTTPMixin, transports.JSONPTransport):
    single_frame = True

    def get(self, session_id):
        self.handle_session_cookie()
        self.disable_cache()
        if self._valid_callback() is not None:
            super().get(session_id)

    def send_pack(self, message, binary=False):
        if binary:
            raise ValueError("binary not supported for JSONPTransport")
        self.active = False
        # The /**/ prefix keeps the body from being read as anything but a script call.
        body = "/**/%s(%s);\r\n" % (self.callback, proto.json_encode(message))
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.set_header("Content-Length", len(body))
        self.write(body)
        self.flush().add_done_callback(self.send_complete)


class _SendMixin(_HTTPMixin):
    """xhr_send and jsonp_send: a JSON array of messages for an open session, or a 404/500 saying why."""

    def _start(self):
        self.preflight()
        self.handle_session_cookie()
        self.disable_cache()
        self.set_header("Content-Type", "text/plain; charset=UTF-8")

    def _deliver(self, session_id, payload) -> bool:
        sess = self._get_session(session_id)
        if sess is None or sess.is_closed:
            self.set_status(404)
            return False
        if not payload:
            return self._fail("Payload expected.")
        try:
            messages = proto.json_decode(payload)
        except ValueError:
            return self._fail("Broken JSON encoding.")
        if not isinstance(messages, list):
            return self._fail("Payload expected.")
        try:
            sess.on_messages(messages)
        except Exception:
            LOG.exception("SockJS %s: on_message failed", self.request.path.rsplit("/", 1)[-1])
            sess.close()
            self.set_status(500)
            return False
        return True

    def _fail(self, text) -> bool:
        self.set_status(500)
        self.write(text)
        return False


class XhrSendHandler(_SendMixin, transports.XhrSendHandler):
    def post(self, session_id):
        self._start()
        if self._deliver(session_id, self.request.body):
            self.set_status(204)

    def flush(self, include_footers=False):
        # Tornado drops Content-Type from a 204; Firefox then guesses XML and complains.
        if self.get_status() == 204:
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
        return super().flush(include_footers)


class JSONPSendHandler(_SendMixin, transports.JSONPSendHandler):
    def post(self, session_id):
        self._start()
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            payload = self.get_body_argument("d", None, strip=False)
        else:
            payload = self.request.body
        if self._deliver(session_id, payload):
            self.write("ok")


class _WebSocketMixin(_TransportMixin):
    """WebSocket transports: empty 405 for non-GET, coded close frames, no raise on a closed socket."""

    async def _execute(self, transforms, *args, **kwargs):
        if self.request.method != "GET":
            self._transforms = transforms
            self.set_status(405)
            self.set_header("Allow", "GET")
            self.clear_header("Content-Type")
            self.finish()
            return
        await super()._execute(transforms, *args, **kwargs)

    def can_send_frame(self) -> bool:
        return self.ws_connection is not None and not self.ws_connection.is_closing()

    def send_pack(self, message, binary=False):
        try:
            future = self.write_message(message, binary)
        except (websocket.WebSocketClosedError, iostream.StreamClosedError):
            self.server.io_loop.add_callback(self.on_close)
            return
        future.add_done_callback(_ignore_closed)

    def session_closed(self):
        code, reason = self.session.get_close_reason() if self.session else (1000, "")
        try:
            self.close(*_ws_close_args(code, reason))
        finally:
            self._detach()


def _ignore_closed(future):
    if not future.cancelled():
        future.exception()  # retrieved: a peer gone mid-write is handled by on_close


class WebSocketTransport(_WebSocketMixin, transports.WebSocketTransport):
    def on_message(self, message):
        if not message or not self.session:
            return
        try:
            messages = proto.json_decode(message)
        except ValueError:
            # Broken framing from the client: drop the connection without an error-level log.
            LOG.debug("SockJS websocket: broken JSON framing")
            self.abort_connection()
            return
        try:
            self.session.on_messages(messages if isinstance(messages, list) else [messages])
        except Exception:
            LOG.exception("SockJS websocket: on_message failed")
            self.abort_connection()


class RawWebSocketTransport(_WebSocketMixin, transports.RawWebSocketTransport):
    pass


class InfoHandler(_HTTPMixin, static.InfoHandler):
    def get(self):
        self.preflight()
        self.disable_cache()
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        info = dict(websocket=self.server.websockets_enabled, cookie_needed=self.server.cookie_needed,
                    origins=["*:*"], entropy=secrets.randbits(32))
        self.write(proto.json_encode(info))


class IFrameHandler(_HTTPMixin, static.IFrameHandler):
    def get(self):
        page = (IFRAME_PAGE % html.escape(self.server.settings["sockjs_url"])).encode("utf-8")
        etag = '"%s"' % hashlib.md5(page).hexdigest()
        if etag.strip('"') in self.request.headers.get("If-None-Match", ""):
            self.set_status(304)
            return
        self.enable_cache()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("ETag", etag)
        self.write(page)


class GreetingsHandler(_HTTPMixin, static.GreetingsHandler):
    pass


TRANSPORTS = {
    "websocket": WebSocketTransport,
    "xhr": XhrPollingTransport,
    "xhr_streaming": XhrStreamingTransport,
    "jsonp": JSONPTransport,
    "eventsource": EventSourceTransport,
    "htmlfile": HtmlFileTransport,
}
