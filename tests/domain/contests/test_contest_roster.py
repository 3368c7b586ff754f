"""Joining a contest under a nickname, forming teams of 2 to 5, and who may trade which contest portfolio."""

import hypothesis.strategies as st
import pytest
from hypothesis import given

from domain.contests import (
    Contest,
    ContestRules,
    DaySchedule,
    Moment,
    Participant,
    Roster,
    Team,
    Trader,
)
from domain.errors import BadRequest, Conflict, Forbidden, NotFound

NOW = Moment(1_000, 0)
ENDED = Moment(1_000, 99)


def contest(**rules) -> Contest:
    return Contest("C1", "Class 9B", "t1", "QX7-42K", ContestRules(**rules), DaySchedule(1, 5))


def no_password(password: str, stored: str) -> bool:
    raise AssertionError("a contest without a password never asks")


def join(roster: Roster, game: Contest, user_id: str, nickname: str, *, portfolio_id: str | None = None,
         password: str | None = None, verify=no_password, moment: Moment = NOW) -> Participant:
    admission = roster.admit(game, user_id=user_id, nickname=nickname, password=password, verify_password=verify,
                             moment=moment)
    if admission.needs_portfolio and portfolio_id is None:
        portfolio_id = f"P-{user_id}"
    return roster.enrol(admission, portfolio_id=portfolio_id, joined_ms=moment.wall_ms)


def team_contest(size: int = 3, students: int = 6) -> tuple[Contest, Roster]:
    game = contest(max_team_size=size)
    roster = Roster("C1")
    for n in range(1, students + 1):
        join(roster, game, f"u{n}", f"Student {n}")
    return game, roster


# ----- joining -----------------------------------------------------------------------------------------------


def test_joining_gives_a_student_their_own_portfolio_under_a_nickname():
    game, roster = contest(), Roster("C1")
    ada = join(roster, game, "u1", "  Ada ")
    assert ada == Participant("u1", "Ada", 1_000, "P-u1")
    assert roster.portfolio_of("u1") == "P-u1" and roster.name_of("P-u1") == "Ada"
    assert roster.trader("P-u1", "u1") == Trader("u1", "u1")
    assert roster.portfolio_ids() == ["P-u1"]


def test_admitting_changes_nothing_until_the_student_is_enrolled():
    game, roster = contest(), Roster("C1")
    roster.admit(game, user_id="u1", nickname="Ada", password=None, verify_password=no_password, moment=NOW)
    assert roster.participants() == [] and roster.participant("u1") is None


def test_a_nickname_is_unique_within_a_contest_whatever_its_case():
    game, roster = contest(), Roster("C1")
    join(roster, game, "u1", "Ada")
    for taken in ("ada", "ADA", " Ada ", "Ａｄａ"):
        with pytest.raises(Conflict, match="is taken"):
            join(roster, game, "u2", taken)
    join(roster, game, "u2", "Ada L")
    join(Roster("C1"), game, "u2", "Ada")  # another contest's roster does not care


def test_a_student_joins_a_contest_once():
    game, roster = contest(), Roster("C1")
    join(roster, game, "u1", "Ada")
    with pytest.raises(Conflict, match="already joined"):
        join(roster, game, "u1", "Ada again")


def test_a_password_protected_contest_asks_the_callback_and_refuses_a_wrong_or_missing_password():
    game = Contest("C1", "Class 9B", "t1", "QX7-42K", ContestRules(), DaySchedule(1, 5), password_hash="scrypt$abc")
    asked = []

    def verify(password, stored):
        asked.append((password, stored))
        return password == "tulip"

    roster = Roster("C1")
    for wrong in ("rose", None):
        with pytest.raises(Forbidden, match="wrong password"):
            join(roster, game, "u1", "Ada", password=wrong, verify=verify)
    join(roster, game, "u1", "Ada", password="tulip", verify=verify)
    assert asked == [("rose", "scrypt$abc"), ("tulip", "scrypt$abc")]


def test_a_finished_contest_takes_no_new_players():
    with pytest.raises(BadRequest, match="has ended"):
        join(Roster("C1"), contest(), "u1", "Ada", moment=ENDED)


def test_an_open_contest_still_takes_players():
    assert join(Roster("C1"), contest(), "u1", "Ada", moment=Moment(0, 3)).nickname == "Ada"


def test_a_roster_belongs_to_one_contest():
    with pytest.raises(ValueError):
        join(Roster("C2"), contest(), "u1", "Ada")


def test_a_roster_is_rebuilt_from_what_storage_kept_and_still_guards_nicknames():
    roster = Roster("C1", [Participant("u1", "Ada", 5, "P1")])
    assert roster.trader("P1", "u1") == Trader("u1", "u1")
    with pytest.raises(Conflict):
        Roster("C1", [Participant("u1", "Ada", 5, "P1"), Participant("u2", "ADA", 6, "P2")])


# ----- teams -------------------------------------------------------------------------------------------------


def test_in_a_team_contest_students_join_without_a_portfolio_and_a_team_gets_one():
    game, roster = team_contest()
    assert roster.participant("u1").portfolio_id is None and roster.portfolio_of("u1") is None
    plan = roster.plan_team(game, name="Bulls", members=["u2", "u1", "u2"], moment=NOW)
    assert plan.members == ("u2", "u1")
    team = roster.form_team(plan, team_id="T1", portfolio_id="PT1")
    assert team == Team("T1", "Bulls", "PT1", ("u2", "u1")) and team.captain_id == "u2"
    assert roster.portfolio_of("u1") == roster.portfolio_of("u2") == "PT1"
    assert roster.name_of("PT1") == "Bulls" and roster.team_of("u1") == team


