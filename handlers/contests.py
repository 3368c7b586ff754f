"""Contest REST: teachers create and run class contests, students join them by code (docs/protocol.md, Contests)."""

from domain.contests import report_csv, report_html
from realtime.protocol import ProtocolError
from realtime.schema import Id, Int, Str, StrList, validate
from realtime.wire import contests as wire
from services.class_accounts import sheet_html
from services.container import Services
from services.portfolios import INDEX_SERIES

from .http import ApiError, JsonHandler

__all__ = ["CONTEST_ROUTES", "contest_summary"]

ID = r"([0-9]{1,18})"  # a contest, team or user id in a path: the stored ids are numbers

CREATE_FIELDS = {"name": Str(required=True, max_len=200)}
JOIN_FIELDS = {"code": Str(required=True, max_len=40), "nickname": Str(required=True, max_len=100)}
TEAM_FIELDS = {"name": Str(required=True, max_len=100), "members": StrList(required=True, max_items=5, max_len=20)}
ACCOUNT_FIELDS = {"prefix": Str(required=True, max_len=24), "count": Int(required=True, min=1, max=200)}


def _password(body: dict, *, nullable: bool = False):
    """The body's `password` as typed (never trimmed: it is compared as it was set); None when absent (or null,
    which removes one when `nullable`); ... when absent and `nullable` (keep it)."""
    if "password" not in body:
        return ... if nullable else None
    value = body["password"]
    if value is None:
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise ApiError(400, "password must be text", code="BAD_REQUEST")
    return value


def _validated(body: dict, fields: dict) -> dict:
    try:
        return validate(body, fields)
    except ProtocolError as error:
        raise ApiError(400, error.message, code=error.code) from None


def contest_summary(services: Services, contest, my_portfolio_id=...) -> dict:
    """A contest as lists show it: its object, with the caller's portfolio in it when asked for."""
    contests = services.contests
    roster = contests.directory.rosters[contest.contest_id]
    out = wire.contest(contest, teacher_name=contests.user_name(contest.teacher_id),
                       participants=len(roster.participants()), teams=len(roster.teams()))
    if my_portfolio_id is not ...:
        out["myPortfolioId"] = my_portfolio_id
    return out


def contest_detail(services: Services, detail) -> dict:
    return wire.detail(detail, teacher_name=services.contests.user_name(detail.contest.teacher_id))


class ContestHandler(JsonHandler):
    """A contest call: signed in (401 without a token), where the engine runs; rights are the service's."""

    engine_bound = True

    @property
    def contests(self):
        return self.services.contests

    def manager(self, contest_id: str):
        """The signed-in user, once they are known to manage the contest (403 before the body is even read)."""
        user = self.bearer_user()
        self.contests.managed(user, contest_id)
        return user


class ContestsHandler(ContestHandler):
    """GET /api/contests: the contests the caller sees. POST /api/contests {name, rules?, schedule, password?}:
    a teacher's new contest (201)."""

    def get(self):
        user = self.bearer_user()
        self.write_json({"contests": [contest_summary(self.services, contest, mine)
                                      for contest, mine in self.contests.visible(user)]})

    def post(self):
        user = self.bearer_user()
        body = self.json_body()
        given = _validated(body, CREATE_FIELDS)
        if "schedule" not in body:
            raise ApiError(400, "schedule is required: {kind: DAYS, firstDay, lastDay} or {kind: WALL, start, end}",
                           code="BAD_REQUEST")
        contest = self.contests.create(user, name=given["name"],
                                       rules=wire.parse_rules(body.get("rules"), self.contests.default_rules),
                                       schedule=wire.parse_schedule(body["schedule"]), password=_password(body))
        self.write_json({"contest": contest_summary(self.services, contest)}, 201)


class ContestDetailHandler(ContestHandler):
    """GET /api/contests/{id}: the contest, roster, ranking and assignments (its teacher, admins, its players).
    PATCH: new name, rules, schedule or password while it is a draft."""

    def get(self, contest_id):
        detail = self.contests.detail(self.bearer_user(), contest_id)
        self.write_json(contest_detail(self.services, detail))

    def patch(self, contest_id):
        user = self.bearer_user()
        body = self.json_body()
        contest = self.contests.directory.contests.get(contest_id)
        base = contest.rules if contest is not None else self.contests.default_rules
        given = _validated(body, {"name": Str(max_len=200)})
        revised = self.contests.revise(
            user, contest_id, name=given["name"],
            rules=wire.parse_rules(body["rules"], base) if "rules" in body else None,
            schedule=wire.parse_schedule(body["schedule"]) if "schedule" in body else None,
            password=_password(body, nullable=True))
        self.write_json({"contest": contest_summary(self.services, revised)})


class ContestOpenHandler(ContestHandler):
    """POST /api/contests/{id}/open: open it now (early, if its start is ahead)."""

    def post(self, contest_id):
        self.write_json({"contest": contest_summary(self.services, self.contests.open(self.bearer_user(),
                                                                                      contest_id))})


class ContestFinishHandler(ContestHandler):
    """POST /api/contests/{id}/finish: end it now: its orders expire, its ranking is frozen."""

    def post(self, contest_id):
        self.write_json({"contest": contest_summary(self.services, self.contests.finish(self.bearer_user(),
                                                                                        contest_id))})


