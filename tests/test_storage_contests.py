"""Storage of class contests: contests, members, teams, assignments and contest portfolios, kept across reopening.

A test taking `storage` or `open_storage` runs on SQLite and on PostgreSQL (`storage_backend`, tests/conftest.py);
the codecs are tested without a database, and the upgrade of an old file is SQLite's own.
"""

import sqlite3
from dataclasses import replace
from decimal import Decimal

import pytest

from domain.clock import FakeClock
from domain.contests import (
    Contest,
    ContestRules,
    ContestStanding,
    ContestStatus,
    DaySchedule,
    HoldSectors,
    KeepWeightUnder,
    Moment,
    Participant,
    PlaceOrder,
    SetStopLoss,
    Team,
    TradeRationales,
    WallSchedule,
)
from domain.errors import BadRequest, Conflict, LimitExceeded, NotFound
from domain.trading import Commission, OrderType, PortfolioLedger
from domain.users import Role, UnknownUser
from services.storage import MAX_PORTFOLIOS_PER_USER, SCHEMA_VERSION, Storage
from services.storage.contests import (
    ranking_from_json,
    ranking_to_json,
    rules_from_json,
    rules_to_json,
    schedule_from_json,
    schedule_to_json,
)

CASH = 10_000_000
CONTEST_CASH = 2_500_000
T0 = 1_764_126_000_000

EVERY_RULE = ContestRules(
    starting_cash_cents=CONTEST_CASH,
    commission=Commission(per_order_cents=150, per_share_cents=Decimal("0.25")),
    short_selling=True,
    allowed_symbols=frozenset({"ZETA", "ACME"}),
    allowed_sectors=frozenset({"Tech", "Energy"}),
    max_position_weight=Decimal("0.30"),
    house_risk_limits=False,
    note_required=True,
    max_team_size=4,
)
RANKING = (
    ContestStanding(1, "7", "Ada's \"bulls\"", 2_750_000, 0.1, 1.2345678901234567, 0.05, 63.5),
    ContestStanding(2, "9", "Bob", 2_500_000, 0.0, None, None, 0.0),
    ContestStanding(2, "8", "Cy", 2_500_000, 0.0, -0.3333333333333333, 1e-17, 100.0),
)
EVERY_TASK = (
    PlaceOrder(order_type=OrderType.STOP_LIMIT, count=3),
    HoldSectors(sectors=4),
    KeepWeightUnder(max_weight=Decimal("0.25"), hold_ms=3_600_000),
    SetStopLoss(count=2),
    TradeRationales(trades=7, min_chars=40),
)
NOT_IDS = ["abc", "", "0", "-1", "01", "1.0", "1 OR 1=1", "1; DROP TABLE contests", "9" * 30, "\x00", "\ud800"]


@pytest.fixture
def clock():
    return FakeClock(T0 / 1000)


def student(storage, name) -> str:
    return str(storage.create_user(name, name.title(), None, Role.STUDENT, CASH).id)


@pytest.fixture
def teacher(storage) -> str:
    return str(storage.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)


def new_contest(storage, teacher, *, join_code="QX7-42K", rules=EVERY_RULE, **options) -> Contest:
    return storage.create_contest(teacher_id=teacher, name=options.pop("name", "Autumn cup"), join_code=join_code,
                                  rules=rules, schedule=options.pop("schedule", DaySchedule(3, 7)),
                                  password_hash=options.pop("password_hash", None), now_ms=T0)


def count(storage, table) -> int:
    return storage._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- codecs ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [EVERY_RULE, ContestRules(),
                                   ContestRules(commission=Commission(0, Decimal("0.005")),
                                                max_position_weight=Decimal("1"))])
def test_rules_come_back_from_json_exactly(rules):
    text = rules_to_json(rules)
    back = rules_from_json(text)
    assert back == rules
    assert str(back.commission.per_share_cents) == str(rules.commission.per_share_cents)  # "0.25", not 0.25
    assert str(back.max_position_weight) == str(rules.max_position_weight)                # "0.30" keeps its scale
    assert rules_to_json(back) == text


