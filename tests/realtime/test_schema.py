"""Field validation of message data: wrong JSON types are INVALID_MESSAGE, bad values BAD_REQUEST."""

from decimal import Decimal

import pytest

from realtime.protocol import ErrorCode, ProtocolError
from realtime.schema import Bool, Id, Int, Money, Number, Obj, Str, StrList, snake_case, validate

INVALID = ErrorCode.INVALID_MESSAGE
BAD = ErrorCode.BAD_REQUEST


def refused(field, value, name="field") -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        field.convert(name, value)
    return caught.value


# Str ------------------------------------------------------------------------


def test_str_strips_whitespace():
    assert Str().convert("name", "  Growth fund \n") == "Growth fund"


def test_str_upper_cases_when_asked():
    assert Str(upper=True).convert("side", " buy ") == "BUY"


@pytest.mark.parametrize("value", [5, 1.5, True, None, ["BUY"], {"side": "BUY"}])
def test_str_refuses_other_json_types_as_invalid_message(value):
    assert refused(Str(), value).code == INVALID


def test_str_refuses_over_long_value_as_bad_request():
    assert Str(max_len=5).convert("name", "abcde") == "abcde"
    assert refused(Str(max_len=5), "abcdef").code == BAD


@pytest.mark.parametrize("value", ["\x00", "abc\x00", "\x00 note"])
def test_str_refuses_a_nul_character_as_bad_request(value):
    """At the edge, for every text field: PostgreSQL's text cannot hold one (a rejected order is stored too)."""
    with pytest.raises(ProtocolError) as refused:
        Str().convert("clientOrderId", value)
    assert refused.value.code == ErrorCode.BAD_REQUEST and "NUL" in refused.value.message


def test_str_refuses_value_outside_choices_as_bad_request():
    side = Str(upper=True, choices=("BUY", "SELL"))
    assert side.convert("side", "sell") == "SELL"
    error = refused(side, "HOLD", "side")
    assert error.code == BAD
    assert "side" in error.message and "BUY" in error.message


# Int ------------------------------------------------------------------------


def test_int_accepts_whole_numbers_including_whole_floats():
    assert Int().convert("limit", 25) == 25
    assert Int().convert("limit", 25.0) == 25
    assert isinstance(Int().convert("limit", 25.0), int)


@pytest.mark.parametrize("value", [True, False, "5", None, [5], {"n": 5}])
def test_int_refuses_other_json_types_as_invalid_message(value):
    assert refused(Int(), value).code == INVALID


@pytest.mark.parametrize("value", [1.5, -0.25, 1e300, -1e300, 10**30, 10**15 + 1, float("nan"), float("inf")])
def test_int_refuses_fractional_huge_or_non_finite_numbers_as_bad_request(value):
    assert refused(Int(), value).code == BAD


def test_int_accepts_the_largest_allowed_magnitude():
    assert Int().convert("n", 10**15) == 10**15
    assert Int().convert("n", -(10**15)) == -(10**15)


def test_int_enforces_min_and_max():
    limit = Int(min=1, max=1000)
    assert limit.convert("limit", 1) == 1
    assert limit.convert("limit", 1000) == 1000
    assert refused(limit, 0).code == BAD
    assert refused(limit, 1001).code == BAD


def test_int_enforces_choices():
    assert Int(choices=(1, 5)).convert("n", 5) == 5
    assert refused(Int(choices=(1, 5)), 2).code == BAD


# Number ---------------------------------------------------------------------


def test_number_accepts_ints_and_floats_unchanged():
    assert Number().convert("percent", -2.5) == -2.5
    assert Number().convert("percent", 3) == 3


@pytest.mark.parametrize("value", [True, "2.5", None, [1.0]])
def test_number_refuses_other_json_types_as_invalid_message(value):
    assert refused(Number(), value).code == INVALID


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e300, 1e16])
def test_number_refuses_non_finite_or_huge_values_as_bad_request(value):
    assert refused(Number(), value).code == BAD


def test_number_enforces_min_and_max():
    speed = Number(min=0.1, max=100)
    assert speed.convert("speed", 0.1) == 0.1
    assert refused(speed, 0.05).code == BAD
    assert refused(speed, 100.5).code == BAD


# Money ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["101.25", 101.25, " 101.25 ", "101.250"])
def test_money_reads_strings_and_numbers_as_exact_decimals(value):
    amount = Money().convert("limitPrice", value)
    assert isinstance(amount, Decimal)
    assert amount == Decimal("101.25")