def test_every_member_trades_the_team_portfolio_for_its_captain_and_anyone_else_is_forbidden():
    game, roster = team_contest()
    roster.form_team(roster.plan_team(game, name="Bulls", members=["u1", "u2", "u3"], moment=NOW),
                     team_id="T1", portfolio_id="PT1")
    assert [roster.trader("PT1", member) for member in ("u1", "u2", "u3")] == [
        Trader("u1", "u1"), Trader("u1", "u2"), Trader("u1", "u3")]
    for outsider in ("u4", "t1", "nobody"):
        with pytest.raises(Forbidden, match='only the members of team "Bulls"'):
            roster.trader("PT1", outsider)
    with pytest.raises(NotFound):
        roster.trader("P-elsewhere", "u1")


def test_someone_elses_own_contest_portfolio_is_forbidden():
    game, roster = contest(), Roster("C1")
    join(roster, game, "u1", "Ada")
    join(roster, game, "u2", "Bob")
    with pytest.raises(Forbidden):
        roster.trader("P-u1", "u2")


@pytest.mark.parametrize("members, problem", [
    (["u1"], "2 to 3 members, not 1"),
    (["u1", "u2", "u3", "u4"], "2 to 3 members, not 4"),
    (["u1", "stranger"], "has not joined"),
])
def test_a_team_has_2_to_max_team_size_members_who_joined(members, problem):
    game, roster = team_contest(size=3)
    with pytest.raises(BadRequest, match=problem):
        roster.plan_team(game, name="Bulls", members=members, moment=NOW)


def test_a_team_may_have_five_members_at_most_whatever_the_rule_says():
    game, roster = team_contest(size=5, students=6)
    roster.plan_team(game, name="Five", members=["u1", "u2", "u3", "u4", "u5"], moment=NOW)
    with pytest.raises(BadRequest, match="not 6"):
        roster.plan_team(game, name="Six", members=[f"u{n}" for n in range(1, 7)], moment=NOW)


def test_a_student_is_in_one_team_and_team_names_are_unique():
    game, roster = team_contest()
    roster.form_team(roster.plan_team(game, name="Bulls", members=["u1", "u2"], moment=NOW), team_id="T1",
                     portfolio_id="PT1")
    with pytest.raises(Conflict, match="already in a team"):
        roster.plan_team(game, name="Bears", members=["u3", "u2"], moment=NOW)
    with pytest.raises(Conflict, match="team name"):
        roster.plan_team(game, name="BULLS", members=["u3", "u4"], moment=NOW)


def test_forming_a_team_judges_again_what_changed_since_it_was_planned():
    game, roster = team_contest()
    first = roster.plan_team(game, name="Bulls", members=["u1", "u2"], moment=NOW)
    second = roster.plan_team(game, name="Bears", members=["u2", "u3"], moment=NOW)
    roster.form_team(first, team_id="T1", portfolio_id="PT1")
    with pytest.raises(Conflict, match="already in a team"):
        roster.form_team(second, team_id="T2", portfolio_id="PT2")
    assert roster.portfolio_ids() == ["PT1"]


def test_members_come_and_go_but_the_captain_stays_and_two_remain():
    game, roster = team_contest(size=3)
    roster.form_team(roster.plan_team(game, name="Bulls", members=["u1", "u2"], moment=NOW), team_id="T1",
                     portfolio_id="PT1")
    assert roster.add_member(game, team_id="T1", user_id="u3", moment=NOW).members == ("u1", "u2", "u3")
    with pytest.raises(BadRequest, match="not 4"):
        roster.add_member(game, team_id="T1", user_id="u4", moment=NOW)
    with pytest.raises(BadRequest, match="captain"):
        roster.remove_member(game, team_id="T1", user_id="u1", moment=NOW)
    assert roster.remove_member(game, team_id="T1", user_id="u2", moment=NOW).members == ("u1", "u3")
    assert roster.team_of("u2") is None
    with pytest.raises(Forbidden):
        roster.trader("PT1", "u2")
    with pytest.raises(BadRequest, match="at least 2"):
        roster.remove_member(game, team_id="T1", user_id="u3", moment=NOW)
    with pytest.raises(NotFound):
        roster.remove_member(game, team_id="T1", user_id="u5", moment=NOW)


def test_teams_belong_to_team_contests_and_freeze_when_the_contest_ends():
    game, roster = contest(), Roster("C1")
    join(roster, game, "u1", "Ada")
    join(roster, game, "u2", "Bob")
    with pytest.raises(BadRequest, match="played alone"):
        roster.plan_team(game, name="Bulls", members=["u1", "u2"], moment=NOW)
    teams, team_roster = team_contest()
    with pytest.raises(BadRequest, match="has ended"):
        team_roster.plan_team(teams, name="Bulls", members=["u1", "u2"], moment=ENDED)


@given(names=st.lists(st.text(min_size=0, max_size=30), max_size=25))
def test_whatever_students_type_the_roster_never_holds_two_nicknames_equal_but_for_case(names):
    game, roster = contest(), Roster("C1")
    for n, name in enumerate(names):
        try:
            join(roster, game, f"u{n}", name)
        except (BadRequest, Conflict):
            pass
    shown = [p.nickname for p in roster.participants()]
    keys = [name.casefold() for name in shown]
    assert len(set(keys)) == len(keys)
    assert all(2 <= len(name) <= 24 and name.isprintable() and name == name.strip() for name in shown)