def test_rules_json_writes_decimals_as_text_and_allow_lists_sorted():
    text = rules_to_json(EVERY_RULE)
    assert '"per_share_cents":"0.25"' in text and '"max_position_weight":"0.30"' in text
    assert '"allowed_symbols":["ACME","ZETA"]' in text and '"allowed_sectors":["Energy","Tech"]' in text


def test_a_rule_missing_from_stored_json_takes_its_default():
    assert rules_from_json('{"starting_cash_cents": 500}') == ContestRules(starting_cash_cents=500)


@pytest.mark.parametrize("schedule, text", [
    (DaySchedule(0, 4), '{"kind":"DAYS","first_day":0,"last_day":4}'),
    (WallSchedule(T0, T0 + 3_600_000), f'{{"kind":"WALL","start_ms":{T0},"end_ms":{T0 + 3_600_000}}}'),
])
def test_schedules_are_json_of_their_kind_both_ways(schedule, text):
    assert schedule_to_json(schedule) == text
    assert schedule_from_json(text) == schedule


def test_a_ranking_comes_back_from_json_with_its_floats_and_nones_as_they_were():
    back = ranking_from_json(ranking_to_json(RANKING))
    assert back == RANKING and type(back) is tuple
    assert [s.sharpe_ratio for s in back] == [1.2345678901234567, None, -0.3333333333333333]
    assert ranking_from_json(ranking_to_json(())) == ()


# -- contests -------------------------------------------------------------------------------------------------------


def test_a_new_contest_is_a_draft_with_an_id_from_the_database_and_comes_back_whole(open_storage, clock):
    store = open_storage()
    teacher = str(store.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)
    made = new_contest(store, teacher, join_code="qx7 42k", password_hash="scrypt$salt$hash")
    assert made.status is ContestStatus.DRAFT and made.contest_id.isdigit()
    assert (made.teacher_id, made.join_code, made.password_hash) == (teacher, "QX7-42K", "scrypt$salt$hash")
    assert (made.opened_at, made.finished_at, made.final_ranking) == (None, None, None)
    store.close()
    reopened = open_storage()
    assert reopened.contests() == [made]
    assert reopened.contest(made.contest_id) == made
    assert reopened.contest(made.contest_id).rules == EVERY_RULE


def test_a_saved_contest_keeps_every_field_it_changed(open_storage):
    store = open_storage()
    teacher = str(store.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)
    made = new_contest(store, teacher, password_hash="old-hash")
    revised = made.revised(Moment(T0, 0), name="Winter cup", rules=ContestRules(starting_cash_cents=99),
                           schedule=WallSchedule(T0 + 1_000, T0 + 60_000), password_hash=None)
    store.save_contest(revised)
    opened = revised.open(Moment(T0 + 5, 1))
    store.save_contest(opened)
    finished = opened.finish(Moment(T0 + 9, 2)).freeze(RANKING)
    store.save_contest(finished)
    store.close()
    back = open_storage().contest(made.contest_id)
    assert back == finished
    assert (back.name, back.password_hash, back.schedule) == ("Winter cup", None, WallSchedule(T0 + 1_000, T0 + 60_000))
    assert (back.status, back.opened_at, back.finished_at) == (ContestStatus.FINISHED, Moment(T0 + 5, 1),
                                                               Moment(T0 + 9, 2))
    assert back.final_ranking == RANKING


def test_save_contest_never_changes_its_teacher_or_join_code(storage, teacher):
    made = new_contest(storage, teacher)
    other = student(storage, "ada")
    storage.save_contest(Contest(made.contest_id, "Renamed", other, "ABC-DEF", made.rules, made.schedule))
    back = storage.contest(made.contest_id)
    assert (back.name, back.teacher_id, back.join_code) == ("Renamed", teacher, "QX7-42K")


def test_contests_are_listed_oldest_first(storage, teacher):
    made = [new_contest(storage, teacher, join_code=code, name=f"Cup {n}")
            for n, code in enumerate(["ZZZ-ZZZ", "AAA-AAA", "MMM-MMM"])]
    assert storage.contests() == made
    assert [int(c.contest_id) for c in made] == sorted(int(c.contest_id) for c in made)