def test_money_keeps_the_shortest_float_representation():
    assert str(Money().convert("limitPrice", 0.1)) == "0.1"
    assert Money().convert("limitPrice", 100) == Decimal(100)


@pytest.mark.parametrize("value", [True, None, [101.25], {"amount": 1}])
def test_money_refuses_other_json_types_as_invalid_message(value):
    assert refused(Money(), value).code == INVALID


@pytest.mark.parametrize("value", [
    "abc", "", "1.2.3", "NaN", "sNaN", "Infinity", "-Infinity", "1e16", "-1e16",
    float("nan"), float("inf"), 1e300,
])
def test_money_refuses_bad_values_as_bad_request(value):
    assert refused(Money(), value).code == BAD


@pytest.mark.parametrize("value", ["1e1000000", "-1e1000000"])
def test_money_refuses_an_enormous_exponent_as_bad_request(value):
    assert refused(Money(), value).code == BAD


def test_money_enforces_whole_min_and_max():
    amount = Money(min=0, max=1000)
    assert amount.convert("maxDailyLoss", "0") == Decimal(0)
    assert amount.convert("maxDailyLoss", 1000) == Decimal(1000)
    assert refused(amount, "-0.01").code == BAD
    assert refused(amount, "1000.01").code == BAD


@pytest.mark.parametrize("value", ["0.01", 0.01])
def test_money_accepts_a_value_equal_to_a_fractional_min(value):
    assert Money(min=0.01).convert("limitPrice", value) == Decimal("0.01")


def test_money_refuses_a_value_below_a_fractional_min():
    assert refused(Money(min=0.01), "0.009").code == BAD
    assert refused(Money(min=0.01), -5).code == BAD


# Bool -----------------------------------------------------------------------


def test_bool_accepts_true_and_false():
    assert Bool().convert("flag", True) is True
    assert Bool().convert("flag", False) is False


@pytest.mark.parametrize("value", [1, 0, "true", "false", None, []])
def test_bool_refuses_anything_but_json_booleans_as_invalid_message(value):
    assert refused(Bool(), value).code == INVALID


# Id -------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (1, "1"),
    (0, "0"),
    ("p-42", "p-42"),
    ("ord_1.2:3", "ord_1.2:3"),
    ("a" * 64, "a" * 64),
])
def test_id_accepts_strings_and_reads_numbers_as_strings(value, expected):
    assert Id().convert("portfolioId", value) == expected


@pytest.mark.parametrize("value", [True, False, 1.0, 1.5, None, ["1"], {"id": 1}])
def test_id_refuses_other_json_types_as_invalid_message(value):
    assert refused(Id(), value).code == INVALID


@pytest.mark.parametrize("value", ["a b", "", "a" * 65, "x/y", "<script>", "\u00e9", 10**70])
def test_id_refuses_malformed_or_over_long_ids_as_bad_request(value):
    assert refused(Id(), value).code == BAD


def test_id_refuses_a_trailing_newline():
    assert refused(Id(), "abc\n").code == BAD


# StrList --------------------------------------------------------------------


def test_str_list_upper_cases_strips_and_removes_duplicates_keeping_order():
    symbols = StrList(upper=True).convert("symbols", [" msft", "AAPL ", "msft", "goog", "Aapl"])
    assert symbols == ["MSFT", "AAPL", "GOOG"]


def test_str_list_leaves_case_alone_unless_asked():
    assert StrList().convert("models", ["momentum", "meanReversion"]) == ["momentum", "meanReversion"]


def test_str_list_accepts_a_single_string_as_a_list_of_one():
    assert StrList(upper=True).convert("symbols", " aapl ") == ["AAPL"]


def test_str_list_accepts_an_empty_list():
    assert StrList().convert("symbols", []) == []


@pytest.mark.parametrize("value", [["AAPL", 5], [None], [["AAPL"]], 5, {"AAPL": 1}, True])
def test_str_list_refuses_non_string_items_as_invalid_message(value):
    assert refused(StrList(), value).code == INVALID


def test_str_list_refuses_too_many_items_as_bad_request():
    assert len(StrList(max_items=3).convert("symbols", ["A", "B", "C"])) == 3
    assert refused(StrList(max_items=3), ["A", "B", "C", "D"]).code == BAD


