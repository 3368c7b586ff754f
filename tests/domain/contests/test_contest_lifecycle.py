"""A contest's life (draft, open, finished by the teacher or the clock), its rules, join codes and display names."""

import random
from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import given

from domain.contests import (
    JOIN_CODE_ALPHABET,
    Contest,
    ContestRules,
    ContestStanding,
    ContestStatus,
    DaySchedule,
    Moment,
    WallSchedule,
    display_name,
    name_key,
    new_join_code,
    parse_join_code,
)
from domain.errors import BadRequest, Conflict
from domain.risk import default_limits
from domain.trading import Commission, TradingTerms

HOUR = 3_600_000
LESSON = WallSchedule(10 * HOUR, 11 * HOUR)


def contest(schedule=LESSON, rules: ContestRules = ContestRules(), **fields) -> Contest:
    return Contest("C1", "Spring contest 9B", "t1", "QX7-42K", rules, schedule, **fields)


def at(wall_ms: int = 0, day: int = 0) -> Moment:
    return Moment(wall_ms, day)


# ----- join codes and names ----------------------------------------------------------------------------------


def test_a_join_code_is_two_groups_of_three_unambiguous_characters_from_the_injected_rng():
    codes = [new_join_code(random.Random(seed)) for seed in range(200)]
    assert codes[:3] == [new_join_code(random.Random(0)), new_join_code(random.Random(1)),
                         new_join_code(random.Random(2))]
    for code in codes:
        assert len(code) == 7 and code[3] == "-"
        assert set(code.replace("-", "")) <= set(JOIN_CODE_ALPHABET)
    assert not set("0O1I") & set(JOIN_CODE_ALPHABET) and len(JOIN_CODE_ALPHABET) == 32


def test_a_new_join_code_avoids_the_codes_taken():
    first = new_join_code(random.Random(5))
    assert new_join_code(random.Random(5), {first}) != first


def test_when_every_code_drawn_is_taken_the_search_gives_up_with_a_conflict():
    class Everything:
        def __contains__(self, code):
            return True

    with pytest.raises(Conflict):
        new_join_code(random.Random(1), Everything())


@pytest.mark.parametrize("typed", ["QX7-42K", "qx7-42k", "QX742K", " qx7 42k ", "q x 7 – 4 2 k", "QX7—42K", "qx7_42K"])
def test_a_typed_join_code_is_normalised_for_case_spaces_and_dashes(typed):
    assert parse_join_code(typed) == "QX7-42K"


@pytest.mark.parametrize("typed", ["QX0-42K", "QXO-42K", "QX1-42K", "QXI-42K", "QX7-42", "QX7-42KK", "", None, 742,
                                   "QX7.42K", "Q" * 100])
def test_a_join_code_with_a_character_outside_the_alphabet_or_the_wrong_length_is_a_bad_request(typed):
    with pytest.raises(BadRequest, match="join code"):
        parse_join_code(typed)


@given(rng_seed=st.integers(0, 2**32),
       mangle=st.lists(st.sampled_from(["lower", "space", "nodash", "edges"]), unique=True))
def test_any_mangling_of_a_generated_code_parses_back_to_it(rng_seed, mangle):
    code = new_join_code(random.Random(rng_seed))
    typed = code
    for how in mangle:
        typed = {"lower": typed.lower(), "space": " ".join(typed), "nodash": typed.replace("-", ""),
                 "edges": f"  {typed}\t"}[how]
    assert parse_join_code(typed) == code


def test_a_nickname_is_trimmed_and_its_inner_spaces_collapsed():
    assert display_name("  Ada   the  Bold ") == "Ada the Bold"
    assert display_name("Zoë") == display_name("Zoe\u0308") == "Zoë"  # one spelling of ë


@pytest.mark.parametrize("nickname, problem", [
    ("A", "2 to 24 characters"),
    ("x" * 25, "2 to 24 characters"),
    ("Ada\nLovelace", "printable"),
    ("Ada\u200bBob", "printable"),      # a zero-width space
    ("Ada\u202eBob", "printable"),      # right-to-left override
    ("Ada\u00a0Bob", "printable"),      # no-break space
    ("\x1b[31mRed", "printable"),
    (None, "must be text"),
])
def test_a_nickname_must_be_2_to_24_printable_characters(nickname, problem):
    with pytest.raises(BadRequest, match=problem):
        display_name(nickname)


