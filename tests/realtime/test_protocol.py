"""The wire envelope: decoding client frames, encoding server frames, timestamps, ERROR and close codes."""

import json
import re

import pytest

from realtime.protocol import (
    CloseCode,
    ErrorCode,
    Inbound,
    ProtocolError,
    decode,
    encode,
    encode_data,
    iso_timestamp,
    new_message_id,
)
from realtime.schema import Int, Money, Number, validate

TIMESTAMP = "2025-11-26T03:00:00.123Z"


def decode_error(text: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode(text)
    return caught.value


# decode -------------------------------------------------------------------


def test_decode_returns_upper_case_type_data_and_request_id():
    message = decode('{"type": "subscribe", "data": {"symbols": ["AAPL"]}, "requestId": "c-17"}')
    assert message == Inbound(type="SUBSCRIBE", data={"symbols": ["AAPL"]}, request_id="c-17")


def test_decode_normalises_mixed_case_type():
    assert decode('{"type": "Request_Quote"}').type == "REQUEST_QUOTE"


def test_decode_treats_missing_and_null_data_as_empty_object():
    assert decode('{"type": "HEARTBEAT"}').data == {}
    assert decode('{"type": "HEARTBEAT", "data": null}').data == {}


def test_decode_without_request_id_gives_none():
    assert decode('{"type": "HEARTBEAT"}').request_id is None
    assert decode('{"type": "HEARTBEAT", "requestId": null}').request_id is None


def test_decode_reads_numeric_request_id_as_string():
    assert decode('{"type": "HEARTBEAT", "requestId": 7}').request_id == "7"


def test_decode_ignores_client_timestamp_and_unknown_top_level_fields():
    message = decode('{"type": "HEARTBEAT", "timestamp": "2025-11-26T03:00:00.123Z", "extra": 1}')
    assert message == Inbound("HEARTBEAT", {}, None)


@pytest.mark.parametrize("text", ["", "not json", "{", '{"type": "X",}', "{'type': 'X'}", "\x00"])
def test_decode_refuses_text_that_is_not_json(text):
    error = decode_error(text)
    assert error.code == ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("text", ['[{"type": "X"}]', "[]", '"HEARTBEAT"', "42", "1.5", "null", "true"])
def test_decode_refuses_json_that_is_not_an_object(text):
    assert decode_error(text).code == ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("text", [
    "{}",
    '{"data": {}}',
    '{"type": ""}',
    '{"type": null}',
    '{"type": 5}',
    '{"type": true}',
    '{"type": ["SUBSCRIBE"]}',
    '{"type": {"name": "SUBSCRIBE"}}',
])
def test_decode_refuses_missing_empty_or_non_string_type(text):
    assert decode_error(text).code == ErrorCode.INVALID_MESSAGE


def test_decode_refuses_over_long_type():
    assert decode_error(json.dumps({"type": "X" * 65})).code == ErrorCode.INVALID_MESSAGE
    assert decode(json.dumps({"type": "X" * 64})).type == "X" * 64


def test_type_error_still_carries_the_request_id_for_the_reply():
    error = decode_error('{"type": 5, "requestId": "r-1"}')
    assert error.request_id == "r-1"


@pytest.mark.parametrize("data", ["[]", "[1, 2]", '"AAPL"', "1", "true"])
def test_decode_refuses_data_that_is_not_an_object(data):
    error = decode_error('{"type": "subscribe", "requestId": "r-2", "data": %s}' % data)
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.request_type == "SUBSCRIBE"
    assert error.request_id == "r-2"


@pytest.mark.parametrize("request_id", ['{"a": 1}', "[1]", "true", "false", "1.5"])
def test_decode_refuses_request_id_that_is_not_a_string_or_integer(request_id):
    assert decode_error('{"type": "HEARTBEAT", "requestId": %s}' % request_id).code == ErrorCode.INVALID_MESSAGE


def test_decode_refuses_over_long_request_id():
    assert decode(json.dumps({"type": "HEARTBEAT", "requestId": "r" * 128})).request_id == "r" * 128
    assert decode_error(json.dumps({"type": "HEARTBEAT", "requestId": "r" * 129})).code == ErrorCode.INVALID_MESSAGE


def test_decode_refuses_huge_integer_request_id_as_over_long():
    assert decode_error('{"type": "HEARTBEAT", "requestId": %d}' % 10**200).code == ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_pass_decode_but_numeric_fields_refuse_them_as_bad_request(literal):
    message = decode('{"type": "SUBMIT_ORDER", "data": {"quantity": %s}}' % literal)
    for field in (Number(), Int(), Money()):
        with pytest.raises(ProtocolError) as caught:
            validate(message.data, {"quantity": field})
        assert caught.value.code == ErrorCode.BAD_REQUEST


@pytest.mark.parametrize("text", [
    '{"type": "HEARTBEAT", "requestId": "\\ud800"}',
    '{"type": "HEART\\udc00BEAT"}',
])
def test_lone_surrogate_is_refused_or_can_be_echoed_back(text):
    try:
        message = decode(text)
    except ProtocolError as error:
        assert error.code == ErrorCode.INVALID_MESSAGE
        return
    error_data = encode_data({"code": "UNKNOWN_TYPE", "error": "unknown", "requestType": message.type})
    frame = encode("ERROR", error_data, seq=1, timestamp=TIMESTAMP, request_id=message.request_id)
    frame.encode("utf-8")


def test_a_lone_surrogate_in_the_data_is_refused_with_the_request_id_and_type_it_came_with():
    error = decode_error('{"type": "subscribe", "requestId": "r7", "data": {"symbols": ["\\ud800"]}}')
    assert (error.code, error.request_id, error.request_type) == (ErrorCode.INVALID_MESSAGE, "r7", "SUBSCRIBE")


# encode -------------------------------------------------------------------


def test_encode_builds_a_parseable_envelope_with_every_header_field():
    frame = json.loads(encode("QUOTE_RESPONSE", '{"quotes":[]}', seq=3, timestamp=TIMESTAMP, request_id="c-17"))
    assert frame == {
        "type": "QUOTE_RESPONSE",
        "id": frame["id"],
        "seq": 3,
        "timestamp": TIMESTAMP,
        "requestId": "c-17",
        "data": {"quotes": []},
    }
    assert isinstance(frame["id"], str) and frame["id"]


def test_encode_without_request_id_leaves_the_field_out():
    frame = json.loads(encode("HEARTBEAT", "{}", seq=1, timestamp=TIMESTAMP))
    assert "requestId" not in frame
    assert frame["data"] == {}


def test_encode_accepts_null_data():
    assert json.loads(encode("X", "null", seq=1, timestamp=TIMESTAMP))["data"] is None


@pytest.mark.parametrize("request_id", [
    'say "hi"',
    "back\\slash",
    "a/b</script>",
    "caf\u00e9 \u65e5\u672c \U0001f4c8",
    "line\nbreak\ttab",
    "\u2028\u2029",
    "",
])
def test_encode_escapes_request_id_so_it_round_trips(request_id):
    frame = json.loads(encode("HEARTBEAT", "{}", seq=1, timestamp=TIMESTAMP, request_id=request_id))
    assert frame["requestId"] == request_id


def test_request_id_survives_decode_then_encode():
    message = decode(json.dumps({"type": "heartbeat", "requestId": 'q"\u00e9\\'}))
    frame = json.loads(encode(message.type, "{}", seq=1, timestamp=TIMESTAMP, request_id=message.request_id))
    assert frame["requestId"] == 'q"\u00e9\\'
    assert frame["type"] == "HEARTBEAT"


def test_encode_gives_every_frame_a_new_id():
    ids = {json.loads(encode("X", "{}", seq=n, timestamp=TIMESTAMP))["id"] for n in range(100)}
    assert len(ids) == 100


def test_new_message_ids_are_unique():
    assert len({new_message_id() for _ in range(1000)}) == 1000


# encode_data ----------------------------------------------------------------


def test_encode_data_produces_json_that_parses_back():
    data = {"symbol": "AAPL", "price": 101.25, "quotes": [1, None, True], "name": "Caf\u00e9 / Co"}
    assert json.loads(encode_data(data)) == data


def test_encode_data_keeps_non_ascii_and_slashes_unescaped():
    assert encode_data({"s": "\u00e9/x"}) == '{"s":"\u00e9/x"}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_data_refuses_non_finite_numbers(value):
    with pytest.raises((ValueError, OverflowError)):
        encode_data({"price": value})


def test_encode_data_refuses_nan_nested_in_a_list():
    with pytest.raises((ValueError, OverflowError)):
        encode_data({"quotes": [{"price": 1.0}, {"price": float("nan")}]})


# iso_timestamp ---------------------------------------------------------------

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.mark.parametrize("epoch_s, expected", [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1_764_126_000.0, "2025-11-26T03:00:00.000Z"),
    (1_764_126_000.123, "2025-11-26T03:00:00.123Z"),
    (1_764_126_000.5, "2025-11-26T03:00:00.500Z"),
    (1_764_126_000.007, "2025-11-26T03:00:00.007Z"),
    (1_764_126_059.999, "2025-11-26T03:00:59.999Z"),
])
def test_iso_timestamp_has_exactly_three_fractional_digits_and_z(epoch_s, expected):
    assert iso_timestamp(epoch_s) == expected
    assert ISO.match(iso_timestamp(epoch_s))


