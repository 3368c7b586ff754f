"""Class contests in the running engine: who plays where (ContestDirectory), and what teachers and students do with
contests (ContestService): create, join, teams, assignments, the clock's opening and ending, rankings, reports."""

import functools
import hashlib
import hmac
import json
import logging
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from domain import valuation
from domain.contests import (
    Assignment,
    AssignmentProgress,
    AssignmentTracker,
    Contest,
    ContestChecks,
    ContestEntry,
    ContestReport,
    ContestRules,
    ContestStanding,
    ContestStatus,
    Moment,
    Participant,
    ReportStudent,
    Roster,
    Schedule,
    TaskState,
    Team,
    Trader,
    new_join_code,
    parse_join_code,
    rank_contest,
)
from domain.errors import BadRequest, Forbidden, NotFound, RateLimited
from domain.market import TRADING_DAYS_PER_YEAR
from domain.risk.limits import RiskLimits
from domain.trading import EventKind, PortfolioLedger, TradeEvent
from domain.users import Role, User
from realtime import channels
from realtime.hub import Publisher
from realtime.protocol import encode_data
from realtime.ratelimit import KeyedBuckets, retry_after
from realtime.wire import contests as wire

from .auth import hash_password, verify_password
from .class_accounts import ClassAccount, account_names, readable_password
from .storage import MAX_HISTORY_LIMIT, Stores

__all__ = ["ContestDirectory", "ContestService", "ContestDetail", "UPDATE_INTERVAL_MS"]

log = logging.getLogger(__name__)

UPDATE_INTERVAL_MS = 5_000  # CONTEST_UPDATE to a contest's subscribers
_HISTORY_LIMIT = 10_000  # orders and fills read back per portfolio for its checklist and report
RANKING_TTL_S = 2.0  # a class subscribing at once ranks its contest once, as the leaderboard does
MIN_SHARPE_RETURNS = 20  # annualised from a handful of 10-second samples a Sharpe ratio reads -86: none before


class ContestDirectory:
    """Owns what the order checks ask on every order: each contest, its roster and assignments, and which contest
    each portfolio plays in. Storage keeps them; this keeps them at hand (a class's worth, read once at start)."""

    def __init__(self, *, storage: Stores, clock, market):
        self._storage, self._clock, self._market = storage, clock, market
        self.contests: dict[str, Contest] = {c.contest_id: c for c in storage.contests()}
        rosters = storage.rosters()
        self.rosters: dict[str, Roster] = {
            contest_id: Roster(contest_id, *rosters.get(contest_id, ([], []))) for contest_id in self.contests}
        self.assignments: dict[str, list[Assignment]] = {cid: [] for cid in self.contests}
        for contest_id, assignments in storage.assignments().items():
            self.assignments.setdefault(contest_id, []).extend(assignments)
        self._portfolio_contest: dict[str, str] = {
            pid: cid for cid, roster in self.rosters.items() for pid in roster.portfolio_ids()}

    def refresh(self) -> None:
        """Read the rosters again: the operator's command line (`stockquest contest accounts`) adds players to
        storage behind the running server's back. Everything the server itself stores is already here."""
        for contest_id, (participants, teams) in self._storage.rosters().items():
            if contest_id in self.contests:
                roster = self.rosters[contest_id]
                if len(participants) != len(roster.participants()) or len(teams) != len(roster.teams()):
                    self.rosters[contest_id] = Roster(contest_id, participants, teams)
                    for portfolio_id in self.rosters[contest_id].portfolio_ids():
                        self._portfolio_contest[portfolio_id] = contest_id

    def reload(self, contest_id: str) -> None:
        """Read one contest's roster again from storage (after a write that storage refused)."""
        participants, teams = self._storage.rosters().get(contest_id, ([], []))
        self.rosters[contest_id] = Roster(contest_id, participants, teams)

    def moment(self) -> Moment:
        """Now on both clocks a contest can be scheduled on."""
        return Moment(self._clock.now_ms(), self._market.day_index)

    def contest_id_of(self, portfolio_id: str) -> str | None:
        return self._portfolio_contest.get(portfolio_id)

    def contest_for(self, portfolio_id: str) -> Contest | None:
        contest_id = self._portfolio_contest.get(portfolio_id)
        return None if contest_id is None else self.contests[contest_id]

    def risk_limits(self, portfolio_id: str) -> RiskLimits | None:
        """The limits a contest portfolio starts with (its contest's rules); None outside contests."""
        contest = self.contest_for(portfolio_id)
        return None if contest is None else _risk_limits(contest.rules)

    def checks(self) -> ContestChecks:
        """The order checks that hold contest portfolios to their contest's rules (see ContestChecks)."""
        return ContestChecks(self.contest_for, self.moment, self._market.quotes)

    def trader(self, portfolio_id: str, user_id: str) -> Trader | None:
        """Who trades when `user_id` orders into a contest portfolio (Forbidden for a non-member); None: the
        portfolio is in no contest, where its owner alone trades."""
        contest_id = self._portfolio_contest.get(portfolio_id)
        return None if contest_id is None else self.rosters[contest_id].trader(portfolio_id, user_id)

    def add(self, contest: Contest) -> None:
        self.contests[contest.contest_id] = contest
        self.rosters.setdefault(contest.contest_id, Roster(contest.contest_id))
        self.assignments.setdefault(contest.contest_id, [])

    def claim(self, contest_id: str, portfolio_id: str) -> None:
        self._portfolio_contest[portfolio_id] = contest_id


