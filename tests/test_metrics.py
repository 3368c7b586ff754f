"""The per-second metrics: ring-buffer arithmetic on a fake clock, and the figures over HTTP after real traffic."""

import asyncio
import re

import pytest
import ujson

from domain.clock import FakeClock
from services.metrics import BUCKETS_MS, Histogram, Metrics, Ring, quantile

ZERO = {"messagesIn": 0, "messagesOut": 0, "messagesFailed": 0, "errors": 0, "slowConsumerCloses": 0}


def counters(**moved):
    return {**ZERO, **moved}


def test_ring_keeps_only_the_last_size_seconds_and_overwrites_on_wrap_around():
    ring = Ring(4)
    for second in range(100, 106):
        ring.put(second, second * 10)
    assert list(ring.between(0, 105)) == [(102, 1020), (103, 1030), (104, 1040), (105, 1050)]
    assert ring.get(101) is None  # its slot now holds 105
    assert list(ring.between(104, 105)) == [(104, 1040), (105, 1050)]


def test_histogram_counts_each_observation_in_the_first_bucket_at_or_above_it():
    histogram = Histogram()
    for ms in (0.01, 0.05, 0.3, 7.0, 99999.0):
        histogram.observe(ms)
    assert histogram.count == 5 and histogram.sum_ms == pytest.approx(100006.36)
    cumulative = dict(histogram.cumulative())
    assert cumulative[0.05] == 2 and cumulative[0.5] == 3 and cumulative[10.0] == 4 and cumulative[10000.0] == 4
    assert histogram.take() is not None and histogram.take() is None  # taken once: this second starts afresh
    assert histogram.count == 5  # the cumulative counts (for /metrics) stay


def test_quantile_interpolates_inside_the_bucket_like_prometheus():
    counts = [0] * (len(BUCKETS_MS) + 1)
    counts[BUCKETS_MS.index(10.0)] = 100  # 100 observations in (5, 10]
    assert quantile(0.5, counts) == pytest.approx(7.5)
    assert quantile(0.99, counts) == pytest.approx(9.95)
    assert quantile(0.5, [0] * len(counts)) is None
    counts[-1] = 1000  # most of them beyond the last bound: reported as that bound
    assert quantile(0.99, counts) == BUCKETS_MS[-1]


def test_sample_turns_cumulative_counters_into_per_second_rates():
    clock = FakeClock(1000.0)
    metrics = Metrics(clock=clock, window_s=60)
    clock.advance(1)
    metrics.sample(counters(messagesIn=50, messagesOut=500), {"orders": 2})  # counted from zero
    clock.advance(1)
    metrics.sample(counters(messagesIn=60, messagesOut=520, messagesFailed=5, errors=2), {"orders": 3})
    clock.advance(2)  # a late timer: two seconds' worth, divided by two
    metrics.sample(counters(messagesIn=80, messagesOut=560, messagesFailed=5, errors=2, slowConsumerCloses=1),
                   {"orders": 1, "market-data": 4})
    series = metrics.series()
    assert series["seconds"] == [1001, 1002, 1004]
    assert series["messagesInPerSecond"] == [50.0, 10.0, 10.0]
    assert series["messagesOutPerSecond"] == [500.0, 20.0, 20.0]
    assert series["sendSuccessRate"] == [1.0, 0.8, 1.0]
    assert series["errorRate"] == [0.0, 0.2, 0.0]
    assert series["slowConsumerCloses"] == [0, 0, 1]
    assert series["connections"] == {"market-data": [0, 0, 4], "orders": [2, 3, 1]}
    assert metrics.series(since=1002)["seconds"] == [1004]  # only what is new


def test_percentiles_are_per_second_and_by_message_type_with_an_all_types_line():
    clock = FakeClock(2000.0)
    metrics = Metrics(clock=clock, window_s=60)
    for _ in range(95):
        metrics.response_time("SUBSCRIBE", 0.2)
    for _ in range(5):
        metrics.response_time("SUBMIT_ORDER", 400.0)
    metrics.order_ack.observe(3.0, 4)
    metrics.fanout_delay.observe(20.0, 10)
    clock.advance(1)
    metrics.sample(ZERO, {})
    clock.advance(1)
    metrics.sample(ZERO, {})  # a quiet second: no percentile at all, not zero
    series = metrics.series()
    response = series["responseTimeMs"]
    assert set(response) == {"ALL", "SUBSCRIBE", "SUBMIT_ORDER"}
    assert response["SUBSCRIBE"]["p50"][0] == pytest.approx(0.175)
    assert response["SUBMIT_ORDER"]["p99"][0] == pytest.approx(497.5)  # all in (250, 500]: 250 + 0.99 x 250
    assert response["ALL"]["p50"][0] < 0.25 and response["ALL"]["p99"][0] > 250  # 5 % are slow
    assert response["ALL"]["p50"][1] is None
    assert series["orderAcksPerSecond"] == [4.0, 0.0]
    assert series["orderAckMs"]["p50"][0] == pytest.approx(3.75)  # in (2.5, 5]
    assert 10 < series["fanoutDelayMs"]["p99"][0] <= 25