@pytest.mark.parametrize("epoch_s, expected", [
    (1_764_126_000.9999, "2025-11-26T03:00:00.999Z"),
    (1_764_126_059.9996, "2025-11-26T03:00:59.999Z"),
    (1_764_126_000.1239, "2025-11-26T03:00:00.123Z"),
    (0.0009, "1970-01-01T00:00:00.000Z"),
])
def test_iso_timestamp_truncates_instead_of_rounding_up(epoch_s, expected):
    assert iso_timestamp(epoch_s) == expected


def test_iso_timestamp_is_exact_for_every_millisecond_of_a_second():
    base = 1_764_126_000
    for ms in range(1000):
        assert iso_timestamp((base * 1000 + ms) / 1000).endswith(f".{ms:03d}Z")


# codes ------------------------------------------------------------------------


def test_close_codes_match_the_protocol_page():
    assert {code.name: int(code) for code in CloseCode} == {
        "GOING_AWAY": 1001,
        "INVALID_PAYLOAD": 1007,
        "POLICY_VIOLATION": 1008,
        "TOO_LARGE": 1009,
        "TRY_AGAIN_LATER": 1013,
        "SLOW_CONSUMER": 4008,
        "UNAUTHORIZED": 4401,
        "IDLE_TIMEOUT": 4408,
        "TOO_MANY": 4429,
    }


