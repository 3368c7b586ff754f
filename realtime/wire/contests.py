"""Class contests on the wire: rules, schedules, contests, rankings and checklists, both ways (docs/protocol.md,
Contests). Parsing is here too, because a teacher's rules arrive as JSON and the domain checks their values."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from domain.contests import (
    Assignment,
    AssignmentProgress,
    Contest,
    ContestRules,
    ContestStanding,
    DaySchedule,
    Participant,
    Schedule,
    Team,
    WallSchedule,
    task_from_params,
    task_params,
)
from domain.errors import BadRequest
from domain.money import to_cents
from domain.trading import Commission
from realtime.protocol import ProtocolError
from realtime.schema import Bool, Int, Money, Number, Obj, Str, StrList, Symbols, validate
from realtime.wire import iso_ms, money, ratio

__all__ = [
    "RULES_FIELDS", "SCHEDULE_FIELDS", "parse_rules", "parse_schedule", "parse_time", "parse_task",
    "rules", "schedule", "contest", "standing", "ranking", "progress", "assignment", "participant", "team",
    "update", "progress_update", "detail",
]

RULES_FIELDS = {
    "startingCash": Money(min=0.01),
    "commissionPerOrder": Money(min=0),
    "commissionPerShare": Money(min=0),
    "shortSelling": Bool(),
    "allowedSymbols": Symbols(nullable=True),
    "allowedSectors": StrList(max_len=64, nullable=True),
    "maxPositionWeight": Number(nullable=True, min=0, max=1),
    "houseRiskLimits": Bool(),
    "noteRequired": Bool(),
    "maxTeamSize": Int(nullable=True, min=2, max=5),
}

SCHEDULE_FIELDS = {
    "kind": Str(required=True, upper=True, choices=("DAYS", "WALL")),
    "firstDay": Int(min=0, max=1_000_000),
    "lastDay": Int(min=0, max=1_000_000),
    "start": Str(max_len=40),
    "end": Str(max_len=40),
}

_MISSING = object()


def parse_rules(data: object, base: ContestRules) -> ContestRules:
    """A teacher's rules over `base` (the server's own for a new contest, the contest's when revising): only the
    fields given change. BadRequest with the field's name for anything that will not do."""
    if data is None:
        return base
    if not isinstance(data, dict):
        raise BadRequest("rules must be an object")
    try:
        given = validate(data, RULES_FIELDS, prefix="rules.")
    except ProtocolError as error:
        raise BadRequest(error.message) from None
    present = {name for name in RULES_FIELDS if name in data}
    commission = base.commission
    if "commissionPerOrder" in present:
        commission = Commission(to_cents(given["commission_per_order"]), commission.per_share_cents)
    if "commissionPerShare" in present:
        commission = Commission(commission.per_order_cents, given["commission_per_share"] * 100)
    values = {
        "starting_cash_cents": to_cents(given["starting_cash"]) if "startingCash" in present
        else base.starting_cash_cents,
        "commission": commission,
        "short_selling": given["short_selling"] if "shortSelling" in present else base.short_selling,
        "allowed_symbols": _names(given["allowed_symbols"]) if "allowedSymbols" in present else base.allowed_symbols,
        "allowed_sectors": _names(given["allowed_sectors"]) if "allowedSectors" in present else base.allowed_sectors,
        "max_position_weight": _weight(given["max_position_weight"]) if "maxPositionWeight" in present
        else base.max_position_weight,
        "house_risk_limits": given["house_risk_limits"] if "houseRiskLimits" in present else base.house_risk_limits,
        "note_required": given["note_required"] if "noteRequired" in present else base.note_required,
        "max_team_size": given["max_team_size"] if "maxTeamSize" in present else base.max_team_size,
    }
    return ContestRules(**values)


def _names(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)  # an empty list is refused by the rules, not "all"


def _weight(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


def parse_time(text: object, what: str) -> int:
    """An ISO-8601 time with its zone ("2026-12-07T09:00:00Z") as epoch ms."""
    if not isinstance(text, str):
        raise BadRequest(f"{what} must be an ISO-8601 time like 2026-12-07T09:00:00Z")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"{what} must be an ISO-8601 time like 2026-12-07T09:00:00Z") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{what} needs its time zone (Z for UTC)")
    return int(moment.timestamp() * 1000)