def test_a_taken_join_code_in_any_form_is_a_conflict_and_stores_nothing(storage, teacher):
    new_contest(storage, teacher, join_code="QX7-42K")
    with pytest.raises(Conflict):
        new_contest(storage, teacher, join_code=" qx7—42k ", name="Second")
    assert count(storage, "contests") == 1


def test_a_contest_of_no_such_teacher_is_refused(storage):
    with pytest.raises(UnknownUser):
        new_contest(storage, "999")
    with pytest.raises(UnknownUser):
        new_contest(storage, "teacher")
    assert count(storage, "contests") == 0


@pytest.mark.parametrize("contest_id", NOT_IDS)
def test_a_contest_id_that_is_not_ours_finds_nothing(storage, teacher, contest_id):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    assert storage.contest(contest_id) is None
    with pytest.raises(NotFound):
        storage.join_contest(contest_id, user_id=ada, nickname="Ada", joined_ms=T0, portfolio=("Cup", 1))
    with pytest.raises(NotFound):
        storage.create_team(contest_id, name="Bulls", members=[ada], portfolio_name="Bulls", starting_cash_cents=1)
    with pytest.raises(NotFound):
        storage.add_assignment(contest_id, HoldSectors(), T0, now_ms=T0)
    assert count(storage, "portfolios") == 2 and count(storage, "contest_members") == 0
    assert storage.contests() == [made]


def test_an_unknown_contest_id_finds_nothing_either(storage, teacher):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    missing = str(int(made.contest_id) + 1)
    assert storage.contest(missing) is None
    with pytest.raises(NotFound):
        storage.save_contest(Contest(missing, "Ghost", teacher, "GGG-GGG", EVERY_RULE, DaySchedule(0, 1)))
    with pytest.raises(NotFound):
        storage.join_contest(missing, user_id=ada, nickname="Ada", joined_ms=T0, portfolio=("Cup", 1))
    with pytest.raises(NotFound):
        storage.add_assignment(missing, HoldSectors(), T0, now_ms=T0)
    assert count(storage, "portfolios") == 2 and count(storage, "contest_assignments") == 0


def test_names_with_quotes_and_sql_are_stored_as_text(storage, teacher):
    hostile = "Ro'b\"ert'); DROP TABLE contests;--"
    made = new_contest(storage, teacher, name=hostile)
    ada = student(storage, "ada")
    joined = storage.join_contest(made.contest_id, user_id=ada, nickname="O'Neil \"; --", joined_ms=T0,
                                  portfolio=("x'); DELETE FROM portfolios;--", CONTEST_CASH))
    assert storage.contest(made.contest_id).name == hostile
    assert storage.rosters()[made.contest_id] == ([joined], [])
    assert storage.load_portfolio(joined.portfolio_id).name == "x'); DELETE FROM portfolios;--"


# -- joining --------------------------------------------------------------------------------------------------------


def test_joining_with_a_portfolio_opens_it_with_the_contests_starting_cash(open_storage):
    store = open_storage()
    teacher = str(store.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)
    made = new_contest(store, teacher)
    ada = student(store, "ada")
    joined = store.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0 + 5,
                                portfolio=("Autumn cup", CONTEST_CASH))
    assert joined == Participant(ada, "Ada", T0 + 5, joined.portfolio_id)
    assert store.portfolio_ids_of(ada) == [store.portfolio_ids_of(ada)[0], joined.portfolio_id]
    assert store.portfolio_owner(joined.portfolio_id) == ada
    assert store.portfolio_contests() == {joined.portfolio_id: made.contest_id}
    store.close()
    reopened = open_storage()
    assert reopened.load_portfolio(joined.portfolio_id) == PortfolioLedger(joined.portfolio_id, ada, "Autumn cup",
                                                                           CONTEST_CASH, CONTEST_CASH)
    ledgers, _ = reopened.load_trading(CASH)
    assert [book.starting_cash_cents for book in ledgers] == [CASH, CASH, CONTEST_CASH]
    assert reopened.rosters() == {made.contest_id: ([joined], [])}


