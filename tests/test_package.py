"""`pip install` gives a working `stockquest`: the wheel built from this checkout, installed in a fresh venv and
run from an empty folder, serves the dashboard, its files and its browser libraries and the shipped scenarios, and
manages accounts. Every check runs the installed copy (its modules are asserted to load from the venv), never this
checkout."""

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

import stockquest
from tests.conftest import _free_port, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
OUR_MODULES = ("stockquest", "domain", "realtime", "services", "handlers", "sockjs_compat", "stockquest_client")
PAGE_FILES = re.compile(r'(?:src|href)="(/(?:static|vendor)/[^"?]+)')
PASSWORD = "a long teacher password"
MISSING = "browser libraries are missing"  # the server's warning


def get(url: str, data: bytes | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def checkout_file(url_path: str) -> Path:
    """The checkout's file behind a URL the page uses: /static/x is static/x, /vendor/lib/x is lib's dist/x."""
    if url_path.startswith("/vendor/"):
        library, name = url_path.removeprefix("/vendor/").split("/", 1)
        return ROOT / "node_modules" / library / "dist" / name
    return ROOT / url_path.lstrip("/")


@pytest.fixture(scope="module")
def installed_server(installed_package, tmp_path_factory):
    """The installed `stockquest` command on a free port, run from an empty folder with only the venv on PATH."""
    folder = tmp_path_factory.mktemp("installed-server")
    port, log_path = _free_port(), folder / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            ["stockquest", "--port", str(port), "--data-dir", str(folder / "data"), "--seed", "5"],
            cwd=installed_package.workdir, env=installed_package.env(), stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_healthy(port, process, log_path, timeout=60)
        yield f"http://127.0.0.1:{port}", folder / "data", log_path
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_wheel_carries_the_code_the_dashboard_its_browser_libraries_docs_and_deploy_files(installed_package):
    names = set(zipfile.ZipFile(installed_package.wheel).namelist())
    files = {name.removeprefix("stockquest_files/") for name in names if name.startswith("stockquest_files/")}
    assert "stockquest.py" in names and {name.split("/")[0] for name in names} >= set(OUR_MODULES[1:])
    assert {str(path.relative_to(ROOT)) for path in (ROOT / "static").rglob("*") if path.is_file()} <= files
    assert {"docs/deployment.md", "docs/protocol.md", "deploy/systemd/stockquest.service",
            "deploy/nginx/stockquest.conf"} <= files
    assert {str(path.relative_to(ROOT)) for path in (ROOT / "scenarios").glob("*.toml")} <= files
    for library, page_file in stockquest.BROWSER_LIBRARIES.items():
        assert {f"node_modules/{library}/dist/{page_file}", f"node_modules/{library}/LICENSE"} <= files
    assert not any(name.startswith(("tests/", "bench/", "examples/", "node_modules/")) for name in names)


def test_the_installed_command_runs_its_own_copy_from_the_venv_not_this_checkout(installed_package):
    script = ("import importlib, json, sys; "
              "print(json.dumps([importlib.import_module(name).__file__ for name in sys.argv[1:]]))")
    loaded = subprocess.run([str(installed_package.python), "-c", script, *OUR_MODULES], capture_output=True,
                            text=True, timeout=60, cwd=installed_package.workdir, env=installed_package.env())
    assert loaded.returncode == 0, loaded.stderr
    for path in json.loads(loaded.stdout):
        assert Path(path).is_relative_to(installed_package.venv), path
    assert installed_package.command.read_text().startswith(f"#!{installed_package.python}")


def test_stockquest_version_and_python_dash_m_stockquest_name_the_packaged_version(installed_package):
    for command in (["stockquest"], ["python", "-m", "stockquest"]):
        result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60,
                                cwd=installed_package.workdir, env=installed_package.env())
        assert result.stdout.strip() == f"stockquest {stockquest.__version__}", result.stderr
    assert installed_package.wheel.name.startswith(f"stockquest-{stockquest.__version__}-")


def test_the_installed_server_answers_healthz_with_json_and_serves_its_files_from_the_venv(
        installed_package, installed_server):
    base, _, log_path = installed_server
    status, content_type, body = get(base + "/healthz")
    assert (status, content_type.split(";")[0], json.loads(body)["status"]) == (200, "application/json", "ok")
    log = log_path.read_text()
    served_from = re.search(r"dashboard files in (\S+), browser libraries in (\S+)", log)
    assert served_from, log
    assert all(Path(folder).is_relative_to(installed_package.venv) for folder in served_from.groups()), log
    assert MISSING not in log