def parse_schedule(data: object) -> Schedule:
    """`{kind: "DAYS", firstDay, lastDay}` or `{kind: "WALL", start, end}`."""
    if not isinstance(data, dict):
        raise BadRequest("schedule must be an object: {kind: DAYS, firstDay, lastDay} or {kind: WALL, start, end}")
    try:
        given = validate(data, SCHEDULE_FIELDS, prefix="schedule.")
    except ProtocolError as error:
        raise BadRequest(error.message) from None
    if given["kind"] == "DAYS":
        if given["first_day"] is None or given["last_day"] is None:
            raise BadRequest("a DAYS schedule needs firstDay and lastDay")
        return DaySchedule(given["first_day"], given["last_day"])
    return WallSchedule(parse_time(given["start"], "schedule.start"), parse_time(given["end"], "schedule.end"))


TASK_FIELDS = {"kind": Str(required=True, upper=True, max_len=40), "params": Obj(), "due": Str(required=True)}

_TASK_PARAMS = {  # wire name -> the task's parameter, per kind
    "PLACE_ORDER": {"orderType": "order_type", "count": "count"},
    "HOLD_SECTORS": {"sectors": "sectors"},
    "KEEP_WEIGHT_UNDER": {"maxWeight": "max_weight", "holdMinutes": "hold_ms"},
    "SET_STOP_LOSS": {"count": "count"},
    "TRADE_RATIONALES": {"trades": "trades", "minChars": "min_chars"},
}


def parse_task(data: object):
    """An assignment's task and due time from `{kind, params, due}`."""
    if not isinstance(data, dict):
        raise BadRequest("an assignment is {kind, params, due}")
    try:
        given = validate(data, TASK_FIELDS)
    except ProtocolError as error:
        raise BadRequest(error.message) from None
    names = _TASK_PARAMS.get(given["kind"])
    if names is None:
        raise BadRequest(f"kind must be one of {', '.join(_TASK_PARAMS)}")
    params = {}
    for wire_name, value in (given["params"] or {}).items():
        if wire_name not in names:
            raise BadRequest(f"{given['kind']} takes {', '.join(names) or 'no parameters'}, not {wire_name}")
        if wire_name == "holdMinutes":
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRequest("holdMinutes must be a whole number")
            value = value * 60_000
        if wire_name == "maxWeight" and isinstance(value, float):
            value = Decimal(repr(value))
        params[names[wire_name]] = value
    return task_from_params(given["kind"], params), parse_time(given["due"], "due")


def rules(r: ContestRules) -> dict:
    return {
        "startingCash": money(r.starting_cash_cents),
        "commissionPerOrder": money(r.commission.per_order_cents),
        "commissionPerShare": float(r.commission.per_share_cents / 100),
        "shortSelling": r.short_selling,
        "allowedSymbols": None if r.allowed_symbols is None else sorted(r.allowed_symbols),
        "allowedSectors": None if r.allowed_sectors is None else sorted(r.allowed_sectors),
        "maxPositionWeight": None if r.max_position_weight is None else float(r.max_position_weight),
        "houseRiskLimits": r.house_risk_limits,
        "noteRequired": r.note_required,
        "maxTeamSize": r.max_team_size,
    }


def schedule(s: Schedule) -> dict:
    if isinstance(s, DaySchedule):
        return {"kind": "DAYS", "firstDay": s.first_day, "lastDay": s.last_day}
    return {"kind": "WALL", "start": iso_ms(s.start_ms), "end": iso_ms(s.end_ms)}


def contest(c: Contest, *, teacher_name: str | None = None, participants: int = 0, teams: int = 0) -> dict:
    return {
        "contestId": c.contest_id,
        "name": c.name,
        "teacherId": c.teacher_id,
        "teacherName": teacher_name,
        "joinCode": c.join_code,
        "status": str(c.status),
        "requiresPassword": c.requires_password,
        "rules": rules(c.rules),
        "schedule": schedule(c.schedule),
        "openedAt": None if c.opened_at is None else iso_ms(c.opened_at.wall_ms),
        "finishedAt": None if c.finished_at is None else iso_ms(c.finished_at.wall_ms),
        "participantCount": participants,
        "teamCount": teams,
    }