@dataclass(frozen=True, slots=True)
class ContestDetail:
    """A contest as one reader may see it: the roster (names only for a participant), the ranking (frozen once it
    ended), the assignments, and for a participant their portfolio and checklist."""

    contest: Contest
    participants: list[Participant]
    teams: list[Team]
    assignments: list[Assignment]
    ranking: tuple[ContestStanding, ...]
    manager: bool                     # its teacher or an admin: sees user ids
    my_portfolio_id: str | None
    progress: list[AssignmentProgress] | None


class ContestService:
    """Owns what teachers and students do with contests, each change stored before it is told.

    Rights: a teacher manages the contests they created, an admin every contest, and a student the ones they
    joined (reading only). A contest's portfolios are ordinary portfolios (with the contest's starting cash) that
    the contest's order checks (ContestDirectory.checks) hold to its rules; a team's is owned by its captain and
    traded by every member. The clock moves a contest on (`tick`); when it ends, its open orders expire and its
    ranking is frozen. Assignment progress is followed live from the committed trades (`on_trades`) and pushed to
    the contest's subscribers as ASSIGNMENT_PROGRESS.
    """

    def __init__(self, *, directory: ContestDirectory, storage: Stores, book, trading, users, market, clock,
                 hub: Publisher, default_rules: ContestRules, value_sample_s: float, rng: random.Random | None = None,
                 hash_cost: int = 2**14):
        self.directory, self._storage, self._book, self._trading = directory, storage, book, trading
        self._users, self._market, self._clock, self._hub = users, market, clock, hub
        self.default_rules = default_rules
        self._value_sample_s = value_sample_s
        self._rng = rng or random.SystemRandom()
        self._hash_cost = hash_cost
        self._sectors = market.sectors()
        self._trackers: dict[str, AssignmentTracker] = {}  # portfolio id -> its checklist, fed live
        self._told: dict[str, list[AssignmentProgress]] = {}  # portfolio id -> the checklist last pushed
        self._done = {cid: self._load_done(cid) for cid in directory.contests}
        self._next_update_ms = 0
        self._rankings: dict[str, tuple[float, tuple[ContestStanding, ...]]] = {}  # contest id -> (when, ranking)
        # Wrong join codes and contest passwords, per user: 5, then one every 12 s (as wrong login passwords).
        self._join_guesses = KeyedBuckets(rate=1 / 12, burst=5, clock=clock)
        self._digest_key = secrets.token_bytes(32)  # this process's: the digests below mean nothing elsewhere
        self._known_passwords: set[bytes] = set()  # digests of contest passwords that verified

    # ----- rights -------------------------------------------------------------------------------------------

    def _manages(self, user: User, contest: Contest) -> bool:
        role = self._users.role_of(user)
        return role is Role.ADMIN or (role is Role.TEACHER and contest.teacher_id == str(user.id))

    def _contest(self, contest_id: str) -> Contest:
        contest = self.directory.contests.get(contest_id)
        if contest is None:
            raise NotFound(f"contest {contest_id} not found")
        return contest

    def managed(self, user: User, contest_id: str) -> Contest:
        """The contest if `user` manages it; Forbidden otherwise (an unknown id too, for anyone but an admin)."""
        contest = self.directory.contests.get(contest_id)
        if contest is None and self._users.role_of(user) is Role.ADMIN:
            raise NotFound(f"contest {contest_id} not found")
        if contest is None or not self._manages(user, contest):
            raise Forbidden(f"contest {contest_id} is not yours")
        return contest

    # ----- reading ------------------------------------------------------------------------------------------

    def visible(self, user: User) -> list[tuple[Contest, str | None]]:
        """The contests `user` sees, oldest first, each with the portfolio they trade in it (None: not theirs, or
        a team contest before their team is formed): a teacher's own, every one for an admin, a student's joined."""
        role, user_id = self._users.role_of(user), str(user.id)
        out = []
        for contest in self._current():
            roster = self.directory.rosters[contest.contest_id]
            joined = roster.participant(user_id) is not None
            if joined or role is Role.ADMIN or (role is Role.TEACHER and contest.teacher_id == user_id):
                out.append((contest, roster.portfolio_of(user_id)))
        return out

    def detail(self, user: User, contest_id: str) -> ContestDetail:
        """A contest for its managers and participants; Forbidden for anyone else (another teacher too), and for an
        unknown id to anyone but an admin (so that ids do not tell which contests exist)."""
        if contest_id not in self.directory.contests:
            self.managed(user, contest_id)  # raises: NotFound to an admin, Forbidden to anyone else
        contest = self._contest_now(contest_id)
        roster = self.directory.rosters[contest_id]
        user_id = str(user.id)
        manager = self._manages(user, contest)
        if not manager and roster.participant(user_id) is None:
            raise Forbidden(f"contest {contest_id} is not yours")
        mine = roster.portfolio_of(user_id)
        return ContestDetail(contest, roster.participants(), roster.teams(),
                             list(self.directory.assignments[contest_id]), self.ranking(contest), manager, mine,
                             None if mine is None else self.checklist(contest, mine))

    def ranking(self, contest: Contest, *, fresh: bool = False) -> tuple[ContestStanding, ...]:
        """The contest's ranking: the frozen one once it has ended, else as its portfolios stand now, ranked at most
        once every RANKING_TTL_S however many ask (it reads every portfolio's value samples); `fresh`: now."""
        if contest.final_ranking is not None:
            return contest.final_ranking
        now = self._clock.now()
        ranked = self._rankings.get(contest.contest_id)
        if fresh or ranked is None or now - ranked[0] >= RANKING_TTL_S:
            ranked = self._rankings[contest.contest_id] = now, self._rank(contest)
        return ranked[1]

    def _rank(self, contest: Contest) -> tuple[ContestStanding, ...]:
        roster = self.directory.rosters[contest.contest_id]
        quotes = self._market.quotes()
        since = contest.opened_at.wall_ms if contest.opened_at else None
        entries = []
        for portfolio_id in roster.portfolio_ids():
            ledger = self._book.ledger(portfolio_id)
            view = valuation.portfolio_view(ledger, quotes, self._sectors)
            values = [p.value_cents for p in self._storage.values_of(portfolio_id, since_ms=since)]
            values.append(view.total_value_cents)
            entries.append(ContestEntry(portfolio_id, roster.name_of(portfolio_id),
                                        contest.rules.starting_cash_cents, values,
                                        {p.symbol: p.market_value_cents for p in view.positions}))
        return rank_contest(entries, self._sectors, periods_per_year=self._periods_per_year(),
                            min_sharpe_returns=MIN_SHARPE_RETURNS)

    def _periods_per_year(self) -> float:
        sample_ms = self._value_sample_s * 1000 * self._market.speed
        return TRADING_DAYS_PER_YEAR * self._market.day_length_ms / max(sample_ms, 1)

    # ----- a teacher's contest -------------------------------------------------------------------------------

    def create(self, user: User, *, name: str, rules: ContestRules, schedule: Schedule,
               password: str | None) -> Contest:
        if self._users.role_of(user) not in (Role.TEACHER, Role.ADMIN):
            raise Forbidden("only teachers and admins create contests")
        taken = {c.join_code for c in self.directory.contests.values()}
        contest = self._storage.create_contest(
            teacher_id=str(user.id), name=name, join_code=new_join_code(self._rng, taken), rules=rules,
            schedule=schedule, password_hash=self._hash(password), now_ms=self._clock.now_ms())
        self.directory.add(contest)
        self._done[contest.contest_id] = {}
        log.info("contest %s %r created by user %s", contest.contest_id, contest.name, user.id)
        return self._contest_now(contest.contest_id)  # already open when its start has passed

    def revise(self, user: User, contest_id: str, *, name=None, rules=None, schedule=None, password=...) -> Contest:
        """New name, rules, schedule or password (None removes it) while the contest is a draft."""
        contest = self.managed(user, contest_id)
        revised = contest.revised(self.directory.moment(), name=name, rules=rules, schedule=schedule,
                                  **({} if password is ... else {"password_hash": self._hash(password)}))
        return self._store(revised)

    def open(self, user: User, contest_id: str) -> Contest:
        return self._store(self.managed(user, contest_id).open(self.directory.moment()))

    def finish(self, user: User, contest_id: str) -> Contest:
        return self._store(self.managed(user, contest_id).finish(self.directory.moment()))

    def _hash(self, password: str | None) -> str | None:
        if password is None:
            return None
        if not isinstance(password, str) or not 1 <= len(password) <= 128:
            raise BadRequest("a contest password is 1 to 128 characters")
        return hash_password(password, n=self._hash_cost)

    def _store(self, contest: Contest) -> Contest:
        """Store a changed contest; one that has just finished stops trading and freezes its ranking first."""
        before = self.directory.contests[contest.contest_id]
        if contest == before:
            return contest
        if contest.status is ContestStatus.FINISHED and contest.final_ranking is None:
            portfolios = self.directory.rosters[contest.contest_id].portfolio_ids()
            self._trading.stop_trading(portfolios, reason=f'the contest "{contest.name}" has ended')
            contest = contest.freeze(self.ranking(contest, fresh=True))
        self._storage.save_contest(contest)
        self.directory.contests[contest.contest_id] = contest
        if contest.status is not before.status:
            log.info("contest %s is %s", contest.contest_id, contest.status)
            self._publish_update(contest)
        return contest

    def _current(self) -> list[Contest]:
        """Every contest, with what the clock changed stored."""
        return [self._contest_now(cid) for cid in list(self.directory.contests)]

    def _contest_now(self, contest_id: str) -> Contest:
        contest = self._contest(contest_id)
        moved = contest.at(self.directory.moment())
        return contest if moved is contest else self._store(moved)

    def tick(self) -> None:
        """Move every contest on by the clock (opening, ending) and push CONTEST_UPDATE to subscribers that are due."""
        contests = self._current()
        now = self._clock.now_ms()
        if now < self._next_update_ms:
            return
        self._next_update_ms = now + UPDATE_INTERVAL_MS
        self.directory.refresh()
        for contest in contests:
            if self._held(contest.contest_id, channels.contest(contest.contest_id)):
                self._publish_update(contest)
        self.sample_weights(now)

    def _held(self, contest_id: str, name: str) -> bool:
        """Whether anyone (on any node) holds `name`, one of the contest's channels."""
        return name in self._hub.channels(channels.contest_prefix(contest_id))

    def _publish_update(self, contest: Contest) -> None:
        name = channels.contest(contest.contest_id)
        if self._held(contest.contest_id, name):
            self._hub.publish(name, "CONTEST_UPDATE", encode_data(wire.update(contest, self.ranking(contest))))

    # ----- joining and teams --------------------------------------------------------------------------------

    def join(self, user: User, *, code: str, nickname: str, password: str | None) -> tuple[Contest, str | None]:
        """`user` joins the contest of `code` under `nickname`: their own portfolio with the contest's starting cash
        (none yet in a team contest). NotFound for a code no contest has; see Roster.admit for the rest."""
        guesses = self._join_guesses.bucket(str(user.id))
        if not guesses.allow():
            wait = guesses.wait_s()
            raise RateLimited(f"too many wrong join codes or passwords; try again in {retry_after(wait)} s", wait)
        try:
            code = parse_join_code(code)
            contest = next((c for c in self.directory.contests.values() if c.join_code == code), None)
            if contest is None:
                raise NotFound(f"no contest has the code {code}")
            contest = self._contest_now(contest.contest_id)
            roster = self.directory.rosters[contest.contest_id]
            admission = roster.admit(contest, user_id=str(user.id), nickname=nickname, password=password,
                                     verify_password=self._verify_password, moment=self.directory.moment())
        except (NotFound, Forbidden):
            raise  # a wrong code or password: the guess stays counted
        except Exception:
            guesses.refund()
            raise
        guesses.refund()
        portfolio = (f"{contest.name[:40]} ({admission.nickname})", contest.rules.starting_cash_cents) \
            if admission.needs_portfolio else None
        participant = self._storage.join_contest(contest.contest_id, user_id=admission.user_id,
                                                 nickname=admission.nickname, joined_ms=self._clock.now_ms(),
                                                 portfolio=portfolio)
        roster.enrol(admission, portfolio_id=participant.portfolio_id, joined_ms=participant.joined_ms)
        if participant.portfolio_id is not None:
            self._claim(contest, participant.portfolio_id)
        log.info("user %s joined contest %s as %r", user.id, contest.contest_id, participant.nickname)
        return contest, participant.portfolio_id

    def _verify_password(self, password: str, password_hash: str) -> bool:
        """A contest password against its hash. A class joins at once with one password: scrypt (tens of ms, on the
        loop) is run until it first matches; after that the same password is recognised by a keyed digest kept in
        memory only, so thirty joins cost one scrypt."""
        digest = hmac.new(self._digest_key, f"{password_hash}\0{password}".encode(), hashlib.sha256).digest()
        if digest in self._known_passwords:
            return True
        if not verify_password(password, password_hash):
            return False
        self._known_passwords.add(digest)
        return True

    def form_team(self, user: User, contest_id: str, *, name: str, members: Sequence[str]) -> Team:
        """A team of joined students sharing one new portfolio, owned by the first (the captain)."""
        contest = self.managed(user, contest_id)
        roster = self.directory.rosters[contest_id]
        plan = roster.plan_team(contest, name=name, members=members, moment=self.directory.moment())
        team = self._storage.create_team(contest_id, name=plan.name, members=plan.members,
                                         portfolio_name=f"{contest.name[:40]} ({plan.name})",
                                         starting_cash_cents=contest.rules.starting_cash_cents)
        roster.form_team(plan, team_id=team.team_id, portfolio_id=team.portfolio_id)
        self._claim(contest, team.portfolio_id)
        return team

    def add_member(self, user: User, contest_id: str, team_id: str, member_id: str) -> Team:
        """Put a joined student without a team into a team (up to the contest's team size)."""
        return self._change_team(user, contest_id, lambda roster, contest, moment: roster.add_member(
            contest, team_id=team_id, user_id=member_id, moment=moment))

    def remove_member(self, user: User, contest_id: str, team_id: str, member_id: str) -> Team:
        """Take a member out of a team (never its captain, who owns the portfolio; at least 2 stay). Their orders
        stay the team's."""
        return self._change_team(user, contest_id, lambda roster, contest, moment: roster.remove_member(
            contest, team_id=team_id, user_id=member_id, moment=moment))

    def _change_team(self, user: User, contest_id: str, change) -> Team:
        """A team change the roster judges and makes, then stores; when storage refuses it, the roster is read
        back from storage, so it never holds what storage does not."""
        contest = self.managed(user, contest_id)
        team = change(self.directory.rosters[contest_id], contest, self.directory.moment())
        try:
            self._storage.set_team_members(team)
        except Exception:
            self.directory.reload(contest_id)
            raise
        log.info("team %s of contest %s is now %s", team.team_id, contest_id, list(team.members))
        return team

    def _claim(self, contest: Contest, portfolio_id: str) -> None:
        self.directory.claim(contest.contest_id, portfolio_id)
        self._book.ledger(portfolio_id)  # into the engine now, so the first order finds it

    def create_accounts(self, user: User, contest_id: str, *, prefix: str, count: int) -> list[ClassAccount]:
        """`count` new student logins (prefix01, prefix02, ...) with readable first passwords, each already in the
        contest under their username; all or none (BadRequest when a name is taken, nothing created)."""
        contest = self.managed(user, contest_id)
        try:
            names = account_names(prefix, count)
        except ValueError as error:
            raise BadRequest(str(error)) from None
        taken = [n for n in names if self._users.by_name(n) is not None]
        if taken:
            raise BadRequest(f"these usernames are taken: {', '.join(taken[:5])}; choose another prefix")
        roster = self.directory.rosters[contest_id]
        moment = self.directory.moment()
        for name in names:  # judged before anything is created
            roster.admit(contest, user_id=f"new:{name}", nickname=name, password=None,
                         verify_password=None, moment=moment)
        accounts = []
        for name in names:
            password = readable_password()
            student = self._users.create(name, name, hash_password(password, n=self._hash_cost))
            admission = roster.admit(contest, user_id=str(student.id), nickname=name, password=None,
                                     verify_password=None, moment=moment)
            portfolio = (f"{contest.name[:40]} ({name})", contest.rules.starting_cash_cents) \
                if admission.needs_portfolio else None
            participant = self._storage.join_contest(contest_id, user_id=str(student.id), nickname=name,
                                                     joined_ms=self._clock.now_ms(), portfolio=portfolio)
            roster.enrol(admission, portfolio_id=participant.portfolio_id, joined_ms=participant.joined_ms)
            if participant.portfolio_id is not None:
                self._claim(contest, participant.portfolio_id)
            accounts.append(ClassAccount(name, password))
        log.info("%d accounts %s.. made for contest %s by user %s", count, prefix, contest_id, user.id)
        return accounts

    # ----- assignments --------------------------------------------------------------------------------------

    def add_assignment(self, user: User, contest_id: str, task, due_ms: int) -> Assignment:
        contest = self.managed(user, contest_id)
        if contest.status_at(self.directory.moment()) is ContestStatus.FINISHED:
            raise BadRequest(f'the contest "{contest.name}" has ended')
        assignment = self._storage.add_assignment(contest_id, task, due_ms, now_ms=self._clock.now_ms())
        self.directory.assignments[contest_id].append(assignment)
        for portfolio_id in self.directory.rosters[contest_id].portfolio_ids():
            self._trackers.pop(portfolio_id, None)  # rebuilt with the new task from the history
        self._push_progress(contest, self.directory.rosters[contest_id].portfolio_ids())
        return assignment

    def class_progress(self, user: User, contest_id: str) -> list[tuple[Participant, str | None,
                                                                          list[AssignmentProgress]]]:
        """Every participant's checklist (a team's members share their team's)."""
        contest = self.managed(user, contest_id)
        roster = self.directory.rosters[contest_id]
        out = []
        for participant in roster.participants():
            portfolio_id = roster.portfolio_of(participant.user_id)
            tasks = [] if portfolio_id is None else self.checklist(contest, portfolio_id)
            out.append((participant, portfolio_id, tasks))
        return out

    def checklist(self, contest: Contest, portfolio_id: str) -> list[AssignmentProgress]:
        """The portfolio's progress on its contest's assignments, as the server judged it from its trades."""
        assignments = self.directory.assignments[contest.contest_id]
        if not assignments:
            return []
        tracker = self._trackers.get(portfolio_id)
        if tracker is None:
            tracker = self._trackers[portfolio_id] = self._replay(assignments, portfolio_id)
        progress = tracker.progress(self._clock.now_ms())
        done = self._done[contest.contest_id].get(portfolio_id, {})
        out = []
        for line in progress:  # a task once done stays done, across restarts too
            if line.state is not TaskState.DONE and line.assignment_id in done:
                line = AssignmentProgress(line.assignment_id, line.kind, TaskState.DONE, done[line.assignment_id],
                                          line.target, line.target, line.text)
            out.append(line)
        return out

    def _replay(self, assignments: list[Assignment], portfolio_id: str) -> AssignmentTracker:
        """A tracker fed the portfolio's stored orders and fills, and its ledger as it is now."""
        orders = self._orders_of(portfolio_id)
        by_id = {order.order_id: order for order in orders}
        events = [TradeEvent(EventKind.ORDER_SUBMITTED, order) for order in orders if order.reject_reason is None]
        events += [TradeEvent(EventKind.EXECUTION_REPORT, by_id[fill.order_id], fill)
                   for fill in self._storage.fills_for(portfolio_id, limit=_HISTORY_LIMIT) if fill.order_id in by_id]
        tracker = AssignmentTracker(assignments, self._sectors)
        for event in sorted(events, key=_event_time):
            tracker.observe_event(event)
        tracker.observe_ledger(self._clock.now_ms(), self._book.ledger(portfolio_id))
        return tracker

    def _orders_of(self, portfolio_id: str) -> list:
        """The portfolio's orders, newest first, a page at a time up to _HISTORY_LIMIT (a contest's worth)."""
        orders, cursor = [], None
        while len(orders) < _HISTORY_LIMIT:
            page, cursor = self._storage.order_history(user_ids=None, portfolio_id=portfolio_id,
                                                       limit=MAX_HISTORY_LIMIT, before=cursor)
            orders += page
            if cursor is None:
                break
        return orders

    def on_trades(self, events: Iterable[TradeEvent], ledgers: Iterable[PortfolioLedger]) -> None:
        """Committed trading: feed the checklists of the contest portfolios it touched, push what changed."""
        touched: dict[str, list[str]] = {}
        now = self._clock.now_ms()
        for event in events:
            contest = self.directory.contest_for(event.order.portfolio_id)
            if contest is not None and self.directory.assignments[contest.contest_id]:
                tracker = self._trackers.get(event.order.portfolio_id)
                if tracker is not None:
                    tracker.observe_event(event)
                touched.setdefault(contest.contest_id, []).append(event.order.portfolio_id)
        for ledger in ledgers:
            contest = self.directory.contest_for(ledger.portfolio_id)
            if contest is not None and self.directory.assignments[contest.contest_id]:
                tracker = self._trackers.get(ledger.portfolio_id)
                if tracker is not None:
                    tracker.observe_ledger(now, ledger)
                touched.setdefault(contest.contest_id, []).append(ledger.portfolio_id)
        for contest_id, portfolio_ids in touched.items():
            self._push_progress(self.directory.contests[contest_id], dict.fromkeys(portfolio_ids))

    def sample_weights(self, now_ms: int) -> None:
        """The largest position weight of every portfolio with a KEEP_WEIGHT_UNDER task, for its checklist."""
        quotes = self._market.quotes()
        for contest_id, assignments in self.directory.assignments.items():
            if not any(a.task.kind == "KEEP_WEIGHT_UNDER" for a in assignments):
                continue
            contest = self.directory.contests[contest_id]
            if contest.status_at(self.directory.moment()) is not ContestStatus.OPEN:
                continue
            portfolio_ids = self.directory.rosters[contest_id].portfolio_ids()
            for portfolio_id in portfolio_ids:
                self.checklist(contest, portfolio_id)  # builds the tracker if need be
                view = valuation.portfolio_view(self._book.ledger(portfolio_id), quotes, self._sectors)
                weights = [p.weight for p in view.positions if p.quantity]
                self._trackers[portfolio_id].observe_weight(now_ms, max(weights) if weights else None)
            self._push_progress(contest, portfolio_ids)

    def _push_progress(self, contest: Contest, portfolio_ids: Iterable[str]) -> None:
        """ASSIGNMENT_PROGRESS to the contest's subscribers who play in a portfolio whose checklist changed; a
        task newly done is stored, so it stays done whatever happens after."""
        done = self._done[contest.contest_id]
        for portfolio_id in portfolio_ids:
            tasks = self.checklist(contest, portfolio_id)
            if tasks == self._told.get(portfolio_id):
                continue
            self._told[portfolio_id] = tasks
            fresh = {t.assignment_id: t.done_at_ms for t in tasks
                     if t.state is TaskState.DONE and t.assignment_id not in done.get(portfolio_id, {})}
            if fresh:
                done.setdefault(portfolio_id, {}).update(fresh)
                self._storage.save_state(_done_key(contest.contest_id), json.dumps(done), now_ms=self._clock.now_ms())
            name = channels.contest_portfolio(contest.contest_id, portfolio_id)
            if self._held(contest.contest_id, name):
                self._hub.publish(name, "ASSIGNMENT_PROGRESS",
                                  encode_data(wire.progress_update(contest, portfolio_id, tasks,
                                                                   self.directory.assignments[contest.contest_id])))

    def _load_done(self, contest_id: str) -> dict[str, dict[str, int]]:
        stored = self._storage.load_state(_done_key(contest_id))
        return {} if stored is None else json.loads(stored)

    # ----- subscriptions ------------------------------------------------------------------------------------

    def subscription(self, user: User, contest_id: str) -> tuple[ContestDetail, list[str]]:
        """SUBSCRIBE_CONTEST: the contest as `user` sees it and the channels to hold (its updates, and a
        participant's checklist)."""
        detail = self.detail(user, contest_id)
        names = [channels.contest(contest_id)]
        if detail.my_portfolio_id is not None:
            names.append(channels.contest_portfolio(contest_id, detail.my_portfolio_id))
            self._told[detail.my_portfolio_id] = detail.progress
        return detail, names

    # ----- reports ------------------------------------------------------------------------------------------

    def report(self, user: User, contest_id: str, *, index_series: str) -> ContestReport:
        """The contest's report for its teacher or an admin: the ranking, and per portfolio its trades, orders (who
        placed each, the journal), checklist and value over the contest beside the index (`index_series`)."""
        contest = self._contest_now(contest_id)
        if not self._manages(user, contest):
            raise Forbidden(f"contest {contest_id} is not yours")
        roster = self.directory.rosters[contest_id]
        since = contest.opened_at.wall_ms if contest.opened_at else None
        until = contest.finished_at.wall_ms if contest.finished_at else None
        students = []
        for portfolio_id in roster.portfolio_ids():
            orders = self._orders_of(portfolio_id)
            students.append(ReportStudent(
                portfolio_id=portfolio_id, name=roster.name_of(portfolio_id), members=_members(roster, portfolio_id),
                trades=tuple(self._storage.fills_for(portfolio_id, limit=_HISTORY_LIMIT)), orders=tuple(orders),
                progress=tuple(self.checklist(contest, portfolio_id)),
                values=_window(self._storage.values_of(portfolio_id, since_ms=since), until)))
        return ContestReport(
            contest_name=contest.name, teacher_name=self.user_name(contest.teacher_id), status=contest.status,
            schedule=contest.schedule, starting_cash_cents=contest.rules.starting_cash_cents,
            generated_at_ms=self._clock.now_ms(), standings=self.ranking(contest), students=tuple(students),
            index=_window(self._storage.values_of(index_series, since_ms=since), until),
            nicknames={p.user_id: p.nickname for p in roster.participants()},
            index_name=f"Market index ({index_series})")

    def user_name(self, user_id: str) -> str:
        user = self._users.by_id(int(user_id)) if user_id.isdigit() else None
        return user.display_name if user is not None else user_id


def _members(roster: Roster, portfolio_id: str) -> tuple[str, ...]:
    team = next((t for t in roster.teams() if t.portfolio_id == portfolio_id), None)
    if team is None:
        return ()
    return tuple(roster.participant(m).nickname for m in team.members)


def _window(points, until_ms: int | None) -> tuple[tuple[int, int], ...]:
    return tuple((p.time_ms, p.value_cents) for p in points if until_ms is None or p.time_ms <= until_ms)


def _event_time(event: TradeEvent) -> int:
    return event.fill.time_ms if event.fill is not None else event.order.created_at_ms


def _done_key(contest_id: str) -> str:
    return f"contest:{contest_id}:done"


@functools.lru_cache(maxsize=256)
def _risk_limits(rules: ContestRules) -> RiskLimits:
    """A contest's starting limits, built once per set of rules: the pre-trade check asks on every order."""
    return rules.risk_limits()
