"""A real PostgreSQL for the tests: Debian's server on loopback in a temporary folder, one cluster per test session
and an empty database per test (`postgres_url`), or a cluster of a test's own that it may stop and start.

No mock. CI installs postgresql (.ci/run); without it these fixtures skip, which CI counts as a failure.
"""

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "postgres_bin", "postgres_server", "postgres_url"]


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian's /usr/lib/postgresql/15/bin), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A PostgreSQL cluster of its own on 127.0.0.1:`port`: trust authentication for user postgres, no fsync.

    initdb refuses to run as root, so as root the programs run as the postgres user, who owns the folder.
    """

    def __init__(self, bin_dir: Path):
        self.bin_dir, self.port = bin_dir, _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="stockquest-pg-"))
        self.data = self.folder / "data"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([*self._as_postgres, str(self.bin_dir / program), *args], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{program} failed: {done.stdout}{done.stderr}"

    def start(self) -> None:
        settings = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
                    " -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-o", settings, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder)


def new_server() -> PostgresServer:
    """A started cluster; skips (a failure in CI) when PostgreSQL is not installed."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    server = PostgresServer(bin_dir)
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server():
    """The test session's PostgreSQL cluster, with a database `tests` for `postgres_url`."""
    import psycopg

    server = new_server()
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE tests")
    yield server
    server.remove()


_schemas = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of an empty database of the test's own: a new schema, first in the connections' search_path (a
    schema costs nothing where CREATE DATABASE takes a tenth of a second). Dropped after the test."""
    import psycopg

    schema = f"test_{next(_schemas)}"
    with psycopg.connect(postgres_server.url("tests"), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield postgres_server.url("tests") + f"?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server.url("tests"), autocommit=True) as admin:
        # A connection the test left open would hold its locks.
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = 'tests' AND pid <> pg_backend_pid()")
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
