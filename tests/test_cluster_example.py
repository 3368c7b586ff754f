"""deploy/cluster/run.sh starts what it says (Redis, PostgreSQL, two engine candidates, three gateways) and stops it
all on SIGTERM; a client trades through one of its gateways."""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import _free_port
from tests.postgres_server import postgres_bin
from tests.test_cluster import connect, post

ROOT = Path(__file__).resolve().parent.parent


def healthy(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


@pytest.fixture
def folder():
    if postgres_bin() is None or not shutil.which("redis-server"):
        pytest.skip("the example needs redis-server and postgresql (apt-get install, as .ci/run does)")
    path = Path(tempfile.mkdtemp(prefix="stockquest-cluster-"))
    path.chmod(0o755)  # the postgres user owns the database folder inside it when run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_example_cluster_starts_serves_a_trade_and_stops_on_sigterm(folder):
    gateways, engines = [_free_port() for _ in range(3)], [_free_port() for _ in range(2)]
    env = {**os.environ, "PYTHON": sys.executable, "GATEWAY_PORTS": " ".join(map(str, gateways)),
           "ENGINE_PORTS": " ".join(map(str, engines)), "REDIS_PORT": str(_free_port()),
           "POSTGRES_PORT": str(_free_port())}
    script = subprocess.Popen(["bash", str(ROOT / "deploy" / "cluster" / "run.sh"), str(folder)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not all((healthy(port) or {}).get("engine") == "elsewhere" for port in gateways):
            assert script.poll() is None, script.stdout.read()
            assert time.monotonic() < deadline, "the gateways never heard an engine"
            time.sleep(0.2)
        assert sum((healthy(port) or {}).get("engine") == "here" for port in engines) == 1

        status, account = post(gateways[1], "/api/auth/guest", {"nickname": "Example"})
        assert status == 201, account

        async def trade():
            client = await connect(gateways[2], "/ws/orders", account["token"])
            await client.expect("ACTIVE_ORDERS")
            await client.send("SUBMIT_ORDER", {"portfolioId": account["portfolioIds"][0], "symbol": "NVTX",
                                               "side": "BUY", "orderType": "MARKET", "quantity": 1}, request_id="o")
            assert (await client.wait_for("ORDER_SUBMITTED"))["requestId"] == "o"
            client.close()
        asyncio.run(asyncio.wait_for(trade(), 30))
    finally:
        script.send_signal(signal.SIGTERM)
        output, _ = script.communicate(timeout=60)
    assert "cluster stopped" in output, output
    assert not any(healthy(port) for port in gateways + engines), "a process outlived the script"
    assert not (folder / "postgres" / "data" / "postmaster.pid").exists(), "PostgreSQL was left running"
