"""The operator command line: `user add` and `user set-role`, also while the server holds the database."""

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from domain.clock import FakeClock
from domain.users import Role
from services.auth import verify_password
from services.storage import Storage
from services.users_cli import run

ROOT = Path(__file__).resolve().parent.parent


class Run:
    """One CLI invocation's exit status and output."""

    def __init__(self, argv, stdin_text=""):
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.status = run(argv, stdin=io.StringIO(stdin_text), stdout=self.stdout, stderr=self.stderr)

    @property
    def out_lines(self):
        return self.stdout.getvalue().splitlines()

    @property
    def err_lines(self):
        return self.stderr.getvalue().splitlines()


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def add(data_dir, name="ada", role="teacher", password="correct horse\n"):
    return Run(["user", "add", name, "--role", role, "--data-dir", str(data_dir)], password)


def stored(data_dir, name):
    with Storage.in_dir(data_dir, FakeClock()) as storage:
        user = storage.user_by_name(name)
        return user, storage.portfolios_of(user.id) if user else []


def test_add_creates_the_user_with_the_password_from_stdin(data_dir):
    result = add(data_dir)
    assert result.status == 0
    assert result.out_lines == ["created user ada (teacher)"]
    assert result.stderr.getvalue() == ""
    user, portfolios = stored(data_dir, "ada")
    assert user.role is Role.TEACHER
    assert verify_password("correct horse", user.password_hash)
    assert [(p.name, p.cash_cents) for p in portfolios] == [("Main", 10_000_000)]


def test_add_reads_only_the_first_line_and_strips_a_windows_line_end(data_dir):
    assert add(data_dir, password="first line\r\nsecond line\n").status == 0
    user, _ = stored(data_dir, "ada")
    assert verify_password("first line", user.password_hash)


def test_add_accepts_a_password_without_a_trailing_newline(data_dir):
    assert add(data_dir, password="no newline here").status == 0
    assert verify_password("no newline here", stored(data_dir, "ada")[0].password_hash)


def test_add_works_without_the_leading_user_word(data_dir):
    result = Run(["add", "ada", "--role", "student", "--data-dir", str(data_dir)], "correct horse\n")
    assert result.status == 0 and result.out_lines == ["created user ada (student)"]


@pytest.mark.parametrize("other", ["ada", "ADA"])
def test_add_of_taken_name_fails_with_one_line(data_dir, other):
    add(data_dir)
    result = add(data_dir, name=other, role="admin")
    assert result.status != 0
    assert len(result.err_lines) == 1 and "taken" in result.err_lines[0]
    assert result.stdout.getvalue() == ""
    assert stored(data_dir, "ada")[0].role is Role.TEACHER


@pytest.mark.parametrize("role", ["boss", "Admin", "", "root;"])
def test_add_with_bad_role_fails_with_one_line_and_creates_nothing(data_dir, role):
    result = add(data_dir, role=role)
    assert result.status != 0
    assert len(result.err_lines) == 1 and "role" in result.err_lines[0]
    assert not (data_dir / "stockquest.db").exists() or stored(data_dir, "ada")[0] is None


@pytest.mark.parametrize("password", ["", "\n", "short\n", "x" * 300 + "\n"])
def test_add_with_bad_or_missing_password_fails_with_one_line(data_dir, password):
    result = add(data_dir, password=password)
    assert result.status != 0
    assert len(result.err_lines) == 1 and "password" in result.err_lines[0]


@pytest.mark.parametrize("name", ["ab", "has space", "x" * 33, "guest-1234abcd", "a/../../etc", "-"])
def test_add_with_bad_username_fails_with_one_line(data_dir, name):
    result = add(data_dir, name=name)
    assert result.status != 0
    assert len(result.err_lines) == 1


