"""A contest's report: the CSV a spreadsheet reads back exactly, the printable page with its escaped text and one
chart, and the chart's lines for no, one, two and very many samples."""

import csv
import io
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import NamedTuple

import pytest

from domain.contests import (
    AssignmentProgress,
    ContestReport,
    ContestStanding,
    ContestStatus,
    DaySchedule,
    ReportStudent,
    TaskKind,
    TaskState,
    WallSchedule,
    downsample,
    report_csv,
    report_html,
    value_chart_svg,
)
from domain.contests.report import CHART_PALETTE, CSV_COLUMNS
from domain.trading import Fill, Order, OrderStatus, OrderType, Side, TimeInForce

CASH = 10_000_000
START = 1_714_550_400_000  # 2024-05-01 08:00 UTC
MINUTE = 60_000
SVG = "{http://www.w3.org/2000/svg}"
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"onmouseover=alert(1) x="'


def order(order_id: str, *, portfolio: str = "P1", owner: str = "u1", placed_by: str | None = None, at: int = START,
          note: str | None = None, symbol: str = "ACME", side: Side = Side.BUY) -> Order:
    return Order(order_id, None, portfolio, owner, symbol, side, OrderType.LIMIT, 10, 10_125, None, TimeInForce.GTC,
                 OrderStatus.FILLED, at, at, 0, filled_quantity=10, filled_notional_cents=101_250,
                 placed_by=placed_by, note=note)


def fill(execution_id: str, of: Order, at: int, quantity: int = 10, price: int = 10_125) -> Fill:
    return Fill(execution_id, of.order_id, of.portfolio_id, of.user_id, of.symbol, of.side, quantity, price, 0, at, at)


def progress(assignment_id: str, state: TaskState, text: str, done_at: int | None = None) -> AssignmentProgress:
    return AssignmentProgress(assignment_id, TaskKind.PLACE_ORDER, state, done_at, 1, 2, text)


def small_report(**changes) -> ContestReport:
    """Three ranked portfolios (a team among them, two tied at rank 2) and one student who has no standing yet."""
    ada_buy = order("O1", note="Earnings beat", at=START + MINUTE)
    ada_sell = order("O2", side=Side.SELL, at=START + 5 * MINUTE, note="   ")  # blank: not a journal entry
    team_buy = order("O3", portfolio="P2", owner="u2", placed_by="u3", at=START + 2 * MINUTE, note="Diversify")
    students = (
        ReportStudent("P2", "Bulls", ("Ben", "Cy"), trades=[fill("E3", team_buy, START + 2 * MINUTE)],
                      orders=[team_buy], progress=[progress("A1", TaskState.MISSED, "0 of 2 LIMIT orders placed")],
                      values=[(START, CASH), (START + MINUTE, CASH)]),
        ReportStudent("P9", "Zoe"),
        ReportStudent("P1", "Ada", trades=[fill("E2", ada_sell, START + 5 * MINUTE, 4, 10_200),
                                           fill("E1", ada_buy, START + MINUTE)],
                      orders=[ada_sell, ada_buy],
                      progress=[progress("A1", TaskState.DONE, "2 of 2 LIMIT orders placed", START + 5 * MINUTE),
                                progress("A2", TaskState.PENDING, "1 of 5 trades with a rationale")],
                      values=[(START, CASH), (START + MINUTE, 10_050_000), (START + 2 * MINUTE, 10_012_345)]),
        ReportStudent("P3", "Dee", values=[(START, CASH), (START + MINUTE, 9_900_000)]),
    )
    standings = (
        ContestStanding(1, "P1", "Ada", 10_012_345, 0.0012345, 1.23456, 0.0042, 12.5),
        ContestStanding(2, "P2", "Bulls", CASH, 0.0, None, None, 0.0),
        ContestStanding(2, "P3", "Dee", 9_900_000, -0.01, -3.175, 0.01, 0.0),
    )
    fields = dict(contest_name="Spring term", teacher_name="Ms Tee", status=ContestStatus.FINISHED,
                  schedule=WallSchedule(START, START + 60 * MINUTE), starting_cash_cents=CASH,
                  generated_at_ms=START + 61 * MINUTE, standings=standings, students=students,
                  index=[(START, 500_000), (START + 2 * MINUTE, 505_000)],
                  nicknames={"u1": "Ada", "u2": "Ben", "u3": "Cy"})
    fields.update(changes)
    return ContestReport(**fields)


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def csv_line(**cells: str) -> dict[str, str]:
    return {column: cells.get(column, "") for column in CSV_COLUMNS}


