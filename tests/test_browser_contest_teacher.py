"""The teacher's Contests card in Debian's Chromium against the real server process, for what a teacher misses the
first time: a draft's rules edited (only the changed fields are sent, and the editor is gone once the contest is
open), the contest's own risk feed (its portfolios riskiest first, named as in the contest, none from outside it),
and a team's members changed after it was formed (one added, one removed, the server's refusal shown).
"""

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

from tests.test_browser_contests import join, local_minutes_from_now, student_opens_contests  # noqa: E402
from tests.test_browser_dashboard import add_teacher, place_order, sign_in_as_teacher  # noqa: E402

CONTEST = "Owls of 8C"


def create_lesson_contest(teacher, name, *, cash=None, team_size=None):
    """A draft: a lesson starting in 10 minutes (opened early by the test when it wants trading)."""
    card = teacher.get_by_test_id("contests-card")
    card.get_by_test_id("contest-create-toggle").click()
    card.get_by_test_id("contest-name").fill(name)
    if cash is not None:
        card.get_by_test_id("contest-cash").fill(str(cash))
    if team_size is not None:
        card.get_by_test_id("contest-team-size").select_option(str(team_size))
    card.get_by_test_id("contest-schedule-wall").check()
    card.get_by_test_id("contest-start").fill(local_minutes_from_now(teacher, 10))
    card.get_by_test_id("contest-end").fill(local_minutes_from_now(teacher, 120))
    card.get_by_test_id("contest-create-submit").click()
    expect(teacher.get_by_test_id("contest-detail-name")).to_have_text(name)
    expect(teacher.get_by_test_id("contest-detail-status")).to_have_text("DRAFT")
    return teacher.get_by_test_id("contest-detail-code").inner_text().strip()


@pytest.fixture
def teacher_and_base(new_page, start_server, tmp_path):
    data_dir = tmp_path / "class"
    add_teacher(data_dir)
    _, port = start_server("--tick-ms", "100", data_dir=data_dir)
    base = f"http://127.0.0.1:{port}"
    teacher = new_page()
    sign_in_as_teacher(teacher, base)
    return teacher, base


def test_a_draft_is_edited_then_its_risk_feed_lists_only_its_portfolios(new_page, teacher_and_base):
    teacher, base = teacher_and_base
    code = create_lesson_contest(teacher, CONTEST, cash=50000)
    facts = teacher.get_by_test_id("contest-detail-facts")
    expect(facts.locator('[data-key="Starting cash"] dd')).to_have_text("50,000")

    # -- the draft's rules, prefilled; only what changed is sent
    teacher.get_by_test_id("contest-edit-toggle").click()
    edit = teacher.get_by_test_id("contest-edit-form")
    expect(edit.get_by_test_id("contest-edit-name")).to_have_value(CONTEST)
    expect(edit.get_by_test_id("contest-edit-cash")).to_have_value("50000")
    expect(edit.get_by_test_id("contest-edit-schedule-wall")).to_be_checked()
    edit.get_by_test_id("contest-edit-submit").click()
    expect(edit.get_by_test_id("contest-edit-error")).to_have_text("Nothing changed")
    edit.get_by_test_id("contest-edit-name").fill(f"{CONTEST} (edited)")
    edit.get_by_test_id("contest-edit-cash").fill("30000")
    with teacher.expect_request(lambda request: request.method == "PATCH") as patched:
        edit.get_by_test_id("contest-edit-submit").click()
    assert patched.value.post_data_json == {"name": f"{CONTEST} (edited)", "rules": {"startingCash": 30000}}
    expect(teacher.get_by_test_id("contest-action-result")).to_have_text("Changes saved")
    expect(teacher.get_by_test_id("contest-detail-name")).to_have_text(f"{CONTEST} (edited)")
    expect(facts.locator('[data-key="Starting cash"] dd')).to_have_text("30,000")
    expect(teacher.get_by_test_id("contest-row").filter(has_text=f"{CONTEST} (edited)")).to_have_count(1)
    expect(edit).to_be_hidden()

    # -- once open, its rules are fixed: no editor
    teacher.get_by_test_id("contest-open").click()
    expect(teacher.get_by_test_id("contest-detail-status")).to_have_text("OPEN")
    expect(teacher.get_by_test_id("contest-edit")).to_be_hidden()

    # -- two students join, one trades; a third student stays in the class outside the contest
    ann = student_opens_contests(new_page, base, "Ann")
    join(ann, code, "Ann the Bold", password="")
    expect(ann.get_by_test_id("contest-join-result")).to_contain_text("Joined")
    ben = student_opens_contests(new_page, base, "Ben")
    join(ben, code, "Ben", password="")
    expect(ben.get_by_test_id("contest-join-result")).to_contain_text("Joined")
    outsider = student_opens_contests(new_page, base, "Olly")
    place_order(outsider, "NVTX", quantity=2)
    expect(outsider.locator("#ticket-result")).to_have_attribute("data-status", "FILLED")
    place_order(ann, "NVTX", quantity=3)
    expect(ann.locator("#ticket-result")).to_have_attribute("data-status", "FILLED")

    # -- the contest's risk feed: its two portfolios by their contest names, the trader's position in it
    teacher.get_by_test_id("contests-refresh").click()
    risk = teacher.get_by_test_id("contest-risk").get_by_test_id("risk-row")
    expect(risk).to_have_count(2)
    expect(risk.filter(has_text="Ann the Bold")).to_have_count(1)
    expect(risk.filter(has_text="Ben")).to_have_count(1)
    expect(risk.filter(has_text="Ann the Bold").locator("[data-f=largest]")).to_contain_text("NVTX")
    expect(risk.filter(has_text="Ann the Bold").locator("[data-f=drawdown]")).to_contain_text("%")
    expect(risk.first.locator("[data-f=name]")).to_have_text("Ann the Bold")   # riskiest first: Ben holds cash only
    contest_portfolios = {row.get_attribute("data-portfolio-id") for row in risk.all()}
    # the class feed (the portfolios in no contest) stays without them
    class_rows = teacher.locator("#class-risk-ranking tbody tr")
    expect(class_rows.first).to_be_visible()
    assert not contest_portfolios & {row.get_attribute("data-portfolio-id") for row in class_rows.all()}

    # -- leaving the card unsubscribes; coming back subscribes again
    teacher.click("#nav a[data-view=market]")
    expect(teacher.get_by_test_id("contest-risk").get_by_test_id("risk-row")).to_have_count(0)
    teacher.click("#nav a[data-view=teacher]")
    expect(risk).to_have_count(2)

    assert teacher.errors == [] and ann.errors == [] and ben.errors == [] and outsider.errors == []


