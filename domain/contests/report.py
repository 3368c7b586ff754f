"""A contest's report for the teacher: the ranking as CSV for a spreadsheet, and one printable HTML page.

Pure rendering: the service reads storage once and fills a ContestReport; nothing here reads a clock, a file or
the network, and the page links to nothing (its CSS and its one SVG chart are inline), so it prints and archives
as it is. Everything a student or teacher typed is escaped for where it lands: HTML-escaped in the page and the
chart, and in the CSV prefixed with a quote when a spreadsheet would read it as a formula.

Money stays integer cents until it becomes text (exact, no float arithmetic). Ratios come as the ranking's floats
and are formatted through their shortest repr into Decimal, so 0.1 shows as "10.00" and never "10.000000000000002".
The chart alone works in floats: it is a picture, normalised to 100 at each line's first sample.
"""

import csv
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from domain.money import money_text
from domain.trading import Fill, Order

from .assignments import AssignmentProgress, TaskState
from .contest import ContestStatus, DaySchedule, Schedule
from .ranking import ContestStanding

__all__ = [
    "ReportStudent",
    "ContestReport",
    "CSV_COLUMNS",
    "CHART_PALETTE",
    "MAX_CHART_POINTS",
    "report_csv",
    "report_html",
    "value_chart_svg",
    "downsample",
]

CSV_COLUMNS = (
    "rank", "name", "members", "final_value", "total_return_percent", "sharpe_ratio", "max_drawdown_percent",
    "diversification_score", "trades", "assignments_done", "assignments_total", "journal_entries",
)

# Tableau 10: distinct on screen and still told apart when printed in colour; a class of more than ten repeats them.
CHART_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
MAX_CHART_POINTS = 500  # per line: a browser draws a week of minute samples (10 000) slowly and no sharper

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_INDEX_COLOUR = "#222222"
_LEGEND_COLUMNS = 3
_LEGEND_ROW = 18
_LEGEND_NAME_LENGTH = 28


def _pairs(rows: Iterable) -> tuple[tuple[int, int], ...]:
    """(time_ms, value_cents) pairs from pairs, or from rows with `time_ms` and `value_cents` (ValuePoint)."""
    out = []
    for row in rows:
        if hasattr(row, "value_cents"):
            out.append((row.time_ms, row.value_cents))
        else:
            time_ms, value = row
            out.append((time_ms, value))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ReportStudent:
    """One portfolio of the contest as the report shows it, filled straight from storage.

    - `name`: the student's nickname, or the team's name; `members`: a team's members' nicknames, captain first
      (empty for a solo student).
    - `trades`: the portfolio's fills (`fills_for(portfolio_id)`), any order; shown oldest first.
    - `orders`: the portfolio's orders (`order_history(portfolio_id=...)`), at least every one a trade belongs to
      and every one with a note: a trade's "placed by" is its order's placer, and the orders with a note (besides
      blanks) are the student's journal.
    - `progress`: where each assignment stands (`evaluate_assignments` or the tracker's `progress(now)`).
    - `values`: the portfolio's value over the contest, oldest first: (time_ms, value_cents) pairs, or the
      `values_of` rows themselves (anything with `time_ms` and `value_cents`), kept as pairs.

    Sequences are stored as tuples, so a report built from lists cannot change under the renderer.
    """

    portfolio_id: str
    name: str
    members: tuple[str, ...] = ()
    trades: tuple[Fill, ...] = ()
    orders: tuple[Order, ...] = ()
    progress: tuple[AssignmentProgress, ...] = ()
    values: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "trades", tuple(self.trades))
        object.__setattr__(self, "orders", tuple(self.orders))
        object.__setattr__(self, "progress", tuple(self.progress))
        object.__setattr__(self, "values", _pairs(self.values))

    @property
    def journal(self) -> tuple[Order, ...]:
        """The orders placed with a note (besides blanks), oldest first."""
        noted = [order for order in self.orders if order.note is not None and order.note.strip()]
        return tuple(sorted(noted, key=lambda order: (order.created_at_ms, len(order.order_id), order.order_id)))

    @property
    def assignments_done(self) -> int:
        return sum(1 for item in self.progress if item.state is TaskState.DONE)


