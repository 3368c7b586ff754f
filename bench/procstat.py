"""What the server benchmarks share: a server's and a redis-server's lifecycle, a free loopback port, CPU and memory
from /proc."""

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

__all__ = ["TICKS", "RedisProcess", "ServerProcess", "free_port", "cpu_seconds", "machine_busy_seconds", "rss_mib",
           "settle"]

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


def machine_busy_seconds() -> float:
    """CPU seconds spent by everything on the machine, all cores (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS  # minus idle and iowait; guest is inside user


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def settle(pid: int, *, below_percent: float = 5.0, over_s: float = 0.5, timeout_s: float = 30.0) -> float:
    """Wait until `pid` uses less than `below_percent` of a core over `over_s`; returns the seconds waited.

    A server may keep working after /healthz answers (Stock Quest warms its signal engine for several seconds),
    which a measuring window would otherwise count as the load's cost.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        cpu = cpu_seconds(pid)
        time.sleep(over_s)
        if 100 * (cpu_seconds(pid) - cpu) / over_s < below_percent:
            break
    return time.monotonic() - start


class ServerProcess:
    """A server on a free 127.0.0.1 port and a fresh data directory, ready once /healthz answers 200; on exit
    stopped with SIGTERM, its log scanned for errors, and the directory removed.

    `command(port, data_dir)` gives the command line; the process's output goes to `data_dir/server.log`.
    `ready_s` is how long it took from spawning to the first 200 (polled every 10 ms: start-up is a goal).
    """

    def __init__(self, command: Callable[[int, str], list[str]], *, name: str = "server", timeout_s: float = 30):
        self.name, self.port = name, free_port()
        self.data_dir = tempfile.mkdtemp(prefix=f"sq-bench-{name}-")
        self.log_path = Path(self.data_dir) / "server.log"
        spawned = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command(self.port, self.data_dir), stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid  # a `taskset` prefix execs the server: the same pid
        while time.monotonic() - spawned < timeout_s:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        self.ready_s = time.monotonic() - spawned
                        return
            except OSError:  # refused while starting (URLError is an OSError)
                if self.process.poll() is not None:
                    raise SystemExit(f"{name} exited: {self.log_path.read_text()}") from None
                time.sleep(0.01)
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        raise SystemExit(f"{name} did not start in {timeout_s:g} s")

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


class RedisProcess:
    """A redis-server on a free 127.0.0.1 port in a fresh folder, without persistence, ready once it answers PING;
    on exit stopped with SIGTERM and the folder removed. `prefix` goes before the command (e.g. a `taskset`)."""

    def __init__(self, prefix: list[str] | tuple[str, ...] = (), *, timeout_s: float = 10):
        executable = shutil.which("redis-server")
        if executable is None:
            raise SystemExit("needs redis-server: apt-get install redis-server")
        self.port, self.folder = free_port(), tempfile.mkdtemp(prefix="sq-bench-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [*prefix, executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder, "--save", "",
             "--appendonly", "no", "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.pid = self.process.pid  # a `taskset` prefix execs redis-server: the same pid
        deadline = time.monotonic() + timeout_s
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise SystemExit(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def ping(self) -> bool:
        """Whether it answers PING (in the protocol's inline form: no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
