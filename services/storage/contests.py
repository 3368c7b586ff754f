"""Class contests as stored: each contest, who joined it, its teams, its assignments, and the portfolios they play.

The contest's rules, schedule and final ranking are JSON in this module's codecs (`rules_to_json` and the others):
exact both ways, Decimals as their text and ranking floats as Python writes them, so what a teacher set and what the
class saw at the end come back unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields, replace
from decimal import Decimal

from domain.contests import (
    Assignment,
    Contest,
    ContestRules,
    ContestStanding,
    ContestStatus,
    DaySchedule,
    Moment,
    Participant,
    Schedule,
    Task,
    Team,
    WallSchedule,
    name_key,
    task_from_params,
    task_params,
)
from domain.errors import BadRequest, Conflict, NotFound
from domain.trading import Commission
from domain.users import UnknownUser
from services.storage.database import Connection, Database, _encodable, _key
from services.storage.users import MAX_PORTFOLIO_NAME

__all__ = [
    "ContestStore",
    "ranking_from_json",
    "ranking_to_json",
    "rules_from_json",
    "rules_to_json",
    "schedule_from_json",
    "schedule_to_json",
]

_CONTEST_COLUMNS = (
    "id, teacher_id, name, join_code, status, password_hash, rules, schedule, opened_wall_ms, opened_day,"
    " finished_wall_ms, finished_day, final_ranking"
)


def _dumps(value: object) -> str:
    # ensure_ascii: any name (a NUL or a lone surrogate included) is stored as escapes every engine's text takes.
    return json.dumps(value, separators=(",", ":"))


# -- codecs ------------------------------------------------------------------------------------------------------


def rules_to_json(rules: ContestRules) -> str:
    """ContestRules as JSON: Decimals as their text ("0.5", "0.30"), allow lists as sorted lists, None as null.

    >>> data = json.loads(rules_to_json(ContestRules(allowed_symbols={"ZETA", "ACME"}, max_position_weight="0.30")))
    >>> data["allowed_symbols"], data["max_position_weight"], data["commission"]
    (['ACME', 'ZETA'], '0.30', {'per_order_cents': 0, 'per_share_cents': '0'})
    """
    return _dumps({
        "starting_cash_cents": rules.starting_cash_cents,
        "commission": {"per_order_cents": rules.commission.per_order_cents,
                       "per_share_cents": str(rules.commission.per_share_cents)},
        "short_selling": rules.short_selling,
        "allowed_symbols": None if rules.allowed_symbols is None else sorted(rules.allowed_symbols),
        "allowed_sectors": None if rules.allowed_sectors is None else sorted(rules.allowed_sectors),
        "max_position_weight": None if rules.max_position_weight is None else str(rules.max_position_weight),
        "house_risk_limits": rules.house_risk_limits,
        "note_required": rules.note_required,
        "max_team_size": rules.max_team_size,
    })


def rules_from_json(text: str) -> ContestRules:
    """The ContestRules `rules_to_json` wrote. A rule missing from the text takes its default, so rules added in a
    later version read back from contests stored before it."""
    data = json.loads(text)
    values: dict[str, object] = {}
    for name in ("starting_cash_cents", "short_selling", "house_risk_limits", "note_required", "max_team_size"):
        if name in data:
            values[name] = data[name]
    for name in ("allowed_symbols", "allowed_sectors"):
        if name in data:
            values[name] = None if data[name] is None else frozenset(data[name])
    if data.get("max_position_weight") is not None:
        values["max_position_weight"] = Decimal(data["max_position_weight"])
    if "commission" in data:
        commission = data["commission"]
        values["commission"] = Commission(commission["per_order_cents"], Decimal(commission["per_share_cents"]))
    return ContestRules(**values)


def schedule_to_json(schedule: Schedule) -> str:
    """``{"kind": "DAYS", "first_day": 3, "last_day": 7}`` or ``{"kind": "WALL", "start_ms": ..., "end_ms": ...}``."""
    if isinstance(schedule, DaySchedule):
        return _dumps({"kind": "DAYS", "first_day": schedule.first_day, "last_day": schedule.last_day})
    if isinstance(schedule, WallSchedule):
        return _dumps({"kind": "WALL", "start_ms": schedule.start_ms, "end_ms": schedule.end_ms})
    raise TypeError(f"not a contest schedule: {schedule!r}")


def schedule_from_json(text: str) -> Schedule:
    data = json.loads(text)
    if data["kind"] == "DAYS":
        return DaySchedule(data["first_day"], data["last_day"])
    if data["kind"] == "WALL":
        return WallSchedule(data["start_ms"], data["end_ms"])
    raise ValueError(f"unknown schedule kind {data['kind']!r}")


def ranking_to_json(standings: Sequence[ContestStanding]) -> str:
    """A ranking as a JSON list of objects named as ContestStanding's fields; floats and None as they are."""
    return _dumps([asdict(standing) for standing in standings])