def test_the_window_wraps_around_and_never_grows():
    clock = FakeClock(5000.0)
    metrics = Metrics(clock=clock, window_s=10)
    for second in range(1, 26):
        clock.advance(1)
        metrics.sample(counters(messagesIn=second * 3), {})
    series = metrics.series()
    assert series["seconds"] == list(range(5016, 5026)) and series["messagesInPerSecond"] == [3.0] * 10
    assert len(metrics._ring._slots) == 10


# over HTTP, after real traffic -------------------------------------------------------------------------------



async def _traffic(ws, make_user, services):
    """A student who subscribes to quotes and places two orders; returns the student's token."""
    user, token = make_user("trader")
    market = await ws("/ws/market-data", token=token)
    await market.send("SUBSCRIBE", {"symbols": ["NVTX"], "updateInterval": 100}, request_id="s")
    await market.wait_for("REAL_TIME_UPDATE")
    orders = await ws("/ws/orders", token=token)
    await orders.expect("ACTIVE_ORDERS")
    pid = services.storage.portfolio_ids_of(str(user.id))[0]
    for n in range(2):
        await orders.send("SUBMIT_ORDER", {"portfolioId": pid, "symbol": "NVTX", "side": "BUY",
                                           "orderType": "LIMIT", "limitPrice": 1.0, "quantity": 1}, request_id=n)
        await orders.wait_for("ORDER_SUBMITTED")
    await market.send("NO_SUCH_TYPE")
    await market.wait_for("ERROR")
    return token


@pytest.mark.gen_test(timeout=30)
async def test_prometheus_metrics_carry_the_three_histograms_with_counts_after_traffic(
        ws, make_user, services, http_client, base_url):
    await _traffic(ws, make_user, services)
    text = (await http_client.fetch(base_url + "/metrics")).body.decode()
    assert "# TYPE stockquest_response_seconds histogram" in text
    assert re.search(r'stockquest_response_seconds_count\{type="SUBMIT_ORDER"\} 2\.0', text)
    assert re.search(r'stockquest_response_seconds_count\{type="UNKNOWN"\} 1\.0', text)  # not its own label
    assert "NO_SUCH_TYPE" not in text
    assert re.search(r'stockquest_response_seconds_bucket\{le="\+Inf",type="SUBSCRIBE"\} 1\.0', text)
    assert re.search(r"stockquest_order_ack_seconds_count 2\.0", text)
    fanout = re.search(r"stockquest_fanout_delay_seconds_count (\d+)\.0", text)
    assert fanout and int(fanout.group(1)) >= 1


@pytest.mark.gen_test(timeout=30)
async def test_api_metrics_gives_teachers_the_last_seconds_and_refuses_students(
        ws, make_user, services, http_client, base_url):
    student_token = await _traffic(ws, make_user, services)
    _, teacher_token = make_user("tess", role="teacher")
    auth = {"Authorization": f"Bearer {teacher_token}"}
    for _ in range(50):  # until two seconds have been sampled since the traffic
        await asyncio.sleep(0.1)
        series = ujson.loads((await http_client.fetch(base_url + "/api/metrics", headers=auth)).body)
        if any(series["orderAckMs"]["p50"]) and len(series["seconds"]) >= 2:
            break
    assert len(series["seconds"]) >= 2 and series["window"] == 3600
    assert max(series["connections"]["market-data"]) == 1 and max(series["connections"]["orders"]) == 1
    assert sum(series["messagesInPerSecond"]) > 0 and sum(series["messagesOutPerSecond"]) > 0
    assert sum(series["orderAcksPerSecond"]) > 0 and any(series["orderAckMs"]["p99"])
    assert any(value is not None for value in series["responseTimeMs"]["SUBMIT_ORDER"]["p99"])
    last = series["seconds"][-1]
    newer = ujson.loads((await http_client.fetch(base_url + f"/api/metrics?since={last}", headers=auth)).body)
    assert all(second > last for second in newer["seconds"])
    refused = await http_client.fetch(base_url + "/api/metrics", headers={"Authorization": f"Bearer {student_token}"},
                                      raise_error=False)
    assert refused.code == 403 and ujson.loads(refused.body)["code"] == "FORBIDDEN"
    bad = await http_client.fetch(base_url + "/api/metrics?since=nan", headers=auth, raise_error=False)
    assert bad.code == 400