def test_names_are_compared_case_insensitively_and_by_compatibility():
    assert name_key("ADA") == name_key("ada") == name_key("Ａｄａ")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("Ada") != name_key("Adam")


# ----- rules -------------------------------------------------------------------------------------------------


def test_contest_rules_give_the_engine_their_commission_and_short_selling():
    rules = ContestRules(commission=Commission(99, Decimal("0.5")), short_selling=True)
    assert rules.terms() == TradingTerms(Commission(99, Decimal("0.5")), True)


def test_the_house_risk_defaults_apply_unless_turned_off_and_the_contest_cap_tightens_them():
    assert ContestRules(starting_cash_cents=5_000_000).risk_limits() == default_limits(5_000_000)
    assert ContestRules(house_risk_limits=False).risk_limits().max_order_value is None
    capped = ContestRules(max_position_weight=Decimal("0.1")).risk_limits()
    assert capped.max_position_weight == Decimal("0.1") and capped.max_order_value == 2_500_000
    loose = ContestRules(max_position_weight=0.4).risk_limits()
    assert loose.max_position_weight == Decimal("0.25")
    assert ContestRules(max_position_weight=0.4, house_risk_limits=False).risk_limits().max_position_weight \
        == Decimal("0.4")


def test_allowed_symbols_and_sectors_allow_a_symbol_listed_by_either():
    assert ContestRules().allows("ACME", "Tech")
    rules = ContestRules(allowed_symbols={"ACME"}, allowed_sectors={"Energy"})
    assert rules.allows("ACME", "Tech") and rules.allows("OIL", "Energy") and not rules.allows("BANK", "Finance")
    assert rules.allowed_text() == "the sector Energy and the symbol ACME"
    assert ContestRules(allowed_sectors=["Tech", "Energy"]).allowed_text() == "the sectors Energy, Tech"


@pytest.mark.parametrize("fields, problem", [
    ({"starting_cash_cents": 0}, "starting cash"),
    ({"starting_cash_cents": 10.5}, "starting cash"),
    ({"commission": Commission(-1)}, "commissions"),
    ({"commission": Commission(0, Decimal("NaN"))}, "commissions"),
    ({"commission": Commission(0, Decimal("10001"))}, "commissions"),
    ({"allowed_symbols": set()}, "allowed_symbols is empty"),
    ({"allowed_symbols": "ACME"}, "a list of names"),
    ({"allowed_sectors": {""}}, "non-blank"),
    ({"max_position_weight": 0}, "max_position_weight"),
    ({"max_position_weight": 1.5}, "max_position_weight"),
    ({"max_position_weight": "lots"}, "max_position_weight"),
    ({"max_team_size": 1}, "max_team_size"),
    ({"max_team_size": 6}, "max_team_size"),
    ({"short_selling": "yes"}, "true or false"),
])
def test_rules_a_teacher_got_wrong_are_a_bad_request(fields, problem):
    with pytest.raises(BadRequest, match=problem):
        ContestRules(**fields)


# ----- the state machine -------------------------------------------------------------------------------------


def test_a_new_contest_is_a_draft_with_a_canonical_code_and_no_ranking():
    made = Contest("C1", "  Spring  contest ", "t1", "qx7 42k", ContestRules(), LESSON)
    assert (made.status, made.name, made.join_code, made.final_ranking) == (ContestStatus.DRAFT, "Spring contest",
                                                                            "QX7-42K", None)
    assert not made.requires_password and "secret" not in repr(contest(password_hash="secret"))


def test_the_wall_clock_opens_a_lesson_at_its_start_and_finishes_it_at_its_end():
    draft = contest()
    assert draft.status_at(at(10 * HOUR - 1)) is ContestStatus.DRAFT
    assert draft.at(at(10 * HOUR - 1)) is draft
    opened = draft.at(at(10 * HOUR, day=3))
    assert (opened.status, opened.opened_at) == (ContestStatus.OPEN, at(10 * HOUR, 3))
    assert opened.status_at(at(11 * HOUR - 1)) is ContestStatus.OPEN
    finished = opened.at(at(11 * HOUR))
    assert (finished.status, finished.finished_at, finished.opened_at) == (ContestStatus.FINISHED, at(11 * HOUR),
                                                                           at(10 * HOUR, 3))