class ContestJoinHandler(ContestHandler):
    """POST /api/contests/join {code, nickname, password?}: join a contest (201) with a portfolio of its own."""

    def post(self):
        user = self.bearer_user()
        body = self.json_body()
        given = _validated(body, JOIN_FIELDS)
        contest, portfolio_id = self.contests.join(user, code=given["code"], nickname=given["nickname"],
                                                   password=_password(body))
        self.write_json({"contest": contest_summary(self.services, contest, portfolio_id),
                         "portfolioId": portfolio_id}, 201)


class ContestTeamsHandler(ContestHandler):
    """POST /api/contests/{id}/teams {name, members}: a team sharing one portfolio (201)."""

    def post(self, contest_id):
        user = self.manager(contest_id)
        body = self.json_body()
        given = _validated(body, TEAM_FIELDS)
        try:
            members = [Id().convert("members", member) for member in given["members"]]
        except ProtocolError as error:
            raise ApiError(400, error.message, code=error.code) from None
        team = self.contests.form_team(user, contest_id, name=given["name"], members=members)
        self.write_json({"team": wire.team(team, with_ids=True)}, 201)


class ContestTeamMembersHandler(ContestHandler):
    """POST /api/contests/{id}/teams/{teamId}/members {userId}: add a joined student without a team (200)."""

    def post(self, contest_id, team_id):
        user = self.manager(contest_id)
        member_id = _validated(self.json_body(), {"userId": Id(required=True)})["user_id"]
        team = self.contests.add_member(user, contest_id, team_id, member_id)
        self.write_json({"team": wire.team(team, with_ids=True)})


class ContestTeamMemberHandler(ContestHandler):
    """DELETE /api/contests/{id}/teams/{teamId}/members/{userId}: take a member out of a team (never its captain;
    at least two stay)."""

    def delete(self, contest_id, team_id, member_id):
        user = self.manager(contest_id)
        team = self.contests.remove_member(user, contest_id, team_id, member_id)
        self.write_json({"team": wire.team(team, with_ids=True)})


class ContestAssignmentsHandler(ContestHandler):
    """POST /api/contests/{id}/assignments {kind, params, due}: a task the server checks from the trades (201)."""

    def post(self, contest_id):
        user = self.manager(contest_id)
        task, due_ms = wire.parse_task(self.json_body())
        assignment = self.contests.add_assignment(user, contest_id, task, due_ms)
        self.write_json({"assignment": wire.assignment(assignment)}, 201)


class ContestProgressHandler(ContestHandler):
    """GET /api/contests/{id}/progress: every student's checklist (its teacher, admins)."""

    def get(self, contest_id):
        contests = self.contests
        assignments = contests.directory.assignments.get(contest_id, [])
        rows = contests.class_progress(self.bearer_user(), contest_id)
        due = {a.assignment_id: a.due_ms for a in assignments}
        self.write_json({"students": [
            {"userId": participant.user_id, "nickname": participant.nickname, "portfolioId": portfolio_id,
             "tasks": [wire.progress(line, due.get(line.assignment_id)) for line in tasks]}
            for participant, portfolio_id, tasks in rows]})


class ContestAccountsHandler(ContestHandler):
    """POST /api/contests/{id}/accounts {prefix, count}: new student logins already in the contest (201), their
    passwords shown this once, with a printable sheet."""

    def post(self, contest_id):
        user = self.manager(contest_id)
        given = _validated(self.json_body(), ACCOUNT_FIELDS)
        accounts = self.contests.create_accounts(user, contest_id, prefix=given["prefix"], count=given["count"])
        contest = self.contests.directory.contests[contest_id]
        login_url = f"{self.request.protocol}://{self.request.host}/"
        self.write_json({"accounts": [{"username": a.username, "password": a.password, "nickname": a.username}
                                      for a in accounts],
                         "sheet": sheet_html(accounts, title=contest.name, login_url=login_url)}, 201)


class ContestReportHandler(ContestHandler):
    """GET /api/contests/{id}/report.csv or report.html: the contest's report, to download (its teacher, admins)."""

    def get(self, contest_id, kind):
        report = self.contests.report(self.bearer_user(), contest_id, index_series=INDEX_SERIES)
        filename = f"contest-{contest_id}-report.{kind}"
        if kind == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            body = "\ufeff" + report_csv(report)  # the byte order mark: spreadsheets then read names as UTF-8
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
            body = report_html(report)
        disposition = "attachment" if kind == "csv" else "inline"  # the page opens in a tab, to print
        self.set_header("Content-Disposition", f'{disposition}; filename="{filename}"')
        self.finish(body.encode("utf-8"))


def CONTEST_ROUTES(services: Services) -> list:
    kwargs = dict(services=services)
    return [(r"/api/contests", ContestsHandler, kwargs),
            (r"/api/contests/join", ContestJoinHandler, kwargs),
            (rf"/api/contests/{ID}", ContestDetailHandler, kwargs),
            (rf"/api/contests/{ID}/open", ContestOpenHandler, kwargs),
            (rf"/api/contests/{ID}/finish", ContestFinishHandler, kwargs),
            (rf"/api/contests/{ID}/teams", ContestTeamsHandler, kwargs),
            (rf"/api/contests/{ID}/teams/{ID}/members", ContestTeamMembersHandler, kwargs),
            (rf"/api/contests/{ID}/teams/{ID}/members/{ID}", ContestTeamMemberHandler, kwargs),
            (rf"/api/contests/{ID}/assignments", ContestAssignmentsHandler, kwargs),
            (rf"/api/contests/{ID}/progress", ContestProgressHandler, kwargs),
            (rf"/api/contests/{ID}/accounts", ContestAccountsHandler, kwargs),
            (rf"/api/contests/{ID}/report\.(csv|html)", ContestReportHandler, kwargs)]