def test_joining_without_a_portfolio_records_the_member_only(storage, teacher):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    joined = storage.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0, portfolio=None)
    assert joined == Participant(ada, "Ada", T0, None)
    assert storage.portfolio_ids_of(ada) == storage.portfolio_ids_of(ada)[:1]
    assert storage.portfolio_contests() == {}
    assert storage.rosters()[made.contest_id] == ([joined], [])


def test_a_repeated_join_is_a_conflict_and_leaves_no_portfolio_behind(storage, teacher):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    first = storage.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0,
                                 portfolio=("Autumn cup", CONTEST_CASH))
    portfolios = count(storage, "portfolios")
    for portfolio in (("Again", CONTEST_CASH), None):
        with pytest.raises(Conflict):
            storage.join_contest(made.contest_id, user_id=ada, nickname="Ada2", joined_ms=T0 + 1, portfolio=portfolio)
    assert count(storage, "portfolios") == portfolios
    assert storage.rosters()[made.contest_id] == ([first], [])
    assert storage.portfolio_contests() == {first.portfolio_id: made.contest_id}


def test_a_nickname_or_team_name_taken_in_any_case_or_width_is_a_conflict_and_stores_nothing(storage, teacher):
    """The database holds names unique as the roster compares them, even if two writers (the server and the
    operator's command line) add players at once."""
    made = new_contest(storage, teacher, rules=replace(EVERY_RULE, max_team_size=3))
    ada, ben, cat, dan = (student(storage, name) for name in ("ada", "ben", "cat", "dan"))
    storage.join_contest(made.contest_id, user_id=ada, nickname="Ace", joined_ms=T0, portfolio=None)
    portfolios = count(storage, "portfolios")
    for nickname in ("ACE", "ａｃｅ"):
        with pytest.raises(Conflict, match="taken"):
            storage.join_contest(made.contest_id, user_id=ben, nickname=nickname, joined_ms=T0 + 1,
                                 portfolio=("Cup", CONTEST_CASH))
    assert count(storage, "portfolios") == portfolios
    storage.join_contest(made.contest_id, user_id=ben, nickname="Ben", joined_ms=T0 + 2, portfolio=None)
    storage.create_team(made.contest_id, name="Bulls", members=[ada, ben], portfolio_name="Bulls",
                        starting_cash_cents=CONTEST_CASH)
    with pytest.raises(Conflict, match="taken"):
        storage.create_team(made.contest_id, name="bulls", members=[cat, dan], portfolio_name="bulls",
                            starting_cash_cents=CONTEST_CASH)
    assert count(storage, "portfolios") == portfolios + 1
    assert [t.name for t in storage.rosters()[made.contest_id][1]] == ["Bulls"]


def test_a_student_at_the_portfolio_limit_can_still_join_and_contest_portfolios_leave_the_limit_alone(storage,
                                                                                                      teacher):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    storage.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0, portfolio=("Cup", CONTEST_CASH))
    for n in range(MAX_PORTFOLIOS_PER_USER - 1):  # "Main" is the first
        storage.create_portfolio(ada, f"Extra {n}", CASH)
    with pytest.raises(LimitExceeded):
        storage.create_portfolio(ada, "One too many", CASH)
    second = new_contest(storage, teacher, join_code="ABC-DEF", name="Second cup")
    joined = storage.join_contest(second.contest_id, user_id=ada, nickname="Ada", joined_ms=T0,
                                  portfolio=("Second cup", CONTEST_CASH))
    assert len(storage.portfolio_ids_of(ada)) == MAX_PORTFOLIOS_PER_USER + 2
    assert storage.portfolio_ids_of(ada)[-1] == joined.portfolio_id