def test_error_codes_are_the_protocol_strings():
    assert {str(code) for code in ErrorCode} == {
        "INVALID_MESSAGE", "UNKNOWN_TYPE", "BAD_REQUEST", "UNAUTHORIZED", "FORBIDDEN",
        "NOT_FOUND", "RATE_LIMITED", "LIMIT_EXCEEDED", "INTERNAL", "UNAVAILABLE",
    }
    assert json.loads(encode_data({"code": ErrorCode.NOT_FOUND})) == {"code": "NOT_FOUND"}


def test_protocol_error_keeps_code_message_and_request_type():
    error = ProtocolError(ErrorCode.BAD_REQUEST, "quantity must be positive", "SUBMIT_ORDER")
    assert (error.code, error.message, error.request_type) == ("BAD_REQUEST", "quantity must be positive",
                                                               "SUBMIT_ORDER")
    assert str(error) == "quantity must be positive"


def test_a_lone_surrogate_as_is_in_the_text_is_refused_like_an_escaped_one():
    """SockJS hands over text decoded from its JSON frame, where a client's "\\udcff" is already one character."""
    lone = "\udcff"
    assert decode_error('{"type": "HEARTBEAT", "requestId": "%s"}' % lone).request_id is None
    error = decode_error('{"type": "SUBSCRIBE", "requestId": "r8", "data": {"symbols": ["%s"]}}' % lone)
    assert (error.code, error.request_id) == (ErrorCode.INVALID_MESSAGE, "r8")
