"""The shipped nginx site (deploy/nginx/stockquest.conf) in front of the real server: Debian's nginx on loopback.

How the shipped files are used: `run_nginx` reads deploy/nginx/stockquest.conf (the upstream) and the snippet it
includes, snippets/stockquest-site.conf (the server blocks), and makes only the substitutions given (listen ports
on 127.0.0.1, the upstream's port, the checkout's folder, a throw-away certificate), failing if any of them no
longer matches; `nginx.conf` written here only wraps them in the http {} block Debian's /etc/nginx/nginx.conf
would give them, with every path nginx writes in a temporary folder. So the locations, headers, timeouts and
buffering tested here are the shipped ones, over the HTTPS block. tests/test_nginx_cluster.py runs cluster.conf,
with the same snippet, the same way.
"""

import asyncio
import datetime
import http.client
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket
import ujson

from services.config import Config
from sockjs_compat import DEFAULT_SETTINGS as SOCKJS_SETTINGS
from tests.conftest import wait_healthy
from tests.test_sockjs_endpoints import TRANSPORTS, messages, sockjs_session

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "nginx" / "stockquest.conf"
SITE = ROOT / "deploy" / "nginx" / "snippets" / "stockquest-site.conf"  # included by stockquest.conf, cluster.conf
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MD = "/ws/market-data"

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="no nginx (apt-get install nginx)")


# nginx, started by the tests ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (clients trust it as their only CA) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def render(shipped: Path, substitutions: dict[str, str]) -> str:
    """A shipped file with these substitutions only; each must still match its text, so what runs is what ships."""
    text = shipped.read_text()
    for old, new in substitutions.items():
        assert old in text, f"{shipped.name} no longer contains {old!r}: update this test's substitutions"
        text = text.replace(old, new)
    return text