def test_participants_come_back_in_join_order_per_contest(storage, teacher):
    first, second, empty = (new_contest(storage, teacher, join_code=code, name=name)
                            for code, name in (("AAA-AAA", "First"), ("BBB-BBB", "Second"), ("CCC-CCC", "Empty")))
    zoe, ada, mia = (student(storage, name) for name in ("zoe", "ada", "mia"))
    users = [mia, zoe, ada]  # neither by id nor by name
    joined_first = [storage.join_contest(first.contest_id, user_id=u, nickname=f"N{u}", joined_ms=T0, portfolio=None)
                    for u in users]  # in one millisecond: the order is still the order they joined in
    joined_second = [storage.join_contest(second.contest_id, user_id=u, nickname=f"M{u}", joined_ms=T0 + n,
                                          portfolio=("Second", CONTEST_CASH)) for n, u in enumerate(reversed(users))]
    assert storage.rosters() == {first.contest_id: (joined_first, []), second.contest_id: (joined_second, []),
                                 empty.contest_id: ([], [])}


def test_a_join_of_no_such_user_or_with_a_nickname_no_database_can_hold_stores_nothing(storage, teacher):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    with pytest.raises(UnknownUser):
        storage.join_contest(made.contest_id, user_id="999", nickname="Ghost", joined_ms=T0, portfolio=("Cup", 1))
    with pytest.raises(UnknownUser):
        storage.join_contest(made.contest_id, user_id="ada", nickname="Ghost", joined_ms=T0, portfolio=None)
    for nickname in ("A\x00da", "\ud800", "  ", 42):
        with pytest.raises(BadRequest):
            storage.join_contest(made.contest_id, user_id=ada, nickname=nickname, joined_ms=T0, portfolio=("Cup", 1))
    with pytest.raises(BadRequest):
        storage.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0, portfolio=("x" * 65, 1))
    assert count(storage, "portfolios") == 2 and count(storage, "contest_members") == 0


def test_the_leaderboard_never_takes_a_contest_portfolio_for_a_students_main_one(storage, teacher):
    made = new_contest(storage, teacher)
    ada, bob = student(storage, "ada"), student(storage, "bob")
    mains = {ada: storage.portfolio_ids_of(ada)[0], bob: storage.portfolio_ids_of(bob)[0]}
    for user in (ada, bob):
        storage.join_contest(made.contest_id, user_id=user, nickname=f"P{user}", joined_ms=T0,
                             portfolio=("Cup", CONTEST_CASH))
    assert [(str(user.id), pid) for user, pid in storage.main_portfolios()] == list(mains.items())
    # Even were a contest portfolio a student's oldest (a Main removed by hand), it would not be taken for it.
    storage._db.execute("DELETE FROM portfolios WHERE id = ?", (int(mains[bob]),))
    assert [(str(user.id), pid) for user, pid in storage.main_portfolios()] == [(ada, mains[ada])]


# -- teams ----------------------------------------------------------------------------------------------------------


def test_a_team_comes_back_with_its_portfolio_owned_by_its_captain(open_storage):
    store = open_storage()
    teacher = str(store.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)
    made = new_contest(store, teacher)
    ada, bob, cy = (student(store, name) for name in ("ada", "bob", "cy"))
    joined = [store.join_contest(made.contest_id, user_id=u, nickname=f"N{u}", joined_ms=T0, portfolio=None)
              for u in (ada, bob, cy)]
    team = store.create_team(made.contest_id, name="Bulls 'n' \"Bears\"", members=[bob, ada, cy],
                             portfolio_name="Bulls", starting_cash_cents=CONTEST_CASH)
    assert (team.name, team.members, team.captain_id) == ("Bulls 'n' \"Bears\"", (bob, ada, cy), bob)
    assert store.portfolio_owner(team.portfolio_id) == bob
    assert store.portfolio_contests() == {team.portfolio_id: made.contest_id}
    store.close()
    reopened = open_storage()
    assert reopened.rosters() == {made.contest_id: (joined, [team])}
    assert reopened.load_portfolio(team.portfolio_id) == PortfolioLedger(team.portfolio_id, bob, "Bulls",
                                                                         CONTEST_CASH, CONTEST_CASH)