def test_simulated_day_bounds_include_the_first_and_the_last_day():
    days = contest(DaySchedule(3, 5))
    assert [days.status_at(at(day=d)) for d in range(2, 7)] == ["DRAFT", "OPEN", "OPEN", "OPEN", "FINISHED"]
    assert days.at(at(day=9)).status is ContestStatus.FINISHED  # a contest nobody ticked through still ends


def test_the_teacher_may_open_early_and_finish_early_and_nothing_goes_back():
    opened = contest().open(at(HOUR))
    assert (opened.status, opened.opened_at) == (ContestStatus.OPEN, at(HOUR))
    assert opened.open(at(2 * HOUR)) is opened  # twice is once
    finished = opened.finish(at(2 * HOUR))
    assert finished.status_at(at(10 * HOUR + 1)) is ContestStatus.FINISHED  # the schedule's start does not reopen it
    assert finished.finish(at(3 * HOUR)) is finished
    with pytest.raises(BadRequest, match="cannot open again"):
        finished.open(at(3 * HOUR))
    with pytest.raises(BadRequest, match="cannot open again"):
        contest().open(at(12 * HOUR))  # its end has passed


def test_a_draft_can_be_called_off():
    assert contest().finish(at(HOUR)).status is ContestStatus.FINISHED


def test_a_closed_contest_says_why_it_takes_no_orders():
    assert contest().closed_reason(at(HOUR)) == (
        'the contest "Spring contest 9B" has not started yet: it opens at 1970-01-01 10:00 UTC')
    assert contest(DaySchedule(4, 6)).closed_reason(at(day=1)) == (
        'the contest "Spring contest 9B" has not started yet: it opens on simulated day 4')
    assert contest().closed_reason(at(10 * HOUR)) is None
    assert contest().closed_reason(at(11 * HOUR)) == (
        'the contest "Spring contest 9B" has ended: it takes no more orders')


def test_rules_schedule_name_and_password_change_only_while_it_is_a_draft():
    rules = ContestRules(note_required=True)
    revised = contest(password_hash="h1").revised(at(HOUR), name="Autumn", rules=rules, schedule=DaySchedule(1, 2),
                                                  password_hash=None)
    assert (revised.name, revised.rules, revised.schedule, revised.password_hash) == (
        "Autumn", rules, DaySchedule(1, 2), None)
    assert contest(password_hash="h1").revised(at(HOUR), name="Autumn").password_hash == "h1"
    with pytest.raises(BadRequest, match="has started"):
        contest().revised(at(10 * HOUR), rules=rules)  # the clock opened it, even if nobody stored that yet


@pytest.mark.parametrize("schedule", [lambda: DaySchedule(5, 4), lambda: DaySchedule(-1, 4),
                                      lambda: WallSchedule(5, 5), lambda: WallSchedule(1.5, 9)])
def test_a_schedule_must_end_after_it_starts(schedule):
    with pytest.raises(BadRequest):
        schedule()


def test_the_final_ranking_is_frozen_once_and_only_after_the_end():
    standing = ContestStanding(1, "P1", "Ada", 10_100_000, 0.01, None, 0.0, 0.0)
    with pytest.raises(BadRequest, match="has not finished"):
        contest().open(at(HOUR)).freeze([standing])
    frozen = contest().finish(at(HOUR)).freeze([standing])
    assert frozen.final_ranking == (standing,)
    with pytest.raises(Conflict, match="frozen"):
        frozen.freeze([])
    assert frozen.at(at(12 * HOUR)) is frozen


@given(steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30 * HOUR), st.integers(0, 10)), max_size=20),
       days=st.booleans())
def test_a_contest_never_goes_back_and_the_stored_status_never_runs_ahead_of_the_clock(steps, days):
    current = contest(DaySchedule(3, 6) if days else WallSchedule(5 * HOUR, 20 * HOUR))
    order = [ContestStatus.DRAFT, ContestStatus.OPEN, ContestStatus.FINISHED]
    wall = day = 0
    for action, dt, dd in steps:
        wall, day = wall + dt // 10, day + dd // 5  # time moves forward only
        moment = at(wall, day)
        before = current.status_at(moment)
        try:
            current = [current.at, current.open, current.finish, current.at][action](moment)
        except BadRequest:
            assert action == 1 and before is ContestStatus.FINISHED
            continue
        assert order.index(current.status) >= order.index(before)
        assert current.status_at(moment) is current.status
