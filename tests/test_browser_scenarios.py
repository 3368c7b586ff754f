"""Scenarios in Debian's Chromium against the real server process: a teacher previews and starts the crash scenario
from the teacher view, skips to its first event, and the news ticker of a student's market view (and the teacher's)
shows its headline. Screenshots go to artifacts/screenshots/ (git-ignored); with STOCKQUEST_UPDATE_SCREENSHOT=1 the
student's market view is also copied to docs/scenario-news.png."""

import os
import shutil
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

from tests.test_browser_dashboard import (  # noqa: E402 (after the skip: these need Playwright too)
    add_teacher,
    screenshot,
    sign_in_as_guest,
    sign_in_as_teacher,
    watch_volume_changes,
)

ROOT = Path(__file__).resolve().parent.parent
FIRST_HEADLINE = "Central Reserve Board hints at a surprise rate rise"




def test_teacher_starts_the_crash_skips_to_its_first_event_and_the_news_ticker_shows_it(new_page, start_server,
                                                                                       tmp_path):
    data_dir = tmp_path / "class"
    add_teacher(data_dir)
    _, port = start_server("--tick-ms", "100", data_dir=data_dir)  # speed 1: the first event is half an hour away
    base = f"http://127.0.0.1:{port}"

    student = new_page()
    sign_in_as_guest(student, base, "Eve")
    watch_volume_changes(student)
    expect(student.locator("#news-card")).to_be_hidden()

    teacher = new_page()
    sign_in_as_teacher(teacher, base)
    expect(teacher.locator('#scenario-current [data-key="Playing"] dd')).to_have_text("no scenario")
    expect(teacher.locator("#scenario-skip")).to_be_disabled()
    teacher.select_option("#scenario-select", "crash-and-recovery")
    expect(teacher.locator("#scenario-description")).to_contain_text("7 events over 6 days")
    teacher.click("#scenario-preview")
    expect(teacher.locator("#scenario-timeline-title")).to_have_text("Preview: Crash and recovery")
    expect(teacher.locator("#scenario-timeline li")).to_have_count(7)
    first = teacher.locator("#scenario-timeline li").first
    expect(first).to_contain_text(f"Day 1 10:00 {FIRST_HEADLINE}")
    expect(first.locator(".effects")).to_have_text("the market -2% over 2h; Technology -1.5% over 2h")

    teacher.click("#scenario-start")
    expect(teacher.locator("#scenario-result")).to_have_text("Started")
    expect(teacher.locator('#scenario-current [data-key="Playing"] dd')).to_have_text("Crash and recovery")
    expect(teacher.locator('#scenario-current [data-key="Next event"] dd')).to_contain_text(
        "Day 1 10:00 (market ")
    expect(teacher.locator('#scenario-current [data-key="Next event"] dd')).to_contain_text(FIRST_HEADLINE)
    expect(teacher.locator("#scenario-timeline li[data-next=yes]")).to_have_attribute("data-number", "1")
    expect(student.locator("#news-card")).to_be_hidden()  # half an hour of market time away

    teacher.click("#scenario-skip")
    expect(teacher.locator("#scenario-result")).to_have_text("Skipped to the next event")
    expect(teacher.locator('#scenario-current [data-key="Events"] dd')).to_have_text("1 of 7 happened")
    expect(teacher.locator('#scenario-timeline li[data-number="1"]')).to_have_attribute("data-happened", "yes")
    screenshot(teacher, "teacher-scenario-desktop")

    ticker = student.locator("#news li")
    expect(student.locator("#news-card")).to_be_visible()
    expect(ticker).to_have_count(1)
    expect(ticker.first.locator(".headline")).to_have_text(FIRST_HEADLINE)
    expect(ticker.first.locator("details")).to_have_attribute("open", "")
    expect(ticker.first).to_contain_text("rate rise at next week's meeting is possible")
    expect(student.locator(".toast").filter(has_text=FIRST_HEADLINE)).to_be_visible()
    path = screenshot(student, "scenario-news-desktop")
    if os.environ.get("STOCKQUEST_UPDATE_SCREENSHOT"):
        shutil.copyfile(path, ROOT / "docs" / "scenario-news.png")

    teacher.click("#nav a[data-view=market]")
    expect(teacher.locator("#news li .headline")).to_have_text([FIRST_HEADLINE])
    # a student who opens the page now reads the news that has happened (NEWS_HISTORY)
    late = new_page()
    late.goto(base + "/")
    expect(late.locator("#news li .headline")).to_have_text([FIRST_HEADLINE])
    assert student.errors == [] and teacher.errors == [] and late.errors == []
