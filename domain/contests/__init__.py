"""Class contests: a teacher's contest with its own rules and schedule, the students and teams in it, the order
checks that hold its portfolios to its rules, the assignments it sets, and its ranking.

`contest` (Contest, its status and schedule), `rules` (ContestRules), `codes` (join codes and nicknames),
`roster` (participants, teams, who trades), `checks` (ContestChecks for the OrderEngine), `assignments` (tasks and
their tracker) and `ranking` (rank_contest). Storage, the services and the wire build on these; nothing here hashes
a password or reads a clock.
"""

from .assignments import (
    Assignment,
    AssignmentProgress,
    AssignmentTracker,
    HoldSectors,
    KeepWeightUnder,
    PlaceOrder,
    SetStopLoss,
    Task,
    TaskKind,
    TaskState,
    TradeRationales,
    evaluate_assignments,
    task_from_params,
    task_params,
)
from .checks import ContestChecks
from .codes import JOIN_CODE_ALPHABET, display_name, name_key, new_join_code, parse_join_code
from .contest import Contest, ContestStatus, DaySchedule, Moment, Schedule, WallSchedule
from .ranking import ContestEntry, ContestStanding, rank_contest
from .report import ContestReport, ReportStudent, downsample, report_csv, report_html, value_chart_svg
from .roster import Admission, Participant, Roster, Team, TeamPlan, Trader
from .rules import MAX_TEAM_SIZE, MIN_TEAM_SIZE, ContestRules

__all__ = [
    "Contest",
    "ContestStatus",
    "ContestRules",
    "Moment",
    "DaySchedule",
    "WallSchedule",
    "Schedule",
    "ContestChecks",
    "JOIN_CODE_ALPHABET",
    "new_join_code",
    "parse_join_code",
    "display_name",
    "name_key",
    "Roster",
    "Participant",
    "Team",
    "Trader",
    "Admission",
    "TeamPlan",
    "MIN_TEAM_SIZE",
    "MAX_TEAM_SIZE",
    "Assignment",
    "AssignmentProgress",
    "AssignmentTracker",
    "TaskKind",
    "TaskState",
    "Task",
    "PlaceOrder",
    "HoldSectors",
    "KeepWeightUnder",
    "SetStopLoss",
    "TradeRationales",
    "task_from_params",
    "task_params",
    "evaluate_assignments",
    "ContestEntry",
    "ContestStanding",
    "rank_contest",
    "ContestReport",
    "ReportStudent",
    "report_csv",
    "report_html",
    "value_chart_svg",
    "downsample",
]
