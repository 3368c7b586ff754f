"""The real server process: command line, environment variables, operator CLI, graceful shutdown."""

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket
import ujson

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore:make_current is deprecated", "ignore:clear_current is deprecated")


def run_cli(*args, stdin="", data_dir):
    return subprocess.run([sys.executable, str(ROOT / "stockquest.py"), *args, "--data-dir", str(data_dir)],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_help_documents_every_flag_and_its_environment_variable():
    result = subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--host", "--port", "--data-dir", "--seed", "--tick-ms", "--speed", "--jwt-secret",
                 "--allow-origin", "--max-connections", "--log-level"):
        assert flag in result.stdout
        assert "STOCKQUEST_" + flag[2:].upper().replace("-", "_") in result.stdout


def test_bad_flag_value_exits_non_zero_with_a_message():
    result = subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "--tick-ms", "-5"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "tick-ms" in result.stderr


def test_environment_variable_sets_the_port_and_data_dir_is_created(start_server, tmp_path, free_port):
    port = free_port()
    start_server(env={"STOCKQUEST_PORT": str(port)}, port=port)
    assert (tmp_path / "data" / "stockquest.db").exists()
    secret = tmp_path / "data" / "jwt_secret"
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"


def test_sigterm_closes_sockets_with_1001_and_exits_zero_within_five_seconds(start_server, io_loop):
    process, port = start_server()

    async def scenario():
        conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/market-data")
        hello = ujson.loads(await conn.read_message())
        assert hello["type"] == "CONNECTION_ESTABLISHED"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        while await conn.read_message() is not None:
            pass
        return conn.close_code, started

    code, started = io_loop.run_sync(scenario, timeout=10)
    assert code == 1001
    assert process.wait(timeout=5) == 0
    assert time.monotonic() - started < 5


def test_operator_adds_teacher_who_can_then_log_in_while_server_runs(start_server, tmp_path):
    _, port = start_server()
    data_dir = tmp_path / "data"
    added = run_cli("user", "add", "msmith", "--role", "teacher", stdin="a long password\n", data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    again = run_cli("user", "add", "MSmith", "--role", "student", stdin="another password\n", data_dir=data_dir)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1
    bad_role = run_cli("user", "add", "zed", "--role", "king", stdin="a long password\n", data_dir=data_dir)
    assert bad_role.returncode != 0
    client = tornado.httpclient.HTTPClient()
    try:
        response = client.fetch(f"http://127.0.0.1:{port}/api/auth/login", method="POST",
                                body=ujson.dumps({"username": "msmith", "password": "a long password"}))
        login = ujson.loads(response.body)
        assert login["user"]["role"] == "teacher"
        demoted = run_cli("user", "set-role", "msmith", "--role", "student", data_dir=data_dir)
        assert demoted.returncode == 0, demoted.stderr
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            client.fetch(f"http://127.0.0.1:{port}/api/stats",
                         headers={"Authorization": f"Bearer {login['token']}"})
        assert refused.value.code == 403  # the stored role decides, at once
    finally:
        client.close()


def test_access_log_never_contains_the_token(start_server, tmp_path, io_loop):
    _, port = start_server("--log-level", "DEBUG")

    async def connect_with_token():
        conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/market-data?token=SECRETTOKEN")
        await conn.read_message()
        conn.close()

    io_loop.run_sync(connect_with_token, timeout=10)
    time.sleep(0.3)
    log_text = (tmp_path / "server-0.log").read_text()
    assert "/ws/market-data" in log_text
    assert "SECRETTOKEN" not in log_text


def test_a_nul_byte_in_a_file_path_is_not_found_and_leaves_no_token_or_traceback_in_the_log(start_server, tmp_path):
    _, port = start_server("--log-level", "DEBUG")
    for path in ("/static/%00x.js", "/vendor/sockjs-client/%00x.js"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}?token=SECRETTOKEN", timeout=10)
        assert refused.value.code == 404
    time.sleep(0.3)
    log_text = (tmp_path / "server-0.log").read_text()
    assert "SECRETTOKEN" not in log_text and "Traceback" not in log_text


def test_the_log_formatter_blanks_tokens_and_passwords_wherever_they_are_quoted():
    import logging

    import stockquest

    record = logging.LogRecord("tornado.application", logging.ERROR, __file__, 1,
                               "Uncaught exception GET /x?token=abc.def-ghi&v=2 %r", ("password=hunter2",), None)
    text = stockquest.ContextFormatter("%(message)s").format(record)
    assert "abc.def" not in text and "hunter2" not in text and "&v=2" in text
    assert "eyJ1" not in stockquest.ContextFormatter("%(message)s").format(
        logging.LogRecord("x", logging.INFO, __file__, 1, "Authorization: Bearer eyJ0.eyJ1.sig", (), None))
    bare = logging.LogRecord("x", logging.ERROR, __file__, 1, "token refused: %s",
                             ("eyJhbGciOiJI.eyJzdWIiOiIx.c2ln",), None)
    assert "eyJzdWIiOiIx" not in stockquest.ContextFormatter("%(message)s").format(bare)  # a JWT quoted bare


@pytest.mark.parametrize("fault", ["data dir is a file", "corrupt database", "locked database", "port taken"])
def test_a_server_that_cannot_use_its_data_or_port_says_why_in_one_line_and_exits_1(tmp_path, free_port, fault):
    import socket
    import sqlite3

    data_dir, port, holders = tmp_path / "data", free_port(), []
    if fault == "data dir is a file":
        data_dir.write_text("not a folder")
    elif fault == "corrupt database":
        data_dir.mkdir()
        (data_dir / "stockquest.db").write_bytes(b"this is not a database " * 200)
    elif fault == "locked database":
        data_dir.mkdir()
        lock = sqlite3.connect(data_dir / "stockquest.db", isolation_level=None)
        lock.execute("CREATE TABLE t (x)")
        lock.execute("BEGIN EXCLUSIVE")  # another program holds the database for writing
        holders.append(lock)
    else:
        taken = socket.socket()
        taken.bind(("127.0.0.1", port))
        taken.listen()
        holders.append(taken)
    try:
        result = subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "--data-dir", str(data_dir),
                                 "--port", str(port), "--host", "127.0.0.1", "--seed", "1"],
                                capture_output=True, text=True, timeout=60)
    finally:
        for holder in holders:
            holder.close()
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and "CRITICAL" in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert ("cannot listen on" if fault == "port taken" else "cannot use the data in") in lines[0]
