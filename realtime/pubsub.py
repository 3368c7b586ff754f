"""Publish/subscribe: the seam through which market ticks and per-user events reach connections."""

import logging
from collections import defaultdict
from typing import Any, Callable

__all__ = ["Broker", "InMemoryBroker", "Subscription"]

log = logging.getLogger(__name__)


class Subscription:
    """A handle that stops one callback's deliveries when cancelled."""

    def __init__(self, broker: "InMemoryBroker", channel: str, callback: Callable[[Any], None]):
        self._broker, self.channel, self.callback = broker, channel, callback

    def cancel(self) -> None:
        self._broker._unsubscribe(self)


class Broker:
    """Broker is responsible for PUB/SUB mechanics: delivering each published message to its channel's subscribers.

    A broker on another machine (Redis, Kafka) implements the same two methods; callers
    never learn which one they have.
    """

    def subscribe(self, channel: str, callback: Callable[[Any], None]) -> Subscription:
        raise NotImplementedError

    def publish(self, channel: str, message: Any) -> int:
        raise NotImplementedError


class InMemoryBroker(Broker):
    """The default broker: delivers synchronously, in subscription order, within this process."""

    def __init__(self):
        self._subscribers: dict[str, list[Subscription]] = defaultdict(list)

    def subscribe(self, channel, callback):
        subscription = Subscription(self, channel, callback)
        self._subscribers[channel].append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.channel)
        if subscribers and subscription in subscribers:
            subscribers.remove(subscription)
            if not subscribers:
                del self._subscribers[subscription.channel]

    def publish(self, channel, message):
        """Deliver to every subscriber; one failing subscriber is logged and never stops the others."""
        subscribers = list(self._subscribers.get(channel, ()))
        for subscription in subscribers:
            try:
                subscription.callback(message)
            except Exception:
                log.exception("subscriber failed", extra={"channel": channel})
        return len(subscribers)
