"""The shipped systemd unit (deploy/systemd/stockquest.service): valid for Debian's systemd, hardened, and its
command and settings really start the server. No systemd runs in CI's container, so the unit is checked offline
(systemd-analyze verify and security work without a running systemd) and its command is started directly: the
`stockquest` command of this checkout's wheel, pip-installed in a fresh venv (conftest's installed_package)."""

import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import Config
from tests.conftest import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "stockquest.service"
INSTALLED = "/opt/stockquest"  # where the unit expects the checkout (docs/deployment.md)
INSTALLED_VENV = INSTALLED + "/.venv"  # and the venv the package is pip-installed into
ANALYZE = shutil.which("systemd-analyze")
HEADROOM = 1000  # descriptors beyond one per connection: database, listening sockets, libraries, nginx hiccups


def read_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}; comments and blank lines skipped (no line continuations used)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service() -> dict[str, list[str]]:
    return read_unit(UNIT.read_text())["Service"]


def environment() -> dict[str, str]:
    """The unit's Environment= assignments (systemd's quoting is shell-like for these values)."""
    return dict(item.split("=", 1) for line in service()["Environment"] for item in shlex.split(line))


def for_this_checkout(text: str, venv: Path) -> str:
    """The installed venv moved to `venv` (so ExecStart names a real executable), the checkout to this one."""
    return text.replace(INSTALLED_VENV, str(venv)).replace(INSTALLED, str(ROOT))


def unit_for_this_checkout(folder: Path, venv: Path) -> Path:
    copy = folder / UNIT.name
    copy.write_text(for_this_checkout(UNIT.read_text(), venv))
    return copy


needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="no systemd-analyze (apt-get install systemd)")


@needs_analyze
def test_systemd_analyze_verify_finds_nothing_to_say_about_the_unit(tmp_path, installed_package):
    """verify exits 0 even for unknown keys or bad values (it only warns), so any output at all fails."""
    unit = unit_for_this_checkout(tmp_path, installed_package.venv)
    result = subprocess.run([ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    broken = tmp_path / "broken" / UNIT.name  # the same check does notice a mistake
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("ProtectSystem=", "ProtectSystm="))
    result = subprocess.run([ANALYZE, "verify", "--man=no", str(broken)], capture_output=True, text=True, timeout=60)
    assert "Unknown key 'ProtectSystm'" in result.stderr


@needs_analyze
def test_systemd_analyze_security_rates_the_unit_ok(tmp_path, installed_package):
    """An overall exposure above 2.0 (of 10) fails: dropping a hardening line shows up here."""
    unit = unit_for_this_checkout(tmp_path, installed_package.venv)
    result = subprocess.run([ANALYZE, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_runs_hardened_with_its_own_state_directory_and_restarts_on_failure():
    unit = service()
    assert unit.get("DynamicUser") == ["yes"] or unit.get("User", [""])[0] not in ("", "root")
    assert unit["StateDirectory"] == ["stockquest"]
    assert environment()["STOCKQUEST_DATA_DIR"] == "/var/lib/stockquest"  # the data lives in the state directory
    assert unit["ProtectSystem"] == ["strict"] and unit["NoNewPrivileges"] == ["yes"]
    assert unit["Restart"] in (["on-failure"], ["always"])
    assert unit["KillSignal"] == ["SIGTERM"]  # the server's graceful shutdown: 1001 to every client


def test_the_file_descriptor_limit_covers_the_connection_limit_with_headroom():
    limit = int(service()["LimitNOFILE"][-1].split(":")[-1])  # N or soft:hard; the hard limit is what can be used
    connections = int(environment().get("STOCKQUEST_MAX_CONNECTIONS", Config().max_connections))
    assert connections >= Config().max_connections  # the unit does not quietly lower the server's limit
    assert limit >= connections + HEADROOM


def test_every_setting_in_the_unit_is_one_the_server_reads():
    """A misspelt STOCKQUEST_ variable is ignored silently by the server: each must be named in --help."""
    help_text = " ".join(subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "--help"],
                                        capture_output=True, text=True, timeout=60).stdout.split())
    settings = [name for name in environment() if name.startswith("STOCKQUEST_")]
    assert settings and [name for name in settings if f"env {name}]" not in help_text] == []


def test_the_units_command_and_environment_start_the_server_and_sigterm_stops_it(tmp_path, free_port,
                                                                                  installed_package):
    """ExecStart and Environment as systemd would run them (the venv moved to the installed package's, the state
    dir to a temp folder), from / like systemd: the installed command needs nothing of the checkout."""
    port = free_port()
    env = {**environment(), "STOCKQUEST_DATA_DIR": str(tmp_path / "state"), "STOCKQUEST_PORT": str(port),
           "PATH": "/usr/bin:/bin"}
    command = [for_this_checkout(part, installed_package.venv) for part in shlex.split(service()["ExecStart"][0])]
    assert command == [str(installed_package.command)]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, env=env, cwd="/", stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_healthy(port, process, log_path)
        assert (tmp_path / "state" / "stockquest.db").exists()
        process.send_signal(getattr(signal, service()["KillSignal"][0]))
        timeout = float(service()["TimeoutStopSec"][0].removesuffix("s"))
        assert process.wait(timeout=timeout) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