def test_set_team_members_replaces_them_in_their_order(storage, teacher):
    made = new_contest(storage, teacher)
    ada, bob, cy, dan = (student(storage, name) for name in ("ada", "bob", "cy", "dan"))
    team = storage.create_team(made.contest_id, name="Bulls", members=[ada, bob], portfolio_name="Bulls",
                               starting_cash_cents=CONTEST_CASH)
    other = storage.create_team(made.contest_id, name="Bears", members=[cy, dan], portfolio_name="Bears",
                                starting_cash_cents=CONTEST_CASH)
    grown = Team(team.team_id, team.name, team.portfolio_id, (ada, dan, bob))
    storage.set_team_members(grown)
    assert storage.rosters()[made.contest_id][1] == [grown, other]
    shrunk = Team(team.team_id, team.name, team.portfolio_id, (ada, bob))
    storage.set_team_members(shrunk)
    assert storage.rosters()[made.contest_id][1] == [shrunk, other]


@pytest.mark.parametrize("team_id", ["999", *NOT_IDS[:5]])
def test_set_team_members_of_no_such_team_is_not_found(storage, teacher, team_id):
    ada = student(storage, "ada")
    with pytest.raises(NotFound):
        storage.set_team_members(Team(team_id, "Ghosts", "1", (ada,)))


def test_a_team_with_a_member_who_does_not_exist_stores_nothing(storage, teacher):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    for members in ([ada, "999"], ["999", ada], [ada, "bob"]):
        with pytest.raises(UnknownUser):
            storage.create_team(made.contest_id, name="Bulls", members=members, portfolio_name="Bulls",
                                starting_cash_cents=CONTEST_CASH)
    for members in ([], [ada, ada]):
        with pytest.raises(BadRequest):
            storage.create_team(made.contest_id, name="Bulls", members=members, portfolio_name="Bulls",
                                starting_cash_cents=CONTEST_CASH)
    assert count(storage, "portfolios") == 2 and count(storage, "contest_teams") == 0


# -- assignments ----------------------------------------------------------------------------------------------------


def test_assignments_of_every_kind_come_back_per_contest_in_the_order_they_were_set(open_storage):
    store = open_storage()
    teacher = str(store.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)
    first = new_contest(store, teacher, join_code="AAA-AAA")
    second = new_contest(store, teacher, join_code="BBB-BBB")
    third = new_contest(store, teacher, join_code="CCC-CCC")
    set_first, set_second = [], []
    for n, task in enumerate(EVERY_TASK):  # interleaved, due in the reverse order, the second contest's reversed
        set_first.append(store.add_assignment(first.contest_id, task, T0 + 1_000 * (5 - n), now_ms=T0 + n))
        set_second.append(store.add_assignment(second.contest_id, EVERY_TASK[-1 - n], T0, now_ms=T0))
    store.close()
    back = open_storage().assignments()
    assert back == {first.contest_id: set_first, second.contest_id: set_second, third.contest_id: []}
    assert [a.task for a in back[first.contest_id]] == list(EVERY_TASK)
    assert [a.due_ms for a in back[first.contest_id]] == [T0 + 5_000, T0 + 4_000, T0 + 3_000, T0 + 2_000, T0 + 1_000]
    assert str(back[first.contest_id][2].task.max_weight) == "0.25"


def test_an_assignment_that_is_not_one_stores_nothing(storage, teacher):
    made = new_contest(storage, teacher)
    for task, due_ms in ((HoldSectors(), -1), (HoldSectors(), "soon"), ("HOLD_SECTORS", T0)):
        with pytest.raises(BadRequest):
            storage.add_assignment(made.contest_id, task, due_ms, now_ms=T0)
    assert count(storage, "contest_assignments") == 0


# -- the schema -----------------------------------------------------------------------------------------------------