@dataclass(frozen=True, slots=True)
class ContestReport:
    """Everything the report shows about one contest, as of `generated_at_ms` (wall-clock epoch ms).

    - `contest_name`, `teacher_name`, `status`, `schedule` (the Contest's own), `starting_cash_cents` (its rules').
    - `standings`: the ranking in rank order (`Contest.final_ranking` once frozen, else `rank_contest` now).
    - `students`: one ReportStudent per portfolio, any order, portfolio ids unique; the report lists them in rank
      order, then any without a standing (a draft contest has none) by name.
    - `index`: the market index over the same period, (time_ms, index_value_cents) pairs (or ValuePoint-like rows).
    - `nicknames`: user id → nickname of the contest's participants, to name who placed each trade.
    - `index_name`: what the chart's legend calls the index.
    """

    contest_name: str
    teacher_name: str
    status: ContestStatus
    schedule: Schedule
    starting_cash_cents: int
    generated_at_ms: int
    standings: tuple[ContestStanding, ...] = ()
    students: tuple[ReportStudent, ...] = ()
    index: tuple[tuple[int, int], ...] = ()
    nicknames: Mapping[str, str] = field(default_factory=dict)
    index_name: str = "Market index"

    def __post_init__(self):
        object.__setattr__(self, "status", ContestStatus(self.status))
        object.__setattr__(self, "standings", tuple(self.standings))
        object.__setattr__(self, "students", tuple(self.students))
        object.__setattr__(self, "index", _pairs(self.index))
        object.__setattr__(self, "nicknames", dict(self.nicknames))
        ids = [student.portfolio_id for student in self.students]
        if len(set(ids)) != len(ids):
            raise ValueError("a report lists each portfolio once")

    def lines(self) -> list[tuple[ContestStanding | None, ReportStudent | None]]:
        """The report's order: each standing with its student (None when the service sent none), then students
        without a standing, by name then portfolio id."""
        by_id = {student.portfolio_id: student for student in self.students}
        out: list[tuple[ContestStanding | None, ReportStudent | None]] = [
            (standing, by_id.pop(standing.portfolio_id, None)) for standing in self.standings
        ]
        rest = sorted(by_id.values(), key=lambda student: (student.name.casefold(), student.portfolio_id))
        out.extend((None, student) for student in rest)
        return out


# ----- text of figures ---------------------------------------------------------------------------------------


def _dollars(cents: int) -> str:
    """Whole cents as plain dollars for a spreadsheet: 10012345 -> "100123.45", -500 -> "-5.00" (exact)."""
    cents = int(cents)
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _two_places(value: float | None, scale: int = 1) -> str:
    """A ratio times `scale` to 2 dp, half-even, read through the float's repr; "" for None or not finite."""
    if value is None or not math.isfinite(value):
        return ""
    number = (Decimal(repr(float(value))) * scale).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"{number + 0:f}"  # + 0 turns -0.00 into 0.00


