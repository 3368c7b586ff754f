"""The package as a teacher gets it: the wheel built from this checkout, pip-installed into a fresh venv.

Built from a copy of the checkout (without its .venv, data or old build/ folder, which could leak stale files into
the wheel), with the checkout's node_modules, as `npm ci` left it, beside the copy."""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "data", "build", "dist", "*.egg-info",
                                    "__pycache__", "*.pyc", ".pytest_cache", "artifacts", "results")
PIP_TIMEOUT_S = 900  # numpy and scipy come from the registry (its mirror): a minute or two, more on a busy machine


@dataclass(frozen=True)
class InstalledPackage:
    wheel: Path
    venv: Path
    workdir: Path  # an empty folder to run commands in: nothing of the checkout is importable from there

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "stockquest"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """This environment without anything pointing Python at the checkout or at another venv."""
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
               and not key.startswith("STOCKQUEST_")}
        return {**env, "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", **extra}


def runtime_constraints(folder: Path) -> Path:
    """requirements.txt's pins as pip constraints (which take no extras): the versions the test suite runs on."""
    lines = [re.sub(r"\[[^\]]*\]", "", line.split("#")[0]).strip()
             for line in (ROOT / "requirements.txt").read_text().splitlines()]
    path = folder / "constraints.txt"
    path.write_text("".join(f"{line}\n" for line in lines if line))
    return path


def run(command: list, *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def build_and_install(folder: Path) -> InstalledPackage:
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    if (ROOT / "node_modules").is_dir():
        (source / "node_modules").symlink_to((ROOT / "node_modules").resolve())
    workdir = folder / "cwd"
    workdir.mkdir()
    venv = folder / "venv"
    env = InstalledPackage(wheel=folder, venv=venv, workdir=workdir).env()
    # The fresh venv's own pip builds too: Debian's python3.11 has no pip outside a venv (python3.11-venv has one).
    run([shutil.which("python3.11") or "python3.11", "-m", "venv", str(venv)], timeout=120, cwd=workdir, env=env)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    run([*pip, "wheel", "--no-deps", "--wheel-dir", str(folder / "wheels"), str(source)],
        timeout=PIP_TIMEOUT_S, cwd=workdir, env=env)
    (wheel,) = (folder / "wheels").glob("stockquest-*.whl")
    run([*pip, "install", "--constraint", str(runtime_constraints(folder)), str(wheel)],
        timeout=PIP_TIMEOUT_S, cwd=workdir, env=env)
    return InstalledPackage(wheel=wheel, venv=venv, workdir=workdir)