def site_config(*, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """The shared server blocks on loopback ports, serving this checkout's files with the test's certificate."""
    return render(SITE, {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "/opt/stockquest/": f"{ROOT}/",
        "/etc/letsencrypt/live/stocks.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/stocks.example.org/privkey.pem": str(key),
    })


@dataclass
class Proxy:
    process: subprocess.Popen
    folder: Path
    http_port: int
    https_port: int
    ca: Path

    def url(self, path: str, scheme: str = "https") -> str:
        return f"{scheme}://127.0.0.1:{self.https_port}{path}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nginx(folder: Path, app_port: int) -> Proxy:
    """The shipped single-server site (stockquest.conf) in front of the server on `app_port`."""
    return run_nginx(folder, SHIPPED, {"server 127.0.0.1:8080;": f"server 127.0.0.1:{app_port};"})


def run_nginx(folder: Path, shipped: Path, substitutions: dict[str, str]) -> Proxy:
    """nginx in the foreground running the site file `shipped` (with `substitutions`: its upstream) and the snippet
    it includes, everything it writes under `folder`; never /etc/nginx or /var."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(folder)
    http_port, https_port = _free_port(), _free_port()
    (folder / "stockquest.conf").write_text(render(shipped, substitutions))
    # `include snippets/...` is relative to the folder of nginx.conf: /etc/nginx when installed, `folder` here.
    (folder / "snippets").mkdir(exist_ok=True)
    (folder / "snippets" / SITE.name).write_text(site_config(http_port=http_port, https_port=https_port,
                                                             cert=cert, key=key))
    temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (folder / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {folder}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/access.log;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {folder}/stockquest.conf;
}}
""")
    command = [NGINX, "-p", str(folder), "-e", "stderr", "-c", str(folder / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    log_path = folder / "nginx.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=log_file, stderr=subprocess.STDOUT)
    proxy = Proxy(process, folder, http_port, https_port, cert)
    deadline = time.monotonic() + 10
    while True:
        assert process.poll() is None, log_path.read_text()
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            return proxy
        except OSError:
            assert time.monotonic() < deadline, f"nginx did not listen: {log_path.read_text()}"
            time.sleep(0.05)


@dataclass
class App:
    process: subprocess.Popen
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_app(folder: Path, *flags: str) -> App:
    """The server as nginx's upstream: on loopback, believing forwarding headers only from nginx (127.0.0.1)."""
    folder.mkdir(parents=True, exist_ok=True)
    port, log_path = _free_port(), folder / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "stockquest.py"), "--data-dir", str(folder / "data"), "--seed", "3",
             "--host", "127.0.0.1", "--port", str(port), "--trusted-proxy", "127.0.0.1", "--log-level", "WARNING",
             *flags], cwd=folder, stdout=log_file, stderr=subprocess.STDOUT)
    app = App(process, port, log_path)
    try:
        wait_healthy(port, process, log_path)
    except BaseException:
        app.stop()
        raise
    return app


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One server behind one nginx for the module. Sign-ups: one per address (the forwarding test counts them)."""
    folder = tmp_path_factory.mktemp("nginx")
    app = start_app(folder / "app", "--tick-ms", "100", "--sign-ups-per-minute", "0.5")
    try:
        proxy = start_nginx(folder / "nginx", app.port)
    except BaseException:
        app.stop()
        raise
    yield app, proxy
    proxy.stop()
    app.stop()


@pytest.fixture
def proxy(stack):
    return stack[1]


# clients ------------------------------------------------------------------------------------------------------

def fetch(proxy: Proxy, path: str, *, method="GET", body=None, headers=None, source="127.0.0.1",
          scheme="https") -> tuple[int, dict, bytes]:
    """One request to nginx from the loopback address `source`: (status, headers, body)."""
    if scheme == "https":
        conn = http.client.HTTPSConnection("127.0.0.1", proxy.https_port, timeout=15, context=proxy.tls(),
                                           source_address=(source, 0))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=15, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


async def open_websocket(proxy: Proxy, path=MD, origin=None):
    request = tornado.httpclient.HTTPRequest(proxy.url(path).replace("https:", "wss:", 1), ca_certs=str(proxy.ca),
                                             headers={"Origin": origin} if origin else {})
    return await tornado.websocket.websocket_connect(request)


async def read_until(conn, message_type, timeout=10.0) -> list[dict]:
    """Messages up to and including the first of `message_type`."""
    received = []
    while True:
        text = await asyncio.wait_for(conn.read_message(), timeout)
        assert text is not None, f"closed {conn.close_code} {conn.close_reason} before {message_type}: {received}"
        received.append(ujson.loads(text))
        if received[-1]["type"] == message_type:
            return received


# tests --------------------------------------------------------------------------------------------------------

def test_native_websocket_through_nginx_gets_established_and_live_quotes(proxy):
    """The upgrade must pass nginx: Upgrade/Connection headers and HTTP/1.1 to the upstream."""
    async def scenario():
        conn = await open_websocket(proxy)
        try:
            hello = await read_until(conn, "CONNECTION_ESTABLISHED")
            await conn.write_message(ujson.dumps({"type": "SUBSCRIBE", "requestId": "s1",
                                                  "data": {"symbols": ["NVTX", "QBIT"], "updateInterval": 100}}))
            received = await read_until(conn, "REAL_TIME_UPDATE")
            received += await read_until(conn, "REAL_TIME_UPDATE")
            return hello, received
        finally:
            conn.close()

    hello, received = asyncio.run(scenario())
    # nginx drops a connection silent for proxy_read_timeout: the server must speak more often than that.
    read_timeout_s = int(re.search(r"proxy_read_timeout (\d+)s;", SITE.read_text()).group(1))
    assert hello[-1]["data"]["heartbeatInterval"] / 1000 < read_timeout_s
    assert Config().ping_interval_s < read_timeout_s and SOCKJS_SETTINGS["heartbeat_delay"] < read_timeout_s
    types = [m["type"] for m in received]
    assert types[:2] == ["SUBSCRIPTION_CONFIRMED", "INITIAL_DATA"] and types.count("REAL_TIME_UPDATE") == 2
    assert {q["symbol"] for m in received if m["type"] == "REAL_TIME_UPDATE" for q in m["data"]["quotes"]} <= {
        "NVTX", "QBIT"}


def test_the_public_https_origin_is_allowed_through_nginx_and_a_foreign_one_refused_1008(proxy):
    """The server compares Origin with Host: nginx must pass the Host the browser used, port included."""
    async def scenario(origin):
        conn = await open_websocket(proxy, origin=origin)
        first = ujson.loads(await asyncio.wait_for(conn.read_message(), 10))
        if first["type"] == "ERROR":  # refused: the server closes after saying why
            while await asyncio.wait_for(conn.read_message(), 10) is not None:
                pass
        conn.close()
        return first, conn.close_code

    own, _ = asyncio.run(scenario(f"https://127.0.0.1:{proxy.https_port}"))
    assert own["type"] == "CONNECTION_ESTABLISHED"
    foreign, code = asyncio.run(scenario("https://evil.example"))
    assert foreign["type"] == "ERROR" and foreign["data"]["code"] == "FORBIDDEN" and code == 1008


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sockjs_client_through_nginx_receives_live_updates(proxy, transport, monkeypatch):
    """The real sockjs-client under Node; xhr-streaming only works if nginx does not buffer the response."""
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(proxy.ca))  # Node trusts the test certificate
    code, events, stderr = asyncio.run(sockjs_session(
        proxy.url(MD), transport,
        {"type": "SUBSCRIBE", "data": {"symbols": ["NVTX", "QBIT"], "updateInterval": 100}, "requestId": "s1"},
        until="REAL_TIME_UPDATE", count=3, timeout_ms=20_000))
    assert code == 0, stderr
    assert events[0] == {"event": "open", "transport": transport}
    received = messages(events)
    assert [m["type"] for m in received[:3]] == ["CONNECTION_ESTABLISHED", "SUBSCRIPTION_CONFIRMED", "INITIAL_DATA"]
    # xhr-polling may bring a fourth update in the same response as the third
    assert sum(m["type"] == "REAL_TIME_UPDATE" for m in received) >= 3
    assert [m["seq"] for m in received] == list(range(1, len(received) + 1))


def test_the_server_sees_each_client_address_that_nginx_forwards_and_no_address_a_client_claims(stack):
    """Per-address sign-up limits must count real clients behind nginx, and headers a client adds must not fool
    them (nginx overwrites X-Forwarded-For and X-Real-IP). That a client talking to the server directly cannot
    choose its address is tests/test_http_server.py::test_forwarding_headers_are_ignored_unless_the_peer_is_a_
    trusted_proxy; here the server trusts 127.0.0.1 (nginx) and allows one new account per address."""
    _, proxy = stack

    def guest(source, **headers):
        status, _, body = fetch(proxy, "/api/auth/guest", method="POST", body=ujson.dumps({"nickname": "Kim"}),
                                headers={"Content-Type": "application/json", **headers}, source=source)
        return status, body

    assert guest("127.0.0.2")[0] == 201
    status, body = guest("127.0.0.2")
    assert status == 429 and b"too many new accounts from this address" in body
    assert guest("127.0.0.3")[0] == 201  # another client behind the same proxy has its own allowance
    spoofed = {"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.8", "X-Scheme": "https"}
    assert guest("127.0.0.2", **spoofed)[0] == 429  # still 127.0.0.2: what the client claimed was replaced


def test_nginx_serves_the_dashboards_files_from_disk_with_cache_headers(proxy):
    """Hashed URLs (the page's static_url) are cached for a year; unhashed modules and libraries revalidate."""
    status, headers, page = fetch(proxy, "/")
    assert status == 200 and "default-src 'self'" in headers["content-security-policy"]  # the page: from the server
    assert headers["cache-control"] == "no-cache"
    hashed = re.findall(rb'"(/static/[^"?]+)\?v=([0-9a-f]+)"', page)
    assert {path for path, _ in hashed} >= {b"/static/css/app.css", b"/static/js/main.js"}
    for path, version in hashed:
        status, headers, body = fetch(proxy, f"{path.decode()}?v={version.decode()}")
        assert status == 200 and headers["cache-control"] == "public, max-age=31536000, immutable"
        assert body == (ROOT / path.decode().lstrip("/")).read_bytes()
    for path, content_type in [("/static/js/store.js", "application/javascript"),
                               ("/vendor/sockjs-client/sockjs.min.js", "application/javascript"),
                               ("/vendor/lightweight-charts/lightweight-charts.standalone.production.js",
                                "application/javascript")]:
        status, headers, _ = fetch(proxy, path)
        assert (status, headers["cache-control"], headers["content-type"]) == (200, "no-cache", content_type), path
        assert headers["x-content-type-options"] == "nosniff" and "etag" in headers


def test_plain_http_redirects_to_https_and_metrics_stay_private(proxy):
    status, headers, _ = fetch(proxy, "/ws/market-data?x=1", scheme="http")
    assert status == 301 and headers["location"] == "https://127.0.0.1/ws/market-data?x=1"
    assert fetch(proxy, "/metrics")[0] == 403
    assert fetch(proxy, "/healthz")[0] == 200


def _client_frame(payload: dict) -> bytes:
    """A masked WebSocket text frame (payload < 64 KiB)."""
    data, mask = ujson.dumps(payload).encode(), os.urandom(4)
    head = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else bytes([0x81, 0xFE]) + len(data).to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(size)


def test_a_client_that_stops_reading_behind_nginx_is_closed_4008(stack):
    """nginx must not absorb an unbounded backlog: a client that keeps asking but stops reading stalls nginx, then
    the server's socket, and the server closes it "slow consumer"; the close frame still reaches the client."""
    app, proxy = stack

    async def scenario():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # a slow link, not loopback's megabytes
        sock.connect(("127.0.0.1", proxy.https_port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, ssl=proxy.tls(), server_hostname="127.0.0.1",
                                                       limit=16 * 1024)
        writer.write(f"GET {MD} HTTP/1.1\r\nHost: 127.0.0.1:{proxy.https_port}\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n".encode())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writer.write(_client_frame({"type": "SUBSCRIBE", "data": {"symbols": ["NVTX", "QBIT", "SOLR"],
                                                                  "updateInterval": 100}}))
        history = {"type": "REQUEST_HISTORICAL", "data": {"symbol": "NVTX", "interval": "1m", "limit": 1000}}
        started = time.monotonic()
        while "closing slow consumer" not in app.log.read_text():  # asking (within the rate limit), never reading
            assert time.monotonic() - started < 40, "the server never saw the backlog: something absorbed it"
            writer.write(_client_frame(history))
            await asyncio.sleep(0.1)
        frames = 0
        while True:  # now read: everything queued, then the close frame
            opcode, payload = await asyncio.wait_for(_read_frame(reader), 10)
            if opcode == 0x8:
                writer.close()
                return frames, int.from_bytes(payload[:2], "big"), payload[2:].decode()
            frames += 1

    frames, code, reason = asyncio.run(scenario())
    assert (code, reason) == (4008, "slow consumer") and frames > 10


def test_sigterm_closes_websockets_with_1001_through_nginx(tmp_path):
    """A restart of the server must tell clients behind nginx "going away" (1001), not drop them (1006)."""
    app = start_app(tmp_path / "app")
    proxy = None
    try:
        proxy = start_nginx(tmp_path / "nginx", app.port)

        async def scenario():
            conn = await open_websocket(proxy)
            await read_until(conn, "CONNECTION_ESTABLISHED")
            app.process.send_signal(signal.SIGTERM)
            while await asyncio.wait_for(conn.read_message(), 10) is not None:
                pass
            return conn.close_code, conn.close_reason

        assert asyncio.run(scenario()) == (1001, "server shutting down")
        assert app.process.wait(timeout=10) == 0
    finally:
        if proxy is not None:
            proxy.stop()
        app.stop()


# Last in the module: Playwright's sync API holds this thread's event loop while the browser fixture lives.
def test_dashboard_in_chromium_through_nginx_signs_in_and_shows_live_quotes(browser, proxy):
    from tests.test_browser_dashboard import WAIT, sign_in_as_guest, watch_volume_changes

    context = browser.new_context(ignore_https_errors=True)  # the test's self-signed certificate
    context.set_default_timeout(WAIT)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in_as_guest(page, proxy.url(""), "Nia")
        assert page.locator("#connection").get_attribute("data-transport") == "websocket"
        watch_volume_changes(page)
        assert errors == []
    finally:
        context.close()
