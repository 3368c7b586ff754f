"""`stockquest contest list|accounts`: a contest's logins made from the operator's command line, seen by the
running server within seconds."""

import pytest

from domain.clock import FakeClock
from domain.contests import ContestRules, DaySchedule
from domain.users import Role
from services.auth import verify_password
from services.storage import Storage
from tests.test_users_cli import Run


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def make_contest(data_dir, *, teams=False, name="Knights of 7B"):
    with Storage.in_dir(data_dir, FakeClock()) as storage:
        teacher = storage.create_user("tess", "Tess", None, Role.TEACHER, 100_000_00)
        return storage.create_contest(
            teacher_id=str(teacher.id), name=name, join_code="QX7-42K",
            rules=ContestRules(starting_cash_cents=5_000_00, max_team_size=3 if teams else None),
            schedule=DaySchedule(0, 9), password_hash=None, now_ms=0)


def test_accounts_are_made_in_the_contest_with_its_starting_cash_and_a_sheet(data_dir, tmp_path):
    contest = make_contest(data_dir)
    sheet = tmp_path / "cards.html"
    result = Run(["contest", "accounts", "qx742k", "--prefix", "knights", "--count", "3", "--data-dir",
                  str(data_dir), "--sheet", str(sheet)])
    assert result.status == 0, result.err_lines
    header, *rows = result.out_lines
    assert header == "username,password" and [r.split(",")[0] for r in rows] == ["knights01", "knights02",
                                                                                 "knights03"]
    assert result.err_lines == [f'created 3 students knights01..knights03 in "Knights of 7B" (QX7-42K); '
                                f"the sheet to print is {sheet}"]
    with Storage.in_dir(data_dir, FakeClock()) as storage:
        participants, teams = storage.rosters()[contest.contest_id]
        assert [p.nickname for p in participants] == ["knights01", "knights02", "knights03"] and teams == []
        user = storage.user_by_name("knights02")
        assert verify_password(rows[1].split(",")[1], user.password_hash)
        ledger = storage.load_portfolio(participants[1].portfolio_id)
        assert ledger.cash_cents == 5_000_00 and ledger.owner_id == str(user.id)
    assert sheet.stat().st_mode & 0o077 == 0 and "Knights of 7B" in sheet.read_text()


def test_in_a_team_contest_the_accounts_join_without_a_portfolio(data_dir):
    contest = make_contest(data_dir, teams=True)
    assert Run(["contest", "accounts", contest.contest_id, "--prefix", "owl", "--count", "2", "--data-dir",
                str(data_dir)]).status == 0
    with Storage.in_dir(data_dir, FakeClock()) as storage:
        participants, _ = storage.rosters()[contest.contest_id]
        assert [p.portfolio_id for p in participants] == [None, None]


@pytest.mark.parametrize("argv, message", [
    (["ZZZ-ZZZ", "--prefix", "k", "--count", "2"], "no contest has the id or join code"),
    (["42", "--prefix", "k", "--count", "2"], "no contest has the id or join code"),
    (["QX7-42K", "--prefix", "9k", "--count", "2"], "the prefix is"),
    (["QX7-42K", "--prefix", "k", "--count", "0"], "the count is"),
    (["QX7-42K", "--prefix", "tes", "--count", "2"], None),  # fine: tes1.. are free, "tess" is not one
])
def test_bad_accounts_commands_fail_with_one_line_and_make_nobody(data_dir, argv, message):
    make_contest(data_dir)
    result = Run(["contest", "accounts", *argv, "--data-dir", str(data_dir)])
    if message is None:
        assert result.status == 0
        return
    assert result.status == 1 and len(result.err_lines) == 1 and message in result.err_lines[0], result.err_lines
    with Storage.in_dir(data_dir, FakeClock()) as storage:
        assert storage.count_users() == 1


def test_a_taken_name_makes_nobody(data_dir):
    make_contest(data_dir)
    assert Run(["user", "batch", "--prefix", "k", "--count", "2", "--data-dir", str(data_dir)]).status == 0
    result = Run(["contest", "accounts", "QX7-42K", "--prefix", "k", "--count", "3", "--data-dir", str(data_dir)])
    assert result.status == 1 and "taken" in result.err_lines[0]
    with Storage.in_dir(data_dir, FakeClock()) as storage:
        assert storage.user_by_name("k03") is None


def test_list_shows_every_contest_with_its_code_and_players(data_dir):
    contest = make_contest(data_dir)
    Run(["contest", "accounts", "QX7-42K", "--prefix", "k", "--count", "2", "--data-dir", str(data_dir)])
    result = Run(["contest", "list", "--data-dir", str(data_dir)])
    assert result.status == 0
    assert result.out_lines == ["id,join_code,status,players,name",
                                f"{contest.contest_id},QX7-42K,DRAFT,2,Knights of 7B"]


def test_the_running_server_sees_accounts_made_from_the_command_line(services):
    storage = services.storage
    teacher = storage.create_user("tess", "Tess", None, Role.TEACHER, 100_000_00)
    contest = services.contests.create(teacher, name="Live class", rules=ContestRules(), schedule=DaySchedule(0, 9),
                                       password=None)
    result = Run(["contest", "accounts", contest.join_code, "--prefix", "late", "--count", "2", "--data-dir",
                  str(services.config.data_dir)])
    assert result.status == 0, result.err_lines
    services.contests.tick()  # reads the rosters again
    roster = services.contests.directory.rosters[contest.contest_id]
    assert [p.nickname for p in roster.participants()] == ["late01", "late02"]
    portfolio_id = roster.participants()[0].portfolio_id
    assert services.contests.directory.contest_for(portfolio_id).contest_id == contest.contest_id
    assert services.book.ledger(portfolio_id).cash_cents == ContestRules().starting_cash_cents
