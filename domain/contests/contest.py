"""A class contest and its life: draft, open, finished, moved by its teacher or by the clock reaching its bounds."""

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from domain.errors import BadRequest, Conflict

from .codes import display_name, parse_join_code
from .ranking import ContestStanding
from .rules import ContestRules

__all__ = ["ContestStatus", "Moment", "DaySchedule", "WallSchedule", "Schedule", "Contest", "MAX_CONTEST_NAME_LENGTH"]

MAX_CONTEST_NAME_LENGTH = 80


class ContestStatus(enum.StrEnum):
    """DRAFT (being prepared: students may join, nobody trades), OPEN (trading), FINISHED (final: nothing moves)."""

    DRAFT = "DRAFT"
    OPEN = "OPEN"
    FINISHED = "FINISHED"


@dataclass(frozen=True, slots=True)
class Moment:
    """Now, on both clocks a contest can be scheduled on: wall-clock epoch ms and the simulated market's day index."""

    wall_ms: int
    day_index: int


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class DaySchedule:
    """A contest over the simulated trading days `first_day` to `last_day` (the market's day indexes, both included):
    it opens when day `first_day` begins and finishes when day `last_day + 1` does."""

    first_day: int
    last_day: int

    def __post_init__(self):
        if not (_whole(self.first_day) and _whole(self.last_day)) or not 0 <= self.first_day <= self.last_day:
            raise BadRequest("a contest's days must be day numbers with the first at most the last")

    def started(self, moment: Moment) -> bool:
        return moment.day_index >= self.first_day

    def ended(self, moment: Moment) -> bool:
        return moment.day_index > self.last_day

    def start_text(self) -> str:
        return f"on simulated day {self.first_day}"


@dataclass(frozen=True, slots=True)
class WallSchedule:
    """A contest for a lesson, on the wall clock: open from `start_ms` until `end_ms` (epoch ms, the end excluded)."""

    start_ms: int
    end_ms: int

    def __post_init__(self):
        if not (_whole(self.start_ms) and _whole(self.end_ms)) or not 0 <= self.start_ms < self.end_ms:
            raise BadRequest("a contest's start must be before its end")

    def started(self, moment: Moment) -> bool:
        return moment.wall_ms >= self.start_ms

    def ended(self, moment: Moment) -> bool:
        return moment.wall_ms >= self.end_ms

    def start_text(self) -> str:
        return f"at {datetime.fromtimestamp(self.start_ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


Schedule = DaySchedule | WallSchedule


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


_KEEP = _Keep()