def ranking_from_json(text: str) -> tuple[ContestStanding, ...]:
    names = [f.name for f in fields(ContestStanding)]
    return tuple(ContestStanding(**{name: line[name] for name in names}) for line in json.loads(text))


# -- the store ---------------------------------------------------------------------------------------------------


class ContestStore(Database):
    """Owns the contest tables and the contest portfolios: a contest's own row, its members, teams and assignments,
    and which portfolios play in which contest (portfolios.contest_id).

    The services keep contests in memory and write through here; everything is read back whole at start-up
    (`contests`, `rosters`, `assignments`, `portfolio_contests`). A contest id that is not one of ours finds
    nothing: None from a read, `NotFound` from a write.
    """

    # -- contests --------------------------------------------------------------------------------------------------

    def create_contest(self, *, teacher_id: str, name: str, join_code: str, rules: ContestRules, schedule: Schedule,
                       password_hash: str | None, now_ms: int) -> Contest:
        """Store a new DRAFT contest; the database gives its id. Raises `Conflict` when the join code is taken (the
        service draws another) and `UnknownUser` for no such teacher.

        The name and join code are stored as `Contest` normalises them (trimmed, QX7-42K), so the code compared
        for uniqueness is the one students type and the contest read back is the one returned.
        """
        teacher_key = _key(teacher_id)
        if teacher_key is None:
            raise UnknownUser(f"no user with id {teacher_id!r}")
        draft = Contest("new", name, str(teacher_key), join_code, rules, schedule, password_hash=password_hash)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE id = ?", (teacher_key,)).fetchone() is None:
                raise UnknownUser(f"no user with id {teacher_id!r}")
            # The join code is the table's only unique value besides the id: a conflict is a taken code.
            row = db.execute(
                "INSERT INTO contests (teacher_id, name, join_code, status, password_hash, rules, schedule,"
                " created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (join_code) DO NOTHING RETURNING id",
                (teacher_key, draft.name, draft.join_code, draft.status.value, _text(password_hash, "password hash"),
                 rules_to_json(rules), schedule_to_json(schedule), now_ms),
            ).fetchone()
            if row is None:
                raise Conflict(f"the join code {draft.join_code} is taken")
        return replace(draft, contest_id=str(row[0]))

    def save_contest(self, contest: Contest) -> None:
        """Store what may change of a contest: its name, rules, schedule, status, password hash, when it opened and
        finished, and its final ranking. Its teacher and join code never change. `NotFound` for no such contest."""
        key = _contest_key(contest.contest_id)
        with self._transaction() as db:
            row = db.execute(
                "UPDATE contests SET name = ?, rules = ?, schedule = ?, status = ?, password_hash = ?,"
                " opened_wall_ms = ?, opened_day = ?, finished_wall_ms = ?, finished_day = ?, final_ranking = ?"
                " WHERE id = ? RETURNING id",
                (contest.name, rules_to_json(contest.rules), schedule_to_json(contest.schedule),
                 ContestStatus(contest.status).value, _text(contest.password_hash, "password hash"),
                 *_moment_columns(contest.opened_at), *_moment_columns(contest.finished_at),
                 None if contest.final_ranking is None else ranking_to_json(contest.final_ranking), key),
            ).fetchone()
            if row is None:
                raise NotFound(f"unknown contest {contest.contest_id!r}")

    def contests(self) -> list[Contest]:
        """Every contest, oldest first."""
        return [_contest(row) for row in self._db.execute(f"SELECT {_CONTEST_COLUMNS} FROM contests ORDER BY id")]

    def contest(self, contest_id: str) -> Contest | None:
        """The contest with this id, or None."""
        key = _key(contest_id)
        if key is None:
            return None
        row = self._db.execute(f"SELECT {_CONTEST_COLUMNS} FROM contests WHERE id = ?", (key,)).fetchone()
        return None if row is None else _contest(row)

    # -- members and teams -----------------------------------------------------------------------------------------

    def join_contest(self, contest_id: str, *, user_id: str, nickname: str, joined_ms: int,
                     portfolio: tuple[str, int] | None) -> Participant:
        """Record a student joining a contest, with their own new portfolio when `portfolio` (its name, its
        starting cash in cents) is given: both in one transaction, so a portfolio never exists without its member.

        `Conflict` when the student already joined (nothing is stored); `NotFound` for no such contest,
        `UnknownUser` for no such student, `BadRequest` for a nickname or portfolio name that cannot be stored.
        """
        key = _contest_key(contest_id)
        user_key = _key(user_id)
        if user_key is None:
            raise UnknownUser(f"no user with id {user_id!r}")
        nickname = _name(nickname, "nickname")
        with self._transaction() as db:
            _check_contest(db, key, contest_id)
            if db.execute("SELECT 1 FROM users WHERE id = ?", (user_key,)).fetchone() is None:
                raise UnknownUser(f"no user with id {user_id!r}")
            portfolio_key = None
            if portfolio is not None:
                portfolio_key = self._insert_portfolio(db, user_key, key, *portfolio)
            # A new member clashes on (contest, user): a repeat join, or on (contest, name_key): a nickname another
            # took meanwhile. Raising here rolls back the portfolio inserted above.
            row = db.execute(
                "INSERT INTO contest_members (contest_id, user_id, nickname, name_key, joined_ms, join_order,"
                " portfolio_id) VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(join_order), 0) + 1 FROM contest_members"
                " WHERE contest_id = ?), ?) ON CONFLICT DO NOTHING RETURNING user_id",
                (key, user_key, nickname, name_key(nickname), joined_ms, key, portfolio_key),
            ).fetchone()
            if row is None:
                joined = db.execute("SELECT 1 FROM contest_members WHERE contest_id = ? AND user_id = ?",
                                    (key, user_key)).fetchone()
                if joined is not None:
                    raise Conflict(f"user {user_id} already joined contest {contest_id}")
                raise Conflict(f'the nickname "{nickname}" is taken in this contest')
        return Participant(str(user_key), nickname, joined_ms, None if portfolio_key is None else str(portfolio_key))

    def create_team(self, contest_id: str, *, name: str, members: Sequence[str], portfolio_name: str,
                    starting_cash_cents: int) -> Team:
        """Record a team with its new portfolio, owned by its captain (`members[0]`), in one transaction.

        The roster has judged the team (its size, that each member joined and is in no other team); this checks
        only what the database must: `NotFound` for no such contest, `UnknownUser` for a member who does not exist.
        """
        key = _contest_key(contest_id)
        team_name = _name(name, "team name")
        member_keys = _user_keys(members)
        with self._transaction() as db:
            _check_contest(db, key, contest_id)
            _check_users(db, member_keys)
            portfolio_key = self._insert_portfolio(db, member_keys[0], key, portfolio_name, starting_cash_cents)
            row = db.execute(
                "INSERT INTO contest_teams (contest_id, name, name_key, portfolio_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING RETURNING id",
                (key, team_name, name_key(team_name), portfolio_key),
            ).fetchone()
            if row is None:  # rolls back the portfolio inserted above
                raise Conflict(f'the team name "{team_name}" is taken in this contest')
            (team_key,) = row
            _insert_team_members(db, team_key, member_keys)
        return Team(str(team_key), team_name, str(portfolio_key), tuple(str(m) for m in member_keys))

    def set_team_members(self, team: Team) -> None:
        """Replace a team's members with `team.members`, in their order (the captain first). `NotFound` for no such
        team. The team's portfolio stays its captain's: the roster never lets the captain leave."""
        team_key = _key(team.team_id)
        if team_key is None:
            raise NotFound(f"unknown team {team.team_id!r}")
        member_keys = _user_keys(team.members)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM contest_teams WHERE id = ?", (team_key,)).fetchone() is None:
                raise NotFound(f"unknown team {team.team_id!r}")
            _check_users(db, member_keys)
            db.execute("DELETE FROM contest_team_members WHERE team_id = ?", (team_key,))
            _insert_team_members(db, team_key, member_keys)

    def rosters(self) -> dict[str, tuple[list[Participant], list[Team]]]:
        """Every contest's participants (in the order they joined) and teams (oldest first); a contest nobody has
        joined maps to ([], [])."""
        rosters: dict[str, tuple[list[Participant], list[Team]]] = {
            str(contest_key): ([], []) for (contest_key,) in self._db.execute("SELECT id FROM contests ORDER BY id")}
        for contest_key, user_key, nickname, joined_ms, portfolio_key in self._db.execute(
                "SELECT contest_id, user_id, nickname, joined_ms, portfolio_id FROM contest_members"
                " ORDER BY contest_id, join_order"):
            rosters[str(contest_key)][0].append(
                Participant(str(user_key), nickname, joined_ms, None if portfolio_key is None else str(portfolio_key)))
        members: dict[int, list[str]] = {}
        for team_key, user_key in self._db.execute(
                "SELECT team_id, user_id FROM contest_team_members ORDER BY team_id, position"):
            members.setdefault(team_key, []).append(str(user_key))
        for team_key, contest_key, name, portfolio_key in self._db.execute(
                "SELECT id, contest_id, name, portfolio_id FROM contest_teams ORDER BY id"):
            rosters[str(contest_key)][1].append(
                Team(str(team_key), name, str(portfolio_key), tuple(members.get(team_key, ()))))
        return rosters

    def portfolio_contests(self) -> dict[str, str]:
        """The contest of every contest portfolio, by portfolio id (ordinary portfolios are not in it)."""
        return {str(portfolio_key): str(contest_key) for portfolio_key, contest_key in self._db.execute(
            "SELECT id, contest_id FROM portfolios WHERE contest_id IS NOT NULL ORDER BY id")}

    # -- assignments -----------------------------------------------------------------------------------------------

    def add_assignment(self, contest_id: str, task: Task, due_ms: int, *, now_ms: int) -> Assignment:
        """Store an assignment of a contest; the database gives its id. `NotFound` for no such contest, `BadRequest`
        for what is not an assignment (checked by `Assignment` before anything is written)."""
        key = _contest_key(contest_id)
        draft = Assignment("new", task, due_ms)
        with self._transaction() as db:
            _check_contest(db, key, contest_id)
            (assignment_key,) = db.execute(
                "INSERT INTO contest_assignments (contest_id, kind, params, due_ms, created_at_ms)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (key, task.kind.value, _dumps(task_params(task)), due_ms, now_ms),
            ).fetchone()
        return replace(draft, assignment_id=str(assignment_key))

    def assignments(self) -> dict[str, list[Assignment]]:
        """Every contest's assignments in the order they were set; a contest without any maps to []."""
        out: dict[str, list[Assignment]] = {
            str(contest_key): [] for (contest_key,) in self._db.execute("SELECT id FROM contests ORDER BY id")}
        for assignment_key, contest_key, kind, params, due_ms in self._db.execute(
                "SELECT id, contest_id, kind, params, due_ms FROM contest_assignments ORDER BY contest_id, id"):
            out[str(contest_key)].append(Assignment(str(assignment_key), task_from_params(kind, json.loads(params)),
                                                    due_ms))
        return out

    # -- the bookkeeping -------------------------------------------------------------------------------------------

    def _insert_portfolio(self, db: Connection, owner_key: int, contest_key: int, name: str,
                          starting_cash_cents: int) -> int:
        """A contest portfolio holding its starting cash, inside the caller's transaction; its id. Not counted
        toward MAX_PORTFOLIOS_PER_USER (see `UserStore.create_portfolio`)."""
        if not _encodable(name) or not name.strip() or len(name) > MAX_PORTFOLIO_NAME:
            raise BadRequest(f"a portfolio name is 1 to {MAX_PORTFOLIO_NAME} characters")
        if type(starting_cash_cents) is not int or starting_cash_cents < 0:
            raise ValueError("starting_cash_cents must be a non-negative int")
        if db.execute("SELECT 1 FROM users WHERE id = ?", (owner_key,)).fetchone() is None:
            raise UnknownUser(f"no user with id {owner_key}")
        (portfolio_key,) = db.execute(
            "INSERT INTO portfolios (owner_id, name, cash_cents, starting_cash_cents, created_at, contest_id)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (owner_key, name, starting_cash_cents, starting_cash_cents, self._clock.now(), contest_key),
        ).fetchone()
        return portfolio_key