def standing(s: ContestStanding) -> dict:
    return {
        "rank": s.rank,
        "portfolioId": s.portfolio_id,
        "name": s.name,
        "totalValue": money(s.final_value_cents),
        "totalReturnPercent": ratio(s.total_return * 100, 2),
        "sharpeRatio": ratio(s.sharpe_ratio, 2),
        "maxDrawdownPercent": None if s.max_drawdown is None else ratio(s.max_drawdown * 100, 2),
        "diversificationScore": s.diversification_score,
    }


def ranking(c: Contest, standings: Sequence[ContestStanding]) -> dict:
    return {"final": c.final_ranking is not None, "entries": [standing(s) for s in standings]}


def assignment(a: Assignment, text: str | None = None) -> dict:
    params = task_params(a.task)
    if "hold_ms" in params:
        params["hold_minutes"] = params.pop("hold_ms") // 60_000
    if "max_weight" in params:
        params["max_weight"] = float(params["max_weight"])
    wire_params = {_camel(name): value for name, value in params.items()}
    return {"assignmentId": a.assignment_id, "kind": str(a.task.kind), "params": wire_params, "due": iso_ms(a.due_ms),
            "text": text}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def progress(p: AssignmentProgress, due_ms: int | None = None) -> dict:
    return {
        "assignmentId": p.assignment_id,
        "kind": str(p.kind),
        "state": str(p.state),
        "doneAt": None if p.done_at_ms is None else iso_ms(p.done_at_ms),
        "current": p.current,
        "target": p.target,
        "text": p.text,
        "due": None if due_ms is None else iso_ms(due_ms),
    }


def _progress_list(tasks: Sequence[AssignmentProgress], assignments: Sequence[Assignment]) -> list[dict]:
    due = {a.assignment_id: a.due_ms for a in assignments}
    return [progress(p, due.get(p.assignment_id)) for p in tasks]


def participant(p: Participant, team_id: str | None, *, with_ids: bool) -> dict:
    out = {"nickname": p.nickname, "joinedAt": iso_ms(p.joined_ms), "teamId": team_id}
    if with_ids:
        out.update(userId=p.user_id, portfolioId=p.portfolio_id)
    return out


def team(t: Team, *, with_ids: bool) -> dict:
    out = {"teamId": t.team_id, "name": t.name, "portfolioId": t.portfolio_id}
    if with_ids:
        out["members"] = list(t.members)
    return out


def update(c: Contest, standings: Sequence[ContestStanding]) -> dict:
    """CONTEST_UPDATE."""
    return {"contestId": c.contest_id, "status": str(c.status), "ranking": ranking(c, standings)}


def progress_update(c: Contest, portfolio_id: str, tasks: Sequence[AssignmentProgress],
                    assignments: Sequence[Assignment]) -> dict:
    """ASSIGNMENT_PROGRESS."""
    return {"contestId": c.contest_id, "portfolioId": portfolio_id, "tasks": _progress_list(tasks, assignments)}


def detail(d, *, teacher_name: str | None) -> dict:
    """GET /api/contests/{id} and CONTEST_SNAPSHOT, from a services.contests.ContestDetail. Students see the
    others' nicknames and the ranking; user ids and their portfolios only their teacher and admins."""
    team_of = {member: t.team_id for t in d.teams for member in t.members}
    texts = {p.assignment_id: p.text for p in d.progress or ()}
    out = {
        "contest": contest(d.contest, teacher_name=teacher_name, participants=len(d.participants),
                           teams=len(d.teams)),
        "participants": [participant(p, team_of.get(p.user_id), with_ids=d.manager) for p in d.participants],
        "teams": [team(t, with_ids=d.manager) for t in d.teams],
        "assignments": [assignment(a, texts.get(a.assignment_id)) for a in d.assignments],
        "ranking": ranking(d.contest, d.ranking),
        "myPortfolioId": d.my_portfolio_id,
    }
    if d.progress is not None:
        out["progress"] = _progress_list(d.progress, d.assignments)
    return out