@dataclass(frozen=True, slots=True)
class Contest:
    """One class contest: its teacher, name, join code, rules and schedule, and where it is in its life.

    The stored `status` moves DRAFT → OPEN → FINISHED, never back: by the teacher (`open`, `finish`: early or on
    time) or by the clock (`at`: OPEN once the schedule starts, FINISHED once it ends). `status_at(moment)` is what
    it is now even before anyone stored the change, so the order checks never trust a stale status. Each change
    returns a new Contest for the caller to store; an unchanged one is returned as is.

    `password_hash` is opaque here (the services hash and compare it); None means no password. `final_ranking` is
    set once, after the contest finishes (`freeze`), and never changes again.
    """

    contest_id: str
    name: str
    teacher_id: str
    join_code: str
    rules: ContestRules
    schedule: Schedule
    status: ContestStatus = ContestStatus.DRAFT
    password_hash: str | None = field(default=None, repr=False)
    opened_at: Moment | None = None      # when it was opened (by the teacher, or seen to start)
    finished_at: Moment | None = None    # when it was finished (by the teacher, or seen to end)
    final_ranking: tuple[ContestStanding, ...] | None = None

    def __post_init__(self):
        if not isinstance(self.contest_id, str) or not self.contest_id:
            raise ValueError("a contest needs an id")
        object.__setattr__(self, "name", display_name(self.name, "contest name", longest=MAX_CONTEST_NAME_LENGTH))
        object.__setattr__(self, "join_code", parse_join_code(self.join_code))
        object.__setattr__(self, "status", ContestStatus(self.status))
        if not isinstance(self.rules, ContestRules):
            raise BadRequest("a contest needs rules")
        if not isinstance(self.schedule, DaySchedule | WallSchedule):
            raise BadRequest("a contest needs a schedule: simulated days or wall-clock times")
        if self.final_ranking is not None and self.status is not ContestStatus.FINISHED:
            raise ValueError("only a finished contest has a final ranking")

    @property
    def requires_password(self) -> bool:
        return self.password_hash is not None

    # ----- where it is -------------------------------------------------------------------------------------

    def status_at(self, moment: Moment) -> ContestStatus:
        """The status at `moment`: the stored one, moved on by the clock (FINISHED once the schedule has ended,
        OPEN once it has started)."""
        if self.status is ContestStatus.FINISHED or self.schedule.ended(moment):
            return ContestStatus.FINISHED
        if self.status is ContestStatus.OPEN or self.schedule.started(moment):
            return ContestStatus.OPEN
        return ContestStatus.DRAFT

    def closed_reason(self, moment: Moment) -> str | None:
        """Why the contest takes no orders at `moment` (the text of a CONTEST_NOT_OPEN rejection); None when open."""
        status = self.status_at(moment)
        if status is ContestStatus.OPEN:
            return None
        if status is ContestStatus.DRAFT:
            return f'the contest "{self.name}" has not started yet: it opens {self.schedule.start_text()}'
        return f'the contest "{self.name}" has ended: it takes no more orders'

    # ----- moving it on ------------------------------------------------------------------------------------

    def at(self, moment: Moment) -> "Contest":
        """The contest with the clock's changes stored: call it on every tick and store what changed (a change to
        FINISHED is the caller's cue to stop the contest's trading and freeze its ranking)."""
        status = self.status_at(moment)
        if status is self.status:
            return self
        if status is ContestStatus.OPEN:
            return replace(self, status=status, opened_at=moment)
        return replace(self, status=status, finished_at=moment)

    def open(self, moment: Moment) -> "Contest":
        """The teacher opens the contest now, early if its start is still ahead; an open one stays as it is.
        BadRequest once it has finished."""
        current = self.at(moment)
        if current.status is ContestStatus.FINISHED:
            raise BadRequest(f'the contest "{self.name}" has ended and cannot open again')
        if current.status is ContestStatus.OPEN:
            return current
        return replace(current, status=ContestStatus.OPEN, opened_at=moment)

    def finish(self, moment: Moment) -> "Contest":
        """The teacher ends the contest now (a draft too: it never took place); a finished one stays as it is."""
        current = self.at(moment)
        if current.status is ContestStatus.FINISHED:
            return current
        return replace(current, status=ContestStatus.FINISHED, finished_at=moment)

    def revised(self, moment: Moment, *, name: str | None = None, rules: ContestRules | None = None,
                schedule: Schedule | None = None, password_hash: "str | None | _Keep" = _KEEP) -> "Contest":
        """The contest with a new name, rules, schedule or password hash (None removes the password); only while it
        is a draft at `moment`, because every portfolio of an open contest has to play by the same rules."""
        if self.status_at(moment) is not ContestStatus.DRAFT:
            raise BadRequest(f'the contest "{self.name}" has started: its rules and schedule are fixed')
        return replace(
            self,
            name=self.name if name is None else name,
            rules=self.rules if rules is None else rules,
            schedule=self.schedule if schedule is None else schedule,
            password_hash=self.password_hash if password_hash is _KEEP else password_hash,
        )

    def freeze(self, standings: Iterable[ContestStanding]) -> "Contest":
        """The contest with its final ranking, once: BadRequest before it has finished, Conflict when a ranking is
        already frozen (what the class saw at the end is what stays)."""
        if self.status is not ContestStatus.FINISHED:
            raise BadRequest(f'the contest "{self.name}" has not finished: its ranking is still moving')
        if self.final_ranking is not None:
            raise Conflict(f'the final ranking of "{self.name}" is frozen')
        return replace(self, final_ranking=tuple(standings))