def _contest_key(contest_id: object) -> int:
    key = _key(contest_id)
    if key is None:
        raise NotFound(f"unknown contest {contest_id!r}")
    return key


def _check_contest(db: Connection, key: int, contest_id: object) -> None:
    if db.execute("SELECT 1 FROM contests WHERE id = ?", (key,)).fetchone() is None:
        raise NotFound(f"unknown contest {contest_id!r}")


def _user_keys(user_ids: Sequence[str]) -> list[int]:
    """A team's member keys, in order: `UnknownUser` for an id that cannot be one, `BadRequest` for none or a
    repeated member (the roster never sends either; the primary key would refuse the second less clearly)."""
    keys = []
    for user_id in user_ids:
        key = _key(user_id)
        if key is None:
            raise UnknownUser(f"no user with id {user_id!r}")
        keys.append(key)
    if not keys or len(set(keys)) != len(keys):
        raise BadRequest("a team needs members, each once")
    return keys


def _check_users(db: Connection, keys: Sequence[int]) -> None:
    for key in keys:
        if db.execute("SELECT 1 FROM users WHERE id = ?", (key,)).fetchone() is None:
            raise UnknownUser(f"no user with id {key}")


def _insert_team_members(db: Connection, team_key: int, member_keys: Sequence[int]) -> None:
    db.executemany("INSERT INTO contest_team_members (team_id, user_id, position) VALUES (?, ?, ?)",
                   [(team_key, user_key, position) for position, user_key in enumerate(member_keys)])


