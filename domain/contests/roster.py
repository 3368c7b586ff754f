"""Who plays in a contest: the students who joined under a nickname, the teams they form, and who may trade what."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from domain.errors import BadRequest, Conflict, Forbidden, NotFound

from .codes import display_name, name_key
from .contest import Contest, ContestStatus, Moment
from .rules import MIN_TEAM_SIZE

__all__ = ["Participant", "Team", "Trader", "Admission", "TeamPlan", "Roster"]


@dataclass(frozen=True, slots=True)
class Participant:
    """One student in one contest: the nickname the contest shows (it asks for nothing else about them), when they
    joined, and their own portfolio (None in a team contest, where they trade their team's)."""

    user_id: str
    nickname: str
    joined_ms: int
    portfolio_id: str | None


@dataclass(frozen=True, slots=True)
class Team:
    """2 to the contest's max_team_size students sharing one portfolio. `members` are user ids, the captain first:
    the captain's user owns the portfolio's ledger, so the captain stays while the team exists."""

    team_id: str
    name: str
    portfolio_id: str
    members: tuple[str, ...]

    @property
    def captain_id(self) -> str:
        return self.members[0]


@dataclass(frozen=True, slots=True)
class Trader:
    """Who an order into a contest portfolio is for and by: give the engine `owner_id` as its user and
    `placed_by=placed_by` (the engine records it as Order.placed_by when it is not the owner)."""

    owner_id: str
    placed_by: str


@dataclass(frozen=True, slots=True)
class Admission:
    """A join the roster judged valid; `needs_portfolio` says whether to create the student's own portfolio (with
    the contest's starting cash) before `Roster.enrol` records it."""

    user_id: str
    nickname: str
    needs_portfolio: bool


@dataclass(frozen=True, slots=True)
class TeamPlan:
    """A team the roster judged valid: create its portfolio (owned by `members[0]`), then `Roster.form_team`."""

    name: str
    members: tuple[str, ...]


class Roster:
    """Owns one contest's participants and teams: nicknames and team names unique case-insensitively, a student in
    at most one team, a team of 2 to max_team_size members, and who may trade which of its portfolios.

    Joining and forming a team are two steps, because a portfolio's id comes from storage: `admit` / `plan_team`
    judge the request and change nothing, then `enrol` / `form_team` record it with the new portfolio's id (and
    judge it again, so nothing slips in between).
    """

    def __init__(self, contest_id: str, participants: Iterable[Participant] = (), teams: Iterable[Team] = ()):
        self.contest_id = contest_id
        self._participants: dict[str, Participant] = {}
        self._nicknames: dict[str, str] = {}   # name_key -> user id
        self._teams: dict[str, Team] = {}
        self._team_names: dict[str, str] = {}  # name_key -> team id
        self._team_of: dict[str, str] = {}     # user id -> team id
        self._portfolios: dict[str, tuple[str, str]] = {}  # portfolio id -> ("user" | "team", whose)
        for participant in participants:
            self._add_participant(participant)
        for team in teams:
            self._add_team(team)

    # ----- reading -----------------------------------------------------------------------------------------

    def participants(self) -> list[Participant]:
        """Everyone who joined, in the order they joined."""
        return list(self._participants.values())

    def participant(self, user_id: str) -> Participant | None:
        return self._participants.get(user_id)

    def teams(self) -> list[Team]:
        return list(self._teams.values())

    def team_of(self, user_id: str) -> Team | None:
        team_id = self._team_of.get(user_id)
        return None if team_id is None else self._teams[team_id]

    def portfolio_of(self, user_id: str) -> str | None:
        """The portfolio `user_id` trades in this contest: their team's, else their own (None: not in one yet)."""
        team = self.team_of(user_id)
        if team is not None:
            return team.portfolio_id
        participant = self._participants.get(user_id)
        return None if participant is None else participant.portfolio_id

    def portfolio_ids(self) -> list[str]:
        """Every portfolio of the contest (what its end stops and its ranking ranks)."""
        return list(self._portfolios)

    def name_of(self, portfolio_id: str) -> str:
        """The name a portfolio goes by in the contest: its student's nickname or its team's name."""
        kind, owner = self._owner(portfolio_id)
        return self._teams[owner].name if kind == "team" else self._participants[owner].nickname

    def trader(self, portfolio_id: str, user_id: str) -> Trader:
        """Who trades when `user_id` places an order into `portfolio_id`: its own student, or any member of its team
        (for the captain who owns the ledger). NotFound for a portfolio not in the contest; Forbidden for anyone
        else, teachers included (they watch, they do not trade)."""
        kind, owner = self._owner(portfolio_id)
        if kind == "user":
            if owner != user_id:
                raise Forbidden("that portfolio belongs to someone else")
            return Trader(user_id, user_id)
        team = self._teams[owner]
        if user_id not in team.members:
            raise Forbidden(f'only the members of team "{team.name}" may trade its portfolio')
        return Trader(team.captain_id, user_id)

    # ----- joining -----------------------------------------------------------------------------------------

    def admit(self, contest: Contest, *, user_id: str, nickname: str, password: str | None,
              verify_password: Callable[[str, str], bool] | None, moment: Moment) -> Admission:
        """Judge `user_id` joining `contest` under `nickname`; nothing changes yet.

        BadRequest once the contest has finished or for a nickname that is not valid (see `display_name`);
        Forbidden for a missing or wrong password (`verify_password(password, contest.password_hash)` says, when
        the contest has one; None when the teacher enrols the student, who is asked for no password); Conflict
        when the student already joined or the nickname is taken.
        """
        self._same_contest(contest)
        if contest.status_at(moment) is ContestStatus.FINISHED:
            raise BadRequest(f'the contest "{contest.name}" has ended: it takes no new players')
        if contest.password_hash is not None and verify_password is not None and (
                not isinstance(password, str) or not verify_password(password, contest.password_hash)):
            raise Forbidden(f'wrong password for the contest "{contest.name}"')
        name = display_name(nickname)
        joined = self._participants.get(user_id)
        if joined is not None:
            raise Conflict(f'you already joined "{contest.name}" as {joined.nickname}')
        if name_key(name) in self._nicknames:
            raise Conflict(f'the nickname "{name}" is taken in this contest')
        return Admission(user_id, name, needs_portfolio=not contest.rules.teams)

    def enrol(self, admission: Admission, *, portfolio_id: str | None, joined_ms: int) -> Participant:
        """Record an admitted student, with their new portfolio (None in a team contest)."""
        if (portfolio_id is None) == admission.needs_portfolio:
            raise ValueError("a student gets their own portfolio exactly when the contest has no teams")
        participant = Participant(admission.user_id, admission.nickname, joined_ms, portfolio_id)
        self._add_participant(participant)
        return participant

    # ----- teams -------------------------------------------------------------------------------------------

    def plan_team(self, contest: Contest, *, name: str, members: Iterable[str], moment: Moment) -> TeamPlan:
        """Judge a new team of `members` (user ids, the captain first); nothing changes yet.

        BadRequest when the contest has no teams or has finished, for a name that is not valid, for fewer than 2 or
        more than max_team_size members, or a member who has not joined; Conflict for a taken team name or a member
        already in a team.
        """
        self._same_contest(contest)
        self._teams_editable(contest, moment)
        team_name = display_name(name, "team name")
        chosen = tuple(dict.fromkeys(members))
        self._check_size(contest, len(chosen))
        for user_id in chosen:
            self._check_free(user_id)
        if name_key(team_name) in self._team_names:
            raise Conflict(f'the team name "{team_name}" is taken in this contest')
        return TeamPlan(team_name, chosen)

    def form_team(self, plan: TeamPlan, *, team_id: str, portfolio_id: str) -> Team:
        """Record a planned team with its new portfolio (owned by the captain, `plan.members[0]`)."""
        team = Team(team_id, plan.name, portfolio_id, plan.members)
        self._add_team(team)
        return team

    def add_member(self, contest: Contest, *, team_id: str, user_id: str, moment: Moment) -> Team:
        """Put a joined student without a team into `team_id` (BadRequest past max_team_size)."""
        self._same_contest(contest)
        self._teams_editable(contest, moment)
        team = self._team(team_id)
        self._check_free(user_id)
        self._check_size(contest, len(team.members) + 1)
        return self._replace_team(replace(team, members=(*team.members, user_id)))

    def remove_member(self, contest: Contest, *, team_id: str, user_id: str, moment: Moment) -> Team:
        """Take a member out of `team_id`; BadRequest for the captain (who owns the portfolio) or when fewer than 2
        would be left. Their orders stay the team's."""
        self._same_contest(contest)
        self._teams_editable(contest, moment)
        team = self._team(team_id)
        if user_id not in team.members:
            raise NotFound(f'{user_id!r} is not a member of team "{team.name}"')
        if user_id == team.captain_id:
            raise BadRequest(f'the captain of team "{team.name}" owns its portfolio and cannot leave it')
        if len(team.members) - 1 < MIN_TEAM_SIZE:
            raise BadRequest(f"a team needs at least {MIN_TEAM_SIZE} members")
        return self._replace_team(replace(team, members=tuple(m for m in team.members if m != user_id)))

    # ----- the bookkeeping ---------------------------------------------------------------------------------

    def _same_contest(self, contest: Contest) -> None:
        if contest.contest_id != self.contest_id:
            raise ValueError(f"this roster is contest {self.contest_id}'s, not {contest.contest_id}'s")

    def _teams_editable(self, contest: Contest, moment: Moment) -> None:
        if not contest.rules.teams:
            raise BadRequest(f'the contest "{contest.name}" is played alone, not in teams')
        if contest.status_at(moment) is ContestStatus.FINISHED:
            raise BadRequest(f'the contest "{contest.name}" has ended: its teams are final')

    def _check_size(self, contest: Contest, size: int) -> None:
        largest = contest.rules.max_team_size
        if not MIN_TEAM_SIZE <= size <= largest:
            raise BadRequest(f"a team has {MIN_TEAM_SIZE} to {largest} members, not {size}")

    def _check_free(self, user_id: str) -> None:
        participant = self._participants.get(user_id)
        if participant is None:
            raise BadRequest(f"{user_id!r} has not joined this contest")
        if user_id in self._team_of:
            raise Conflict(f"{participant.nickname} is already in a team")

    def _team(self, team_id: str) -> Team:
        team = self._teams.get(team_id)
        if team is None:
            raise NotFound(f"unknown team {team_id!r}")
        return team

    def _owner(self, portfolio_id: str) -> tuple[str, str]:
        owner = self._portfolios.get(portfolio_id)
        if owner is None:
            raise NotFound(f"portfolio {portfolio_id!r} is not in this contest")
        return owner

    def _claim_portfolio(self, portfolio_id: str, kind: str, owner: str) -> None:
        if portfolio_id in self._portfolios:
            raise ValueError(f"portfolio {portfolio_id} is already in this contest")
        self._portfolios[portfolio_id] = (kind, owner)

    def _add_participant(self, participant: Participant) -> None:
        if participant.user_id in self._participants:
            raise Conflict(f"{participant.user_id!r} already joined")
        key = name_key(participant.nickname)
        if key in self._nicknames:
            raise Conflict(f'the nickname "{participant.nickname}" is taken in this contest')
        if participant.portfolio_id is not None:
            self._claim_portfolio(participant.portfolio_id, "user", participant.user_id)
        self._participants[participant.user_id] = participant
        self._nicknames[key] = participant.user_id

    def _add_team(self, team: Team) -> None:
        if team.team_id in self._teams:
            raise ValueError(f"team {team.team_id} already exists")
        if len(set(team.members)) != len(team.members) or len(team.members) < MIN_TEAM_SIZE:
            raise ValueError(f"team {team.team_id} needs at least {MIN_TEAM_SIZE} distinct members")
        for user_id in team.members:
            self._check_free(user_id)
        key = name_key(team.name)
        if key in self._team_names:
            raise Conflict(f'the team name "{team.name}" is taken in this contest')
        self._claim_portfolio(team.portfolio_id, "team", team.team_id)
        self._teams[team.team_id] = team
        self._team_names[key] = team.team_id
        for user_id in team.members:
            self._team_of[user_id] = team.team_id

    def _replace_team(self, team: Team) -> Team:
        old = self._teams[team.team_id]
        for user_id in old.members:
            del self._team_of[user_id]
        for user_id in team.members:
            self._team_of[user_id] = team.team_id
        self._teams[team.team_id] = team
        return team