# ----- CSV -------------------------------------------------------------------------------------------------------


def test_the_csv_reads_back_one_row_per_portfolio_in_rank_order_with_exact_figures():
    text = report_csv(small_report())
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert text.endswith("\r\n") and text.count("\r\n") == 5  # RFC 4180 line ends: header and four rows
    assert read_csv(text) == [
        csv_line(rank="1", name="Ada", final_value="100123.45", total_return_percent="0.12", sharpe_ratio="1.23",
                 max_drawdown_percent="0.42", diversification_score="12.50", trades="2", assignments_done="1",
                 assignments_total="2", journal_entries="1"),
        csv_line(rank="2", name="Bulls", members="Ben; Cy", final_value="100000.00", total_return_percent="0.00",
                 diversification_score="0.00", trades="1", assignments_done="0", assignments_total="1",
                 journal_entries="1"),
        csv_line(rank="2", name="Dee", final_value="99000.00", total_return_percent="-1.00", sharpe_ratio="-3.18",
                 max_drawdown_percent="1.00", diversification_score="0.00", trades="0", assignments_done="0",
                 assignments_total="0", journal_entries="0"),
        csv_line(name="Zoe", trades="0", assignments_done="0", assignments_total="0", journal_entries="0"),
    ]


def test_percentages_round_half_even_from_the_floats_repr_without_binary_noise_or_negative_zero():
    standings = (
        ContestStanding(1, "P1", "a", 11_000_000, 0.1, 0.125, 0.00125, 33.33),
        ContestStanding(2, "P2", "b", 9_999_999, -0.0000001, 0.135, 0.00135, 100.0),
    )
    rows = read_csv(report_csv(small_report(standings=standings, students=())))
    assert [(r["total_return_percent"], r["sharpe_ratio"], r["max_drawdown_percent"], r["diversification_score"])
            for r in rows] == [("10.00", "0.12", "0.12", "33.33"), ("0.00", "0.14", "0.14", "100.00")]
    assert [r["final_value"] for r in rows] == ["110000.00", "99999.99"]


def test_a_standing_without_its_student_still_has_its_figures_and_empty_counts():
    rows = read_csv(report_csv(small_report(students=())))
    assert [r["name"] for r in rows] == ["Ada", "Bulls", "Dee"]
    assert rows[0]["final_value"] == "100123.45"
    assert (rows[0]["members"], rows[0]["trades"], rows[0]["assignments_total"]) == ("", "", "")