@pytest.mark.parametrize("argv", [
    [], ["user"], ["user", "delete", "ada"], ["user", "add"], ["user", "add", "ada", "--role", "student"],
    ["user", "add", "ada", "--data-dir", "x"], ["user", "add", "ada", "--role", "student", "--data-dir", "x", "extra"],
])
def test_malformed_command_lines_fail_with_one_line(argv):
    result = Run(argv, "correct horse\n")
    assert result.status == 2
    assert len(result.err_lines) == 1 and result.err_lines[0].startswith("error:")


def test_help_goes_to_stdout_and_succeeds():
    result = Run(["user", "--help"])
    assert result.status == 0
    assert "set-role" in result.stdout.getvalue()


def test_set_role_changes_the_stored_role(data_dir):
    add(data_dir, role="teacher")
    result = Run(["user", "set-role", "ADA", "--role", "student", "--data-dir", str(data_dir)])
    assert result.status == 0
    assert result.out_lines == ["user ada is now student"]
    assert stored(data_dir, "ada")[0].role is Role.STUDENT


def test_set_role_of_unknown_user_fails_with_one_line(data_dir):
    add(data_dir)
    result = Run(["user", "set-role", "bob", "--role", "admin", "--data-dir", str(data_dir)])
    assert result.status == 1
    assert len(result.err_lines) == 1 and "bob" in result.err_lines[0]


def test_set_role_without_a_database_fails_and_creates_none(data_dir):
    result = Run(["user", "set-role", "ada", "--role", "admin", "--data-dir", str(data_dir)])
    assert result.status == 1 and len(result.err_lines) == 1
    assert not (data_dir / "stockquest.db").exists()


def test_add_and_set_role_work_while_the_server_holds_the_database_open(data_dir):
    with Storage.in_dir(data_dir, FakeClock()) as server:
        server.create_user("early", "Early", None, Role.STUDENT, 100)
        assert add(data_dir, name="ada", role="teacher").status == 0
        assert server.user_by_name("ada").role is Role.TEACHER  # the server sees it at once
        assert Run(["user", "set-role", "ada", "--role", "student", "--data-dir", str(data_dir)]).status == 0
        assert server.user_by_name("ada").role is Role.STUDENT
        assert server.count_users() == 2


def test_cli_in_another_process_works_while_the_server_process_has_the_database(data_dir):
    script = (
        "import sys; from services.users_cli import run; "
        "sys.exit(run(sys.argv[1:], stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr))"
    )
    with Storage.in_dir(data_dir, FakeClock()) as server:
        server.create_user("early", "Early", None, Role.STUDENT, 100)
        done = subprocess.run(
            [sys.executable, "-c", script, "user", "add", "ada", "--role", "admin", "--data-dir", str(data_dir)],
            input="correct horse\n", capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "created user ada (admin)\n", "")
        assert server.user_by_name("ada").role is Role.ADMIN
        again = subprocess.run(
            [sys.executable, "-c", script, "user", "add", "ADA", "--role", "admin", "--data-dir", str(data_dir)],
            input="correct horse\n", capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        )
        assert again.returncode != 0 and again.stdout == "" and len(again.stderr.splitlines()) == 1


# -- PostgreSQL (--database-url) --------------------------------------------------------------------------------


def test_add_and_set_role_work_on_a_postgresql_database(postgres_url):
    from services.storage.postgres import PostgresStorage

    added = Run(["user", "add", "ada", "--role", "teacher", "--database-url", postgres_url], "correct horse\n")
    assert (added.status, added.out_lines, added.err_lines) == (0, ["created user ada (teacher)"], [])
    changed = Run(["user", "set-role", "ADA", "--role", "student", "--database-url", postgres_url])
    assert (changed.status, changed.out_lines) == (0, ["user ada is now student"])
    taken = Run(["user", "add", "Ada", "--role", "admin", "--database-url", postgres_url], "correct horse\n")
    assert taken.status == 1 and len(taken.err_lines) == 1 and "taken" in taken.err_lines[0]
    with PostgresStorage(postgres_url, FakeClock()) as storage:
        user = storage.user_by_name("ada")
        assert user.role is Role.STUDENT and verify_password("correct horse", user.password_hash)
        assert [(p.name, p.cash_cents) for p in storage.portfolios_of(user.id)] == [("Main", 10_000_000)]


