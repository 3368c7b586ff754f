"""The in-memory broker: synchronous delivery per channel, cancellation, and isolation from failing subscribers."""

import logging

import pytest

from realtime.pubsub import Broker, InMemoryBroker


def test_published_message_reaches_every_subscriber_of_the_channel_in_order():
    broker = InMemoryBroker()
    received = []
    broker.subscribe("ticks", lambda message: received.append(("first", message)))
    broker.subscribe("ticks", lambda message: received.append(("second", message)))
    assert broker.publish("ticks", {"symbol": "AAPL"}) == 2
    assert received == [("first", {"symbol": "AAPL"}), ("second", {"symbol": "AAPL"})]


def test_messages_stay_on_their_channel():
    broker = InMemoryBroker()
    ticks, user = [], []
    broker.subscribe("ticks", ticks.append)
    broker.subscribe("user:1", user.append)
    broker.publish("user:1", "fill")
    broker.publish("user:2", "other user's fill")
    assert ticks == []
    assert user == ["fill"]


def test_publishing_to_an_empty_channel_reaches_nobody():
    assert InMemoryBroker().publish("nobody", 1) == 0


def test_messages_arrive_in_publish_order():
    broker = InMemoryBroker()
    received = []
    broker.subscribe("ticks", received.append)
    for n in range(5):
        broker.publish("ticks", n)
    assert received == [0, 1, 2, 3, 4]


def test_cancelled_subscription_gets_nothing_more():
    broker = InMemoryBroker()
    kept, cancelled = [], []
    broker.subscribe("ticks", kept.append)
    subscription = broker.subscribe("ticks", cancelled.append)
    broker.publish("ticks", 1)
    subscription.cancel()
    assert broker.publish("ticks", 2) == 1
    assert kept == [1, 2]
    assert cancelled == [1]


def test_cancelling_twice_is_harmless():
    broker = InMemoryBroker()
    subscription = broker.subscribe("ticks", lambda message: None)
    subscription.cancel()
    subscription.cancel()
    assert broker.publish("ticks", 1) == 0


def test_the_same_callback_subscribed_twice_is_cancelled_one_handle_at_a_time():
    broker = InMemoryBroker()
    received = []
    first = broker.subscribe("ticks", received.append)
    broker.subscribe("ticks", received.append)
    first.cancel()
    broker.publish("ticks", "x")
    assert received == ["x"]


def test_a_failing_subscriber_is_logged_and_does_not_stop_the_others(caplog):
    broker = InMemoryBroker()
    received = []

    def broken(message):
        raise RuntimeError("boom")

    broker.subscribe("ticks", broken)
    broker.subscribe("ticks", received.append)
    with caplog.at_level(logging.ERROR, logger="realtime.pubsub"):
        assert broker.publish("ticks", 1) == 2
    assert received == [1]
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


def test_subscribing_during_delivery_takes_effect_from_the_next_message():
    broker = InMemoryBroker()
    late = []

    def subscribe_another(message):
        if message == 1:
            broker.subscribe("ticks", late.append)

    broker.subscribe("ticks", subscribe_another)
    broker.publish("ticks", 1)
    broker.publish("ticks", 2)
    assert late == [2]


def test_a_subscriber_may_cancel_itself_while_being_delivered_to():
    broker = InMemoryBroker()
    received = []
    holder = {}

    def once(message):
        received.append(message)
        holder["subscription"].cancel()

    holder["subscription"] = broker.subscribe("ticks", once)
    broker.publish("ticks", 1)
    broker.publish("ticks", 2)
    assert received == [1]


def test_subscription_remembers_its_channel_and_callback():
    broker = InMemoryBroker()
    subscription = broker.subscribe("user:7", print)
    assert (subscription.channel, subscription.callback) == ("user:7", print)


def test_the_broker_interface_has_no_default_implementation():
    with pytest.raises(NotImplementedError):
        Broker().subscribe("ticks", print)
    with pytest.raises(NotImplementedError):
        Broker().publish("ticks", 1)