def _name(text: object, what: str) -> str:
    if not _encodable(text) or not text.strip():
        raise BadRequest(f"the {what} cannot be stored: it must be non-blank text without a NUL")
    return text


def _text(text: str | None, what: str) -> str | None:
    if text is not None and not _encodable(text):
        raise BadRequest(f"the {what} cannot be stored")
    return text


def _moment_columns(moment: Moment | None) -> tuple[int | None, int | None]:
    return (None, None) if moment is None else (moment.wall_ms, moment.day_index)


def _moment(wall_ms: int | None, day_index: int | None) -> Moment | None:
    return None if wall_ms is None else Moment(wall_ms, day_index)


def _contest(row: Mapping) -> Contest:
    return Contest(
        contest_id=str(row["id"]),
        name=row["name"],
        teacher_id=str(row["teacher_id"]),
        join_code=row["join_code"],
        rules=rules_from_json(row["rules"]),
        schedule=schedule_from_json(row["schedule"]),
        status=ContestStatus(row["status"]),
        password_hash=row["password_hash"],
        opened_at=_moment(row["opened_wall_ms"], row["opened_day"]),
        finished_at=_moment(row["finished_wall_ms"], row["finished_day"]),
        final_ranking=None if row["final_ranking"] is None else ranking_from_json(row["final_ranking"]),
    )