def test_stockquest_user_add_in_another_process_writes_to_postgresql(postgres_url):
    done = subprocess.run(
        [sys.executable, str(ROOT / "stockquest.py"), "user", "add", "ada", "--role", "admin", "--database-url",
         postgres_url], input="correct horse\n", capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "created user ada (admin)\n", "")


def test_an_unreachable_postgresql_fails_with_one_line_naming_it_without_the_password(free_port):
    url = f"postgresql://sq:s3cret@127.0.0.1:{free_port()}/stockquest"
    result = Run(["user", "add", "ada", "--role", "admin", "--database-url", url], "correct horse\n")
    assert result.status == 1 and len(result.err_lines) == 1
    assert "cannot reach PostgreSQL at postgresql://sq:***@127.0.0.1" in result.err_lines[0]
    assert "s3cret" not in result.stderr.getvalue()


def test_a_command_names_a_data_dir_or_a_database_url_not_both(data_dir):
    result = Run(["user", "add", "ada", "--role", "admin", "--data-dir", str(data_dir), "--database-url",
                  "postgresql://h/db"], "correct horse\n")
    assert result.status == 2 and len(result.err_lines) == 1 and "not allowed with" in result.err_lines[0]


# -- accounts for a class --------------------------------------------------------------------------------------

def test_batch_creates_numbered_students_with_readable_passwords_as_csv_and_a_sheet_to_print(data_dir, tmp_path):
    sheet = tmp_path / "sheet.html"
    result = Run(["user", "batch", "--prefix", "knights", "--count", "12", "--data-dir", str(data_dir),
                  "--sheet", str(sheet), "--title", "Period 3", "--login-url", "https://stocks.example.org/"])
    assert result.status == 0, result.err_lines
    header, *rows = result.out_lines
    assert header == "username,password" and len(rows) == 12
    accounts = [row.split(",") for row in rows]
    assert [name for name, _ in accounts] == [f"knights{n:02d}" for n in range(1, 13)]
    assert all(re.fullmatch(r"[a-z]+-[a-z]+-\d\d", password) for _, password in accounts)
    assert len({password for _, password in accounts}) == 12
    assert result.err_lines == [f"created 12 students knights01..knights12; the sheet to print is {sheet}"]
    for name, password in accounts[:2]:  # scrypt per check: two are enough
        user, portfolios = stored(data_dir, name)
        assert user.role is Role.STUDENT and verify_password(password, user.password_hash) and portfolios
    page = sheet.read_text()
    assert page.count("class='card'") == 12 and "@media print" in page and "Period 3" in page
    assert all(password in page for _, password in accounts) and sheet.stat().st_mode & 0o077 == 0


def test_batch_creates_nothing_when_a_name_is_taken(data_dir):
    assert add(data_dir, "owls03", role="student").status == 0
    result = Run(["user", "batch", "--prefix", "owls", "--count", "5", "--data-dir", str(data_dir)])
    assert result.status == 1 and result.out_lines == []
    assert result.err_lines == ["error: 1 of these names are taken already (first: owls03); choose another --prefix"]
    assert stored(data_dir, "owls01")[0] is None


@pytest.mark.parametrize("args, message", [
    (["--prefix", "9lives", "--count", "3"], "the prefix is 1-24 letters"),
    (["--prefix", "<script>", "--count", "3"], "the prefix is 1-24 letters"),
    (["--prefix", "ok", "--count", "0"], "the count is 1 to 200"),
    (["--prefix", "ok", "--count", "201"], "the count is 1 to 200"),
])
def test_batch_refuses_a_bad_prefix_or_count_with_one_line(data_dir, args, message):
    result = Run(["user", "batch", *args, "--data-dir", str(data_dir)])
    assert result.status == 1 and len(result.err_lines) == 1 and message in result.err_lines[0]