def _time_text(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms // 1000, UTC):%Y-%m-%d %H:%M}"


def _schedule_text(schedule: Schedule) -> str:
    if isinstance(schedule, DaySchedule):
        return f"simulated days {schedule.first_day} to {schedule.last_day}"
    return f"{_time_text(schedule.start_ms)} to {_time_text(schedule.end_ms)} UTC"


def _cell(text: str) -> str:
    """A typed text made safe for a spreadsheet cell (OWASP, CSV injection): a leading = + - @ tab or CR would
    start a formula, so it gets a leading single quote, which spreadsheets show as text."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _row(standing: ContestStanding | None, student: ReportStudent | None) -> dict[str, str]:
    """One portfolio's figures as text, shared by the CSV and the page's ranking table ("" where unknown)."""
    row = dict.fromkeys(CSV_COLUMNS, "")
    if standing is not None:
        row.update(
            rank=str(standing.rank),
            name=standing.name,
            final_value=_dollars(standing.final_value_cents),
            total_return_percent=_two_places(standing.total_return, 100),
            sharpe_ratio=_two_places(standing.sharpe_ratio),
            max_drawdown_percent=_two_places(standing.max_drawdown, 100),
            diversification_score=_two_places(standing.diversification_score),
        )
    if student is not None:
        row.update(
            name=student.name,
            members="; ".join(student.members),
            trades=str(len(student.trades)),
            assignments_done=str(student.assignments_done),
            assignments_total=str(len(student.progress)),
            journal_entries=str(len(student.journal)),
        )
    return row


def report_csv(report: ContestReport) -> str:
    """The ranking as one CSV (RFC 4180: CRLF line ends, quoted where needed) with a header row of CSV_COLUMNS.

    One row per portfolio in rank order, then the students without a standing (rank and figures empty). Money is
    plain dollars with 2 decimals ("100123.45"), percentages and ratios have 2 decimals, an unknown figure is an
    empty cell; `trades` counts fills, `journal_entries` the orders with a note. Names and members (joined with
    "; ") are guarded against formula injection. Read it back with `csv.DictReader(io.StringIO(text, newline=""))`;
    for Excel to see UTF-8, send it encoded as "utf-8-sig".
    """
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for standing, student in report.lines():
        row = _row(standing, student)
        row["name"] = _cell(row["name"])
        row["members"] = _cell(row["members"])
        writer.writerow(row)
    return buffer.getvalue()


# ----- the chart ---------------------------------------------------------------------------------------------


def downsample(points: Sequence[tuple[int, float]], max_points: int = MAX_CHART_POINTS) -> list[tuple[int, float]]:
    """At most `max_points` of `points` (in time order), keeping the first, the last, and the lowest and highest
    of each of (max_points − 2) // 2 equal runs in between: peaks and troughs survive, so a drawdown still shows.

    >>> downsample([(t, t % 7) for t in range(10)], 6)
    [(0, 0), (1, 1), (4, 4), (6, 6), (7, 0), (9, 2)]
    """
    if max_points < 2:
        raise ValueError("a line needs at least its first and last points")
    points = list(points)
    if len(points) <= max_points:
        return points
    inner = points[1:-1]
    buckets = (max_points - 2) // 2
    kept = [points[0]]
    for b in range(buckets):
        run = range(b * len(inner) // buckets, (b + 1) * len(inner) // buckets)
        low = min(run, key=lambda i: inner[i][1])
        high = max(run, key=lambda i: inner[i][1])
        kept.extend(inner[i] for i in sorted({low, high}))
    kept.append(points[-1])
    return kept


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(name: str) -> str:
    return name if len(name) <= _LEGEND_NAME_LENGTH else name[: _LEGEND_NAME_LENGTH - 1] + "…"


def value_chart_svg(
    series: Mapping[str, Sequence[tuple[int, float]]],
    index: Sequence[tuple[int, float]] | None = None,
    *,
    width: int = 720,
    height: int = 300,
    index_label: str = "Market index",
    max_points: int = MAX_CHART_POINTS,
) -> str:
    """One inline SVG line chart of several value histories, each normalised to 100 at its first sample.

    `series` maps a label to its (time_ms, value) samples; `index`, when given, is drawn dashed in near-black.
    Every series is one `<polyline class="series">` in CHART_PALETTE's colours, in the mapping's order; the index
    is `<polyline class="index">`. A line without samples, or whose first value is not positive (nothing to
    normalise by), is drawn flat at 100 and its legend entry says so; a line of one sample also gets a dot. Samples
    are put in time order (equal times keep their order) and downsampled to `max_points`; when every sample has
    the same time, they stand in the middle. `width` × `height` is the plot; the legend below it adds a row of
    18 px for every three lines. Labels are HTML-escaped, so the SVG is safe inline in a page.
    """
    lines: list[tuple[str, list[tuple[int, float]] | None, str, str, bool]] = []  # label, points, note, colour, dashed
    for number, (label, samples) in enumerate(series.items()):
        lines.append((label, *_normalised(samples, max_points), CHART_PALETTE[number % len(CHART_PALETTE)], False))
    if index is not None:
        lines.append((index_label, *_normalised(index, max_points), _INDEX_COLOUR, True))
    left, right, top, bottom = 52, 12, 10, 24
    plot_w, plot_h = max(width - left - right, 1), max(height - top - bottom, 1)
    times = [t for _, points, _, _, _ in lines if points for t, _ in points]
    levels = [v for _, points, _, _, _ in lines if points for _, v in points] + [100.0]
    t0, t1 = (min(times), max(times)) if times else (0, 0)
    lo, hi = min(levels), max(levels)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad

    def x_of(t: int) -> float:
        return left + (plot_w / 2 if t1 == t0 else (t - t0) / (t1 - t0) * plot_w)

    def y_of(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    rows = math.ceil(len(lines) / _LEGEND_COLUMNS)
    total_h = height + (rows * _LEGEND_ROW + 6 if rows else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="value-chart" width="{width}" height="{total_h}"'
        f' viewBox="0 0 {width} {total_h}" role="img" aria-label="Value over time, 100 = start">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999999"/>',
        f'<line x1="{left}" y1="{y_of(100):.1f}" x2="{left + plot_w}" y2="{y_of(100):.1f}" stroke="#bbbbbb"'
        ' stroke-width="0.5"/>',
    ]
    for level in sorted({lo + pad, 100.0, hi - pad}):
        out.append(f'<text x="{left - 4}" y="{y_of(level) + 3:.1f}" font-size="10" text-anchor="end">'
                   f'{level:.1f}</text>')
    if times:
        out.append(f'<text x="{left}" y="{height - 6}" font-size="10">{_time_text(t0)}</text>')
        if t1 != t0:
            out.append(f'<text x="{left + plot_w}" y="{height - 6}" font-size="10" text-anchor="end">'
                       f'{_time_text(t1)}</text>')
    for label, points, note, colour, dashed in lines:
        kind = "index" if dashed else "series"
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        if points:
            coords = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in points)
        else:
            coords = f"{left:.1f},{y_of(100):.1f} {left + plot_w:.1f},{y_of(100):.1f}"
        out.append(f'<polyline class="{kind}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}'
                   f' points="{coords}"><title>{_e(label + note)}</title></polyline>')
        if points and len(points) == 1:
            t, v = points[0]
            out.append(f'<circle cx="{x_of(t):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{colour}"/>')
    column_w = width / _LEGEND_COLUMNS
    for number, (label, _, note, colour, dashed) in enumerate(lines):
        x = 8 + (number % _LEGEND_COLUMNS) * column_w
        y = height + 6 + (number // _LEGEND_COLUMNS) * _LEGEND_ROW + _LEGEND_ROW / 2
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 22:.1f}" y2="{y:.1f}" stroke="{colour}"'
                   f' stroke-width="2"{dash}/>')
        out.append(f'<text x="{x + 28:.1f}" y="{y + 4:.1f}" font-size="11">{_e(_short(label) + note)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _normalised(samples: Sequence[tuple[int, float]], max_points: int) -> tuple[list[tuple[int, float]] | None, str]:
    """A line's points scaled to 100 at its first sample, in time order and downsampled, and its legend note;
    None (draw it flat at 100) when there is nothing to scale."""
    ordered = sorted(((t, v) for t, v in samples if math.isfinite(v)), key=lambda point: point[0])
    if not ordered:
        return None, " (no samples: flat at 100)"
    base = ordered[0][1]
    if base <= 0:
        return None, " (starts at or below 0: flat at 100)"
    return downsample([(t, v * 100 / base) for t, v in ordered], max_points), ""


# ----- the page ----------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #111; }
h1 { margin-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #999; padding: 2px 6px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
ul.checklist { list-style: none; padding-left: 0; }
.done { color: #1a7f37; } .missed { color: #b42318; } .pending { color: #555; }
.empty { color: #555; font-style: italic; }
.note { white-space: pre-wrap; }
@media print {
  @page { margin: 15mm; }
  body { margin: 0; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  section.student { break-before: page; page-break-before: always; }
  tr, li, svg { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  svg { max-width: 100%; height: auto; }
}
""".strip()

_STATE_MARKS = {
    TaskState.DONE: ("done", "✓ done"),
    TaskState.MISSED: ("missed", "✗ missed"),
    TaskState.PENDING: ("pending", "… pending"),
}


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    """A table of already escaped cells; columns in `numeric` align right."""
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(f'<{tag} class="num">{v}</{tag}>' if i in numeric else f"<{tag}>{v}</{tag}>"
                       for i, v in enumerate(values))
    body = "\n".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table>\n<thead><tr>{cells('th', head)}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _placer_name(report: ContestReport, student: ReportStudent, order: Order | None, fill: Fill) -> str:
    """Who placed a trade: the nickname of its order's placer; a solo student's own name when the roster did not
    name them; "unknown" otherwise (a user id is internal and is never shown)."""
    placer = order.placer if order is not None else fill.user_id
    if placer in report.nicknames:
        return report.nicknames[placer]
    return student.name if not student.members else "unknown"


def _student_section(report: ContestReport, number: int, standing: ContestStanding | None,
                     student: ReportStudent) -> str:
    rank = f"#{standing.rank} " if standing is not None else ""
    parts = [f'<section class="student" id="student-{number}">', f"<h2>{_e(rank)}{_e(student.name)}</h2>"]
    if student.members:
        parts.append(f"<p>Team: {_e(', '.join(student.members))}</p>")
    orders = {order.order_id: order for order in student.orders}
    parts.append("<h3>Trades</h3>")
    trades = sorted(student.trades, key=lambda f: (f.time_ms, len(f.execution_id), f.execution_id))
    if trades:
        parts.append(_table(
            ("Time", "Symbol", "Side", "Quantity", "Price", "Placed by"),
            ((_e(_time_text(f.time_ms)), _e(f.symbol), _e(f.side), str(f.quantity), _e(money_text(f.price_cents)),
              _e(_placer_name(report, student, orders.get(f.order_id), f))) for f in trades),
            frozenset({3, 4}),
        ))
    else:
        parts.append('<p class="empty">No trades.</p>')
    parts.append("<h3>Assignments</h3>")
    if student.progress:
        parts.append('<ul class="checklist">')
        for item in student.progress:
            css, mark = _STATE_MARKS[item.state]
            when = f" ({_e(_time_text(item.done_at_ms))})" if item.done_at_ms is not None else ""
            parts.append(f'<li class="{css}"><strong>{mark}</strong> {_e(item.kind)}: {_e(item.text)}{when}</li>')
        parts.append("</ul>")
    else:
        parts.append('<p class="empty">No assignments.</p>')
    parts.append("<h3>Journal</h3>")
    journal = student.journal
    if journal:
        parts.append(_table(
            ("Time", "Order", "Note"),
            ((_e(_time_text(o.created_at_ms)), _e(_order_text(o)), f'<span class="note">{_e(o.note)}</span>')
             for o in journal),
        ))
    else:
        parts.append('<p class="empty">No journal entries.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _order_text(order: Order) -> str:
    """An order in a few words: "BUY 10 ACME LIMIT @ 101.25 (FILLED)"."""
    price = order.limit_price if order.limit_price is not None else order.stop_price
    at = f" @ {money_text(price)}" if price is not None else ""
    return f"{order.side} {order.quantity} {order.symbol} {order.order_type}{at} ({order.status})"


def _chart_labels(lines: Sequence[tuple[ContestStanding | None, ReportStudent | None]]) -> list[str]:
    """One legend label per portfolio; a name two portfolios share gets its portfolio id, so neither line is lost."""
    names = [(student.name if student else standing.name) for standing, student in lines]
    ids = [(student.portfolio_id if student else standing.portfolio_id) for standing, student in lines]
    return [name if names.count(name) == 1 else f"{name} ({pid})" for name, pid in zip(names, ids, strict=True)]


def report_html(report: ContestReport) -> str:
    """The whole report as one self-contained printable HTML page (UTF-8, no external resources).

    Title and contest facts, the ranking table (the CSV's figures), one value chart (value_chart_svg: every
    portfolio in report order, normalised to 100 at its first sample, the index dashed), then a section per
    student — trades, assignment checklist, journal — each starting a new printed page. Times are UTC,
    "YYYY-MM-DD HH:MM". Every text from storage is escaped with html.escape(quote=True).
    """
    lines = report.lines()
    facts = (
        ("Teacher", report.teacher_name),
        ("Status", report.status),
        ("Schedule", _schedule_text(report.schedule)),
        ("Starting cash", f"${money_text(report.starting_cash_cents)}"),
        ("Portfolios", str(len(lines))),
        ("Generated", f"{_time_text(report.generated_at_ms)} UTC"),
    )
    ranking_rows = []
    for number, (standing, student) in enumerate(lines):
        row = _row(standing, student)
        name = _e(row["name"])
        if student is not None:
            name = f'<a href="#student-{number}">{name}</a>'
        done = f"{row['assignments_done']} / {row['assignments_total']}" if student is not None else ""
        ranking_rows.append((
            _e(row["rank"]), name, _e(row["members"].replace("; ", ", ")),
            _e(money_text(standing.final_value_cents)) if standing is not None else "",
            _e(row["total_return_percent"]), _e(row["sharpe_ratio"]), _e(row["max_drawdown_percent"]),
            _e(row["diversification_score"]), _e(row["trades"]), _e(done), _e(row["journal_entries"]),
        ))
    series = {label: (student.values if student else ())
              for label, (_, student) in zip(_chart_labels(lines), lines, strict=True)}
    chart = value_chart_svg(series, report.index, index_label=report.index_name)
    sections = [_student_section(report, number, standing, student)
                for number, (standing, student) in enumerate(lines) if student is not None]
    title = f"Contest report: {report.contest_name}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>",
        "<h2>Ranking</h2>",
        _table(("Rank", "Name", "Members", "Final value ($)", "Return %", "Sharpe", "Max drawdown %",
                "Diversification", "Trades", "Assignments", "Journal"), ranking_rows,
               frozenset({0, 3, 4, 5, 6, 7, 8, 9, 10})),
        "<h2>Value over the contest (100 = start)</h2>",
        f'<figure class="chart">\n{chart}\n</figure>',
        *sections,
        "</body>",
        "</html>",
        "",
    ])