def test_a_team_gets_a_member_added_and_one_removed(new_page, teacher_and_base):
    teacher, base = teacher_and_base
    code = create_lesson_contest(teacher, "Bulls and Bears", team_size=3)
    students = []
    for name in ["Ann", "Ben", "Cat", "Dan"]:
        page = student_opens_contests(new_page, base, name)
        join(page, code, name, password="")
        expect(page.get_by_test_id("contest-join-result")).to_contain_text("Joined")
        students.append(page)
    teacher.get_by_test_id("contests-refresh").click()
    expect(teacher.get_by_test_id("contest-roster-row")).to_have_count(4)
    for member in ["Ann", "Ben"]:
        teacher.locator("#contest-team-members label").filter(has_text=member).locator("input").check()
    teacher.get_by_test_id("contest-team-name").fill("Bulls")
    teacher.get_by_test_id("contest-team-submit").click()
    expect(teacher.get_by_test_id("contest-action-result")).to_have_text("Team Bulls formed")

    team = teacher.get_by_test_id("contest-team").filter(has_text="Bulls")
    players = team.get_by_test_id("contest-team-player")
    expect(players).to_have_count(2)
    expect(players.first).to_contain_text("Ann (captain)")
    expect(players.first.get_by_test_id("contest-team-remove")).to_have_count(0)   # the captain stays

    team.get_by_test_id("contest-team-add-select").select_option(label="Cat")
    team.get_by_test_id("contest-team-add").click()
    error = teacher.get_by_test_id("contest-teams-error")
    result = teacher.get_by_test_id("contest-action-result")
    expect(result).to_have_text("Cat added to Bulls")
    expect(players).to_have_count(3)
    expect(teacher.locator("#contest-roster tr").filter(has_text="Cat")).to_contain_text("Bulls")
    expect(team).to_contain_text("full (3)")

    players.filter(has_text="Ben").get_by_test_id("contest-team-remove").click()
    expect(result).to_have_text("Ben removed from Bulls")
    expect(players).to_have_count(2)
    expect(teacher.locator("#contest-roster tr").filter(has_text="Ben").locator("td").nth(1)).to_have_text("—")

    # fewer than two would be left: the server refuses, and says why
    players.filter(has_text="Cat").get_by_test_id("contest-team-remove").click()
    expect(error).to_contain_text("a team needs at least 2 members")
    expect(players).to_have_count(2)

    assert teacher.errors == [] and all(page.errors == [] for page in students)
