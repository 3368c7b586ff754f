"""What the server benchmarks share: a server process's lifecycle, a free loopback port, CPU and memory from /proc."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

__all__ = ["TICKS", "ServerProcess", "free_port", "cpu_seconds", "rss_mib"]

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


class ServerProcess:
    """A server on a free 127.0.0.1 port and a fresh data directory, ready once /healthz answers 200; on exit
    stopped with SIGTERM, its log scanned for errors, and the directory removed.

    `command(port, data_dir)` gives the command line; the process's output goes to `data_dir/server.log`.
    """

    def __init__(self, command: Callable[[int, str], list[str]], *, name: str = "server"):
        self.name, self.port = name, free_port()
        self.data_dir = tempfile.mkdtemp(prefix=f"sq-bench-{name}-")
        self.log_path = Path(self.data_dir) / "server.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command(self.port, self.data_dir), stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid  # a `taskset` prefix execs the server: the same pid
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:  # refused while starting (URLError is an OSError)
                if self.process.poll() is not None:
                    raise SystemExit(f"{name} exited: {self.log_path.read_text()}") from None
                time.sleep(0.1)
        raise SystemExit(f"{name} did not start")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        problems = [line for line in self.log_path.read_text().splitlines() if " ERROR " in line or "Traceback" in line]
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if problems:
            print(f"  {self.name} logged {len(problems)} error lines, first: {problems[0]}", flush=True)