def test_a_contest_portfolios_cash_is_whole_cents(storage, teacher):
    made = new_contest(storage, teacher)
    ada = student(storage, "ada")
    for cash in (10.5, -1, "100", None):
        with pytest.raises(ValueError):
            storage.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0, portfolio=("Cup", cash))
    with pytest.raises(ValueError):
        storage.create_team(made.contest_id, name="Bulls", members=[ada, teacher], portfolio_name="Bulls",
                            starting_cash_cents=10.5)
    assert count(storage, "portfolios") == 2 and count(storage, "contest_members") == 0


# What version 7 added, taken out of a database this version made: the version-6 shape, with its data.
_VERSION_7 = """
    ALTER TABLE portfolios DROP COLUMN contest_id;
    DROP TABLE contest_assignments; DROP TABLE contest_team_members; DROP TABLE contest_teams;
    DROP TABLE contest_members; DROP TABLE contests;
"""


def _columns(db, table):
    return [tuple(row) for row in db.execute(f"PRAGMA table_info({table})")]


def test_a_version_6_database_upgrades_to_7_keeping_its_data(db_path, clock):
    assert SCHEMA_VERSION == 7
    db_path.parent.mkdir(parents=True)
    with Storage(db_path, clock) as old:
        ada = str(old.create_user("ada", "Ada", None, Role.STUDENT, CASH).id)
        teacher = str(old.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)
        extra = old.create_portfolio(ada, "Extra", 123_456)
        old.save_state("scenario", '{"run": 1}', now_ms=T0)
    raw = sqlite3.connect(db_path)
    raw.executescript(_VERSION_7 + "PRAGMA user_version = 6;")
    assert "contest_id" not in [column[1] for column in _columns(raw, "portfolios")]
    raw.close()
    with Storage(db_path, clock) as store:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == 7
        assert store.portfolio_ids_of(ada) == [store.portfolio_ids_of(ada)[0], extra.portfolio_id]
        assert store.load_portfolio(extra.portfolio_id) == extra
        assert store.load_state("scenario") == '{"run": 1}'
        assert store.portfolio_contests() == {} and store.contests() == []
        made = new_contest(store, teacher)
        joined = store.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0,
                                    portfolio=("Cup", CONTEST_CASH))
        assert store.portfolio_contests() == {joined.portfolio_id: made.contest_id}
        with Storage(":memory:", clock) as fresh:
            tables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            assert store._db.execute(tables).fetchall() == fresh._db.execute(tables).fetchall()
            for (table,) in fresh._db.execute(tables):
                assert _columns(store._db, table) == _columns(fresh._db, table), table
            indexes = "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
            assert store._db.execute(indexes).fetchall() == fresh._db.execute(indexes).fetchall()
    with Storage(db_path, clock) as again:  # and opening it again changes nothing
        assert again.rosters() == {made.contest_id: ([joined], [])}


def test_a_postgres_database_from_before_contests_gets_them_keeping_its_portfolios(postgres_url, clock,
                                                                                    monkeypatch):
    from services.storage import postgres

    before = postgres.MIGRATIONS[:-1]
    assert "CREATE TABLE contests" in postgres.MIGRATIONS[-1] and not any("contest" in step for step in before)
    monkeypatch.setattr(postgres, "MIGRATIONS", before)
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", len(before))
    with postgres.PostgresStorage(postgres_url, clock) as old:
        ada = str(old.create_user("ada", "Ada", None, Role.STUDENT, CASH).id)
        teacher = str(old.create_user("mrs_t", "Mrs T", None, Role.TEACHER, CASH).id)
        main = old.portfolio_ids_of(ada)[0]
    monkeypatch.undo()
    with postgres.PostgresStorage(postgres_url, clock) as store:
        assert store._db.execute("SELECT version FROM schema_version").fetchone()[0] == postgres.SCHEMA_VERSION
        made = new_contest(store, teacher)
        joined = store.join_contest(made.contest_id, user_id=ada, nickname="Ada", joined_ms=T0,
                                    portfolio=("Cup", CONTEST_CASH))
        assert store.portfolio_ids_of(ada) == [main, joined.portfolio_id]
        assert [pid for user, pid in store.main_portfolios()] == [main]
        assert store.portfolio_contests() == {joined.portfolio_id: made.contest_id}