@pytest.mark.parametrize("value", [["AAPL", ""], ["   "], ["X" * 11]])
def test_str_list_refuses_empty_or_over_long_items_as_bad_request(value):
    assert refused(StrList(max_len=10), value).code == BAD


def test_str_list_enforces_choices_after_normalising():
    models = StrList(choices=("momentum", "trend"))
    assert models.convert("models", ["trend"]) == ["trend"]
    assert refused(models, ["trend", "astrology"]).code == BAD


# Obj ------------------------------------------------------------------------


def test_obj_without_fields_returns_the_object_as_is():
    assert Obj().convert("limits", {"maxDailyLoss": 500}) == {"maxDailyLoss": 500}


@pytest.mark.parametrize("value", [[], "x", 5, True])
def test_obj_refuses_non_objects_as_invalid_message(value):
    assert refused(Obj(), value).code == INVALID


def test_obj_validates_nested_fields_and_names_the_path():
    constraints = Obj(fields={"maxWeight": Number(required=True, max=1), "minWeight": Number(default=0)})
    assert constraints.convert("constraints", {"maxWeight": 0.4}) == {"max_weight": 0.4, "min_weight": 0}
    with pytest.raises(ProtocolError) as caught:
        constraints.convert("constraints", {})
    assert caught.value.code == BAD
    assert "constraints.maxWeight" in caught.value.message
    with pytest.raises(ProtocolError) as caught:
        constraints.convert("constraints", {"maxWeight": "heavy"})
    assert caught.value.code == INVALID
    assert "constraints.maxWeight" in caught.value.message


# validate -------------------------------------------------------------------

SUBSCRIBE = {
    "symbols": StrList(required=True, upper=True),
    "subscriptionType": Str(upper=True, default="REAL_TIME", choices=("REAL_TIME",)),
    "updateInterval": Int(),
}


def test_validate_returns_snake_case_keyword_arguments():
    assert validate({"symbols": ["aapl"], "subscriptionType": "real_time", "updateInterval": 250}, SUBSCRIBE) == {
        "symbols": ["AAPL"], "subscription_type": "REAL_TIME", "update_interval": 250,
    }


def test_validate_fills_defaults_for_absent_and_null_optional_fields():
    assert validate({"symbols": "AAPL", "updateInterval": None}, SUBSCRIBE) == {
        "symbols": ["AAPL"], "subscription_type": "REAL_TIME", "update_interval": None,
    }


@pytest.mark.parametrize("data", [{}, {"symbols": None}])
def test_validate_refuses_a_missing_required_field_as_bad_request(data):
    with pytest.raises(ProtocolError) as caught:
        validate(data, SUBSCRIBE)
    assert caught.value.code == BAD
    assert "symbols" in caught.value.message


def test_validate_ignores_unknown_fields():
    assert validate({"symbols": ["AAPL"], "colour": "blue"}, SUBSCRIBE)["symbols"] == ["AAPL"]


def test_validate_reports_wrong_type_before_anything_else_of_that_field():
    with pytest.raises(ProtocolError) as caught:
        validate({"symbols": ["AAPL"], "updateInterval": "fast"}, SUBSCRIBE)
    assert caught.value.code == INVALID
    assert "updateInterval" in caught.value.message


@pytest.mark.parametrize("wire, python", [
    ("symbols", "symbols"),
    ("portfolioId", "portfolio_id"),
    ("updateInterval", "update_interval"),
    ("sinceEventId", "since_event_id"),
    ("maxVar95", "max_var95"),
])
def test_snake_case_converts_camel_case_wire_names(wire, python):
    assert snake_case(wire) == python


# json_schema ------------------------------------------------------------------


def test_json_schema_states_what_convert_accepts():
    assert Int(min=1, max=5, default=2).json_schema() == {"type": "integer", "minimum": 1, "maximum": 5, "default": 2}
    assert Str(choices=("A", "B"), upper=True).json_schema() == {"type": "string", "enum": ["A", "B"]}
    assert Money(nullable=True, default=...).json_schema() == {"type": ["number", "string", "null"]}
    assert Id().json_schema()["type"] == ["string", "integer"]


def test_json_schema_of_a_list_also_allows_one_string():
    item = {"type": "string", "minLength": 1, "maxLength": 12}
    assert StrList(max_len=12, max_items=3).json_schema() == {
        "oneOf": [item, {"type": "array", "items": item, "maxItems": 3}]}
