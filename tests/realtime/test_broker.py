"""The in-memory broker: bytes only, asynchronous delivery in publish order per channel, isolation from failures."""

import asyncio
import logging

import pytest

from realtime.broker import Broker, InMemoryBroker


def collect(broker, channel):
    received = []
    broker.subscribe(channel, lambda name, message: received.append((name, message)))
    return received


def test_publish_returns_before_any_handler_runs():
    broker = InMemoryBroker()
    received = collect(broker, "ticks")
    broker.publish("ticks", b"1")
    assert received == []
    assert broker.drain() == 1
    assert received == [("ticks", b"1")]


def test_messages_arrive_in_publish_order_and_stay_on_their_channel():
    broker = InMemoryBroker()
    ticks, user = collect(broker, "ticks"), collect(broker, "user:1")
    for n in range(3):
        broker.publish("ticks", str(n).encode())
    broker.publish("user:1", b"fill")
    broker.publish("user:2", b"someone else's fill")
    broker.drain()
    assert [message for _, message in ticks] == [b"0", b"1", b"2"]
    assert user == [("user:1", b"fill")]


@pytest.mark.parametrize("message", ["text", {"symbol": "AAPL"}, 7, bytearray(b"x")])
def test_only_bytes_may_be_published(message):
    broker = InMemoryBroker()
    with pytest.raises(TypeError, match="carries bytes"):
        broker.publish("ticks", message)


def test_every_handler_of_the_channel_gets_each_message():
    broker = InMemoryBroker()
    first, second = collect(broker, "ticks"), collect(broker, "ticks")
    broker.publish("ticks", b"x")
    broker.drain()
    assert first == second == [("ticks", b"x")]


def test_cancelled_subscription_gets_nothing_more_and_cancelling_twice_is_harmless():
    broker = InMemoryBroker()
    kept = collect(broker, "ticks")
    cancelled = []
    subscription = broker.subscribe("ticks", lambda name, message: cancelled.append(message))
    broker.publish("ticks", b"1")
    broker.drain()
    subscription.cancel()
    subscription.cancel()
    broker.publish("ticks", b"2")
    broker.drain()
    assert [message for _, message in kept] == [b"1", b"2"]
    assert cancelled == [b"1"]


def test_a_failing_handler_is_logged_and_does_not_stop_the_others(caplog):
    broker = InMemoryBroker()

    def broken(name, message):
        raise RuntimeError("boom")

    broker.subscribe("ticks", broken)
    received = collect(broker, "ticks")
    broker.publish("ticks", b"1")
    with caplog.at_level(logging.ERROR, logger="realtime.broker"):
        broker.drain()
    assert received == [("ticks", b"1")]
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


def test_a_handler_may_cancel_itself_while_being_delivered_to():
    broker = InMemoryBroker()
    received, holder = [], {}

    def once(name, message):
        received.append(message)
        holder["subscription"].cancel()

    holder["subscription"] = broker.subscribe("ticks", once)
    broker.publish("ticks", b"1")
    broker.publish("ticks", b"2")
    broker.drain()
    assert received == [b"1"]


def test_the_running_broker_delivers_on_the_next_turn_of_the_loop():
    async def scenario():
        broker = InMemoryBroker()
        await broker.start()
        received = collect(broker, "ticks")
        broker.publish("ticks", b"1")
        assert received == []
        await asyncio.sleep(0)
        assert received == [("ticks", b"1")]
        await broker.stop()

    asyncio.run(scenario())


def test_what_a_handler_publishes_is_delivered_on_a_later_turn_not_inside_the_current_one():
    async def scenario():
        broker = InMemoryBroker()
        await broker.start()
        order = []

        def echo(name, message):
            order.append(message)
            if message == b"ping":
                broker.publish("ticks", b"pong")

        broker.subscribe("ticks", echo)
        broker.publish("ticks", b"ping")
        await asyncio.sleep(0)
        assert order == [b"ping"]
        await asyncio.sleep(0)
        assert order == [b"ping", b"pong"]
        await broker.stop()

    asyncio.run(scenario())


def test_a_stopped_broker_drops_what_it_had_not_delivered():
    async def scenario():
        broker = InMemoryBroker()
        await broker.start()
        received = collect(broker, "ticks")
        broker.publish("ticks", b"late")
        await broker.stop()
        await asyncio.sleep(0)
        return received

    assert asyncio.run(scenario()) == []


def test_the_broker_contract_cannot_be_instantiated_without_an_implementation():
    with pytest.raises(TypeError):
        Broker()