def test_the_installed_server_serves_the_dashboard_and_every_file_the_page_loads(installed_server):
    base, _, _ = installed_server
    status, content_type, page = get(base + "/")
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    assert b"<title>" in page and b'id="server-config"' in page
    loaded = set(PAGE_FILES.findall(page.decode()))
    assert {f"/vendor/{library}/{name}" for library, name in stockquest.BROWSER_LIBRARIES.items()} <= loaded
    assert {"/static/css/app.css", "/static/js/main.js"} <= loaded
    # Modules imported by other modules are not in the page: every file of static/ must be there too.
    every_static = {"/" + str(path.relative_to(ROOT)) for path in (ROOT / "static").rglob("*") if path.is_file()}
    for url_path in sorted(loaded | every_static):
        status, _, body = get(base + url_path)
        assert (url_path, status) == (url_path, 200)
        assert body == checkout_file(url_path).read_bytes(), url_path


def test_stockquest_user_add_from_the_installed_command_makes_a_teacher_who_can_log_in_and_list_scenarios(
        installed_package, installed_server):
    """The operator's command, while the server runs on the same data (docs/deployment.md does just that)."""
    base, data_dir, _ = installed_server
    result = subprocess.run(["stockquest", "user", "add", "msmith", "--role", "teacher", "--data-dir", str(data_dir)],
                            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
                            cwd=installed_package.workdir, env=installed_package.env())
    assert (result.returncode, result.stdout, result.stderr) == (0, "created user msmith (teacher)\n", "")
    status, _, body = get(base + "/api/auth/login", json.dumps({"username": "msmith", "password": PASSWORD}).encode())
    assert status == 200, body
    assert json.loads(body)["user"]["role"] == "teacher"
    # the teacher finds the scenarios the package ships
    request = urllib.request.Request(base + "/api/scenarios",
                                     headers={"Authorization": f"Bearer {json.loads(body)['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        listed = json.loads(response.read())
    assert [s["name"] for s in listed["scenarios"]] == sorted(path.stem for path in (ROOT / "scenarios").glob("*.toml"))


# --vendor-dir and the warning, on this checkout (no install needed) ----------------------------------------------

def test_every_browser_library_the_page_loads_is_a_runtime_dependency_in_package_json():
    """setup.py packages package.json's dependencies; the server serves and checks BROWSER_LIBRARIES."""
    page = (ROOT / "static" / "index.html").read_text()
    vendor = {path.split("/")[2]: path.split("/", 3)[3] for path in PAGE_FILES.findall(page)
              if path.startswith("/vendor/")}
    assert vendor == stockquest.BROWSER_LIBRARIES
    assert set(json.loads((ROOT / "package.json").read_text())["dependencies"]) == set(vendor)


def test_a_vendor_dir_without_the_libraries_starts_with_a_warning_naming_the_files_and_npm_ci(
        start_server, tmp_path):
    empty = tmp_path / "no-libraries"
    empty.mkdir()
    process, port = start_server("--vendor-dir", str(empty))
    status, _, _ = get(f"http://127.0.0.1:{port}/vendor/sockjs-client/sockjs.min.js")
    assert status == 404
    log = (tmp_path / "server-0.log").read_text()
    for library, name in stockquest.BROWSER_LIBRARIES.items():
        assert str(empty / library / "dist" / name) in log
    assert "npm ci" in log and "--vendor-dir" in log


def test_a_vendor_dir_elsewhere_is_where_the_libraries_are_served_from(start_server, tmp_path):
    node_modules = tmp_path / "node_modules"
    for library, name in stockquest.BROWSER_LIBRARIES.items():
        (node_modules / library / "dist").mkdir(parents=True)
        (node_modules / library / "dist" / name).write_text(f"/* {library} from elsewhere */")
    process, port = start_server(env={"STOCKQUEST_VENDOR_DIR": str(node_modules)})
    for library, name in stockquest.BROWSER_LIBRARIES.items():
        status, _, body = get(f"http://127.0.0.1:{port}/vendor/{library}/{name}")
        assert (status, body) == (200, f"/* {library} from elsewhere */".encode())
    assert MISSING not in (tmp_path / "server-0.log").read_text()