@pytest.mark.parametrize("typed", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_a_typed_name_a_spreadsheet_would_run_as_a_formula_gets_a_leading_quote(typed):
    standings = (ContestStanding(1, "P1", typed, 9_000_000, -0.1, None, None, 0.0),)
    students = (ReportStudent("P1", typed, members=(typed, "Ann")),)
    [row] = read_csv(report_csv(small_report(standings=standings, students=students)))
    assert row["name"] == "'" + typed
    assert row["members"] == f"'{typed}; Ann"
    assert row["total_return_percent"] == "-10.00"  # a figure is a number, never quoted


def test_a_comma_quote_and_newline_in_a_name_round_trip():
    typed = 'Ann, "the best"\nof all'
    standings = (ContestStanding(1, "P1", typed, CASH, 0.0, None, None, 0.0),)
    students = (ReportStudent("P1", typed, members=("O'Neil, Jr", 'Say "hi"')),)
    [row] = read_csv(report_csv(small_report(standings=standings, students=students)))
    assert row["name"] == typed
    assert row["members"] == "O'Neil, Jr; Say \"hi\""


def test_value_rows_from_storage_are_kept_as_time_and_value_pairs():
    class ValuePoint(NamedTuple):  # the shape of services.storage.values.ValuePoint
        time_ms: int
        market_time_ms: int
        value_cents: int
        cash_cents: int

    student = ReportStudent("P1", "Ada", values=[ValuePoint(1, 99, 10, 5), ValuePoint(2, 100, 11, 5)])
    report = small_report(index=[ValuePoint(1, 99, 700, 0)])
    assert student.values == ((1, 10), (2, 11))
    assert report.index == ((1, 700),)


def test_a_portfolio_listed_twice_is_refused():
    with pytest.raises(ValueError):
        small_report(students=(ReportStudent("P1", "Ada"), ReportStudent("P1", "Ada again")))


# ----- HTML ------------------------------------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr"}


class StrictParser(HTMLParser):
    """html.parser only reports what it sees: this one fails on a tag closed out of order or left open."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parsed(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    return parser


def test_the_page_parses_and_holds_the_ranking_one_chart_and_a_section_per_student():
    page = report_html(small_report())
    parser = parsed(page)
    tags = [tag for tag, _ in parser.tags]
    assert page.startswith("<!DOCTYPE html>")
    assert tags.count("svg") == 1
    lines = [attrs for tag, attrs in parser.tags if tag == "polyline"]
    assert [attrs["class"] for attrs in lines] == ["series"] * 4 + ["index"]
    assert [attrs["stroke"] for attrs in lines[:4]] == list(CHART_PALETTE[:4])
    assert lines[-1]["stroke-dasharray"] == "6 4"
    sections = [attrs["id"] for tag, attrs in parser.tags if tag == "section"]
    assert sections == ["student-0", "student-1", "student-2", "student-3"]
    text = "".join(parser.text)
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Ranking", "Value over the contest (100 = start)", "#1 Ada",
                                                  "#2 Bulls", "#2 Dee", "Zoe"]
    assert "Zoe (no samples: flat at 100)" in text
    assert "2024-05-01 08:00 to 2024-05-01 09:00 UTC" in text and "2024-05-01 09:01 UTC" in text
    assert "$100,000.00" in text and "100,123.45" in text


def test_the_page_is_self_contained_and_has_a_print_stylesheet():
    page = report_html(small_report())
    assert "@media print" in page and "break-before: page" in page
    assert "<link" not in page and "<script" not in page and "src=" not in page and "url(" not in page
    assert 'href="http' not in page and "@import" not in page


def test_trades_show_time_price_and_the_team_member_who_placed_them_oldest_first():
    parser = parsed(report_html(small_report()))
    text = "".join(parser.text)
    ada = text[text.index("#1 Ada"):text.index("#2 Bulls")]
    assert ada.index("2024-05-01 08:01ACMEBUY10101.25Ada") < ada.index("2024-05-01 08:05ACMESELL4102.00Ada")
    bulls = text[text.index("#2 Bulls"):text.index("#2 Dee")]
    assert "2024-05-01 08:02ACMEBUY10101.25Cy" in bulls and "Team: Ben, Cy" in bulls
    assert "No trades." in text[text.index("#2 Dee"):]


def test_the_checklist_marks_done_missed_and_pending_and_the_journal_lists_noted_orders():
    parser = parsed(report_html(small_report()))
    text = "".join(parser.text)
    ada = text[text.index("#1 Ada"):text.index("#2 Bulls")]
    assert "✓ done PLACE_ORDER: 2 of 2 LIMIT orders placed (2024-05-01 08:05)" in ada
    assert "… pending PLACE_ORDER: 1 of 5 trades with a rationale" in ada
    assert "2024-05-01 08:01BUY 10 ACME LIMIT @ 101.25 (FILLED)Earnings beat" in ada
    assert "SELL 10" not in ada  # its note is blank
    assert "✗ missed PLACE_ORDER: 0 of 2 LIMIT orders placed" in text
    assert text.count("No assignments.") == 2 and text.count("No journal entries.") == 2


def test_everything_a_student_typed_is_escaped():
    hostile = order("O1", note=SCRIPT + ATTRIBUTE, at=START)
    students = (ReportStudent("P1", SCRIPT, members=(ATTRIBUTE, SCRIPT), trades=[fill("E1", hostile, START)],
                              orders=[hostile], progress=[progress("A1", TaskState.PENDING, SCRIPT)],
                              values=[(START, CASH)]),
                ReportStudent("P2", ATTRIBUTE))
    standings = (ContestStanding(1, "P1", SCRIPT, CASH, 0.0, None, None, 0.0),
                 ContestStanding(2, "P2", ATTRIBUTE, CASH, 0.0, None, None, 0.0))
    page = report_html(small_report(contest_name=SCRIPT, teacher_name=ATTRIBUTE, standings=standings,
                                    students=students, nicknames={"u1": SCRIPT}))
    parser = parsed(page)
    assert SCRIPT not in page and ATTRIBUTE not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;onmouseover=alert(1) x=&quot;" in page
    assert all("onmouseover" not in attrs and set(attrs) <= {"class", "id", "href", "lang", "charset", "xmlns",
                                                              "width", "height", "viewbox", "role", "aria-label",
                                                              "x", "y", "x1", "x2", "y1", "y2", "fill", "stroke",
                                                              "stroke-width", "stroke-dasharray", "points",
                                                              "font-size", "text-anchor", "cx", "cy", "r"}
               for _, attrs in parser.tags)
    assert "".join(parser.text).count(SCRIPT) >= 5  # name, heading, legend, placed by, note, checklist


def test_a_draft_contest_on_simulated_days_without_standings_lists_its_students_by_name():
    report = small_report(status="DRAFT", schedule=DaySchedule(3, 7), standings=(), index=())
    page = report_html(report)
    text = "".join(parsed(page).text)
    assert "simulated days 3 to 7" in text and "DRAFT" in text
    assert re.findall(r'<section class="student" id="student-\d">\n<h2>(.*?)</h2>', page) == ["Ada", "Bulls", "Dee",
                                                                                             "Zoe"]
    assert "Market index (no samples: flat at 100)" in text
    assert [r["rank"] for r in read_csv(report_csv(report))] == ["", "", "", ""]


def test_two_portfolios_with_one_name_keep_a_line_each_in_the_chart():
    students = (ReportStudent("P1", "Sam", values=[(0, 5)]), ReportStudent("P2", "Sam", values=[(0, 5)]))
    page = report_html(small_report(standings=(), students=students))
    assert "Sam (P1)" in page and "Sam (P2)" in page
    assert page.count('class="series"') == 2


# ----- the chart -------------------------------------------------------------------------------------------------


def chart(series, index=None, **options) -> ET.Element:
    return ET.fromstring(value_chart_svg(series, index, **options))  # also proves the SVG is well-formed XML


def points_of(line: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in line.get("points").split()]


def test_two_points_span_the_plot_normalised_to_100_at_the_first():
    # default plot: x 52..708; values 100 and 110 padded by 5 % to 99.5..110.5 over y 10..276
    root = chart({"A": [(1_000, 2_000), (61_000, 2_200)]})
    [line] = root.iter(f"{SVG}polyline")
    assert points_of(line) == [(52.0, 263.9), (708.0, 22.1)]
    assert line.get("class") == "series" and line.get("stroke") == CHART_PALETTE[0]
    assert line.find(f"{SVG}title").text == "A"


def test_no_samples_draw_a_flat_line_at_100_and_the_legend_says_so():
    root = chart({"A": [], "B": [(0, 0), (1, 5)]}, [])
    lines = list(root.iter(f"{SVG}polyline"))
    # nothing else to scale by: 100 sits in the middle of 99..101
    assert [points_of(line) for line in lines] == [[(52.0, 143.0), (708.0, 143.0)]] * 3
    assert [line.get("class") for line in lines] == ["series", "series", "index"]
    legend = [text.text for text in root.iter(f"{SVG}text")]
    assert "A (no samples: flat at 100)" in legend
    assert "B (starts at or below 0: flat at 100)" in legend
    assert "Market index (no samples: flat at 100)" in legend


def test_one_sample_is_a_dot_in_the_middle_and_equal_times_stand_there_too():
    root = chart({"A": [(5, 300)], "B": [(5, 100), (5, 150)]})
    a, b = root.iter(f"{SVG}polyline")
    assert points_of(a) == [(380.0, points_of(a)[0][1])]
    [dot] = root.iter(f"{SVG}circle")
    assert (float(dot.get("cx")), float(dot.get("cy"))) == points_of(a)[0]
    assert [x for x, _ in points_of(b)] == [380.0, 380.0]
    assert points_of(b)[0][1] > points_of(b)[1][1]  # 150 is higher up


def test_a_huge_series_is_cut_to_500_points_keeping_first_last_and_its_extremes():
    samples = [(t * MINUTE, 1_000 + (t * 37) % 101) for t in range(10_000)]
    samples[4_321] = (4_321 * MINUTE, 5_000)
    samples[6_789] = (6_789 * MINUTE, 1)
    kept = downsample(samples)
    assert len(kept) == 500
    assert kept[0] == samples[0] and kept[-1] == samples[-1]
    assert samples[4_321] in kept and samples[6_789] in kept
    assert kept == sorted(kept)
    root = chart({"A": samples})
    [line] = root.iter(f"{SVG}polyline")
    coords = points_of(line)
    assert len(coords) == 500 and coords[0][0] == 52.0 and coords[-1][0] == 708.0
    assert min(y for _, y in coords) == 22.1  # the 5 000 peak is the top of the plot


def test_downsample_keeps_short_lines_whole_and_picks_bucket_extremes_exactly():
    assert downsample([(1, 2), (3, 4)], 2) == [(1, 2), (3, 4)]
    assert downsample([(t, t % 7) for t in range(10)], 6) == [(0, 0), (1, 1), (4, 4), (6, 6), (7, 0), (9, 2)]
    assert downsample([(t, 0) for t in range(10)], 3) == [(0, 0), (9, 0)]
    with pytest.raises(ValueError):
        downsample([(1, 2)], 1)


def test_samples_are_put_in_time_order_and_the_index_is_dashed_after_every_series():
    root = chart({"late": [(2, 110), (1, 100)], "B": [(1, 100)]}, [(1, 50), (2, 55)], index_label="S&P <x>")
    lines = list(root.iter(f"{SVG}polyline"))
    assert points_of(lines[0])[0][0] == 52.0 and points_of(lines[0])[1][0] == 708.0
    assert points_of(lines[0]) == points_of(lines[2])  # both rise 10 % from 100
    assert lines[2].get("class") == "index" and lines[2].get("stroke-dasharray") == "6 4"
    assert lines[2].find(f"{SVG}title").text == "S&P <x>"
    assert "S&amp;P &lt;x&gt;" in value_chart_svg({}, [(1, 50)], index_label="S&P <x>")


def test_the_legend_adds_a_row_for_every_three_lines_and_colours_repeat_after_the_palette():
    series = {f"s{i}": [(0, 1), (1, 2)] for i in range(11)}
    root = chart(series, width=600, height=200)
    assert root.get("height") == str(200 + 4 * 18 + 6)
    strokes = [line.get("stroke") for line in root.iter(f"{SVG}polyline")]
    assert strokes == [*CHART_PALETTE, CHART_PALETTE[0]]
