"""Publish/subscribe: bytes on named channels, between the parts of this process now and between processes later."""

import abc
import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable

__all__ = ["Broker", "BrokerUnavailable", "InMemoryBroker", "Subscription", "Handler"]

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]
"""Called with (channel, message) for each message delivered."""


class BrokerUnavailable(Exception):
    """`start()` could not reach the broker (its message names where it looked): the server cannot start."""


class Subscription:
    """One handler's subscription to one channel; `cancel()` stops its deliveries (calling it twice is harmless)."""

    __slots__ = ("_cancel", "channel", "handler")

    def __init__(self, channel: str, handler: Handler, cancel: Callable[["Subscription"], None]):
        self.channel, self.handler, self._cancel = channel, handler, cancel

    def cancel(self) -> None:
        self._cancel(self)


class Broker(abc.ABC):
    """Broker is responsible for PUB/SUB mechanics: carrying each message published on a channel to every handler
    subscribed to that channel, in this process and, for a broker on another machine, in every other one.

    The whole contract, which a Redis broker (PUBLISH, and SUBSCRIBE on a connection of its own) can keep:

    - Messages are `bytes`; the broker never looks inside them. Anything else is a TypeError.
    - `publish` never blocks and never runs a handler: delivery is asynchronous, on the event loop, one
      message at a time. Nobody may rely on a handler having run when `publish` returns.
    - Messages one process publishes on one channel arrive in the order it published them. Nothing is
      promised across channels, nor for messages published before a subscription or after `stop()`.
    - A handler that raises is logged; the channel's other handlers still get the message.
    - `start()` (inside the running loop) before messages flow, raising BrokerUnavailable when the broker cannot
      be reached; `stop()` at shutdown drops what is undelivered.

    What every broker shares lives here: this process's handlers by channel (`subscribe`, with hooks for the
    first and the last handler of a channel) and delivery to them (`_deliver`).
    """

    def __init__(self):
        self._handlers: dict[str, list[Subscription]] = defaultdict(list)

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    def publish(self, channel: str, message: bytes) -> None: ...

    @property
    def connected(self) -> bool:
        """Whether messages flow now both ways (a remote broker's connections are up)."""
        return True

    async def confirmed(self, channel: str) -> None:  # noqa: B027 (in one process there is nothing to wait for)
        """Return once what others publish on `channel` reaches this process's handlers (a remote broker subscribes
        asynchronously: before it has, a publication may miss them)."""

    def subscribe(self, channel: str, handler: Handler) -> Subscription:
        """Deliver `channel`'s messages to `handler` until the subscription is cancelled."""
        subscription = Subscription(channel, handler, self._unsubscribe)
        first = channel not in self._handlers
        self._handlers[channel].append(subscription)
        if first:
            self._channel_opened(channel)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        handlers = self._handlers.get(subscription.channel)
        if handlers and subscription in handlers:
            handlers.remove(subscription)
            if not handlers:
                del self._handlers[subscription.channel]
                self._channel_closed(subscription.channel)

    def _channel_opened(self, channel: str) -> None:  # noqa: B027 (a hook: the in-memory broker needs none)
        """The first handler of `channel` in this process came (a remote broker subscribes to it)."""

    def _channel_closed(self, channel: str) -> None:  # noqa: B027 (a hook, as above)
        """The last handler of `channel` in this process went."""

    def _deliver(self, channel: str, message: bytes) -> None:
        """One message to each of the channel's handlers; a handler that raises is logged, the others still run."""
        for subscription in list(self._handlers.get(channel, ())):
            try:
                subscription.handler(channel, message)
            except Exception:
                log.exception("broker handler failed", extra={"channel": channel})

    @staticmethod
    def _check_bytes(message) -> None:
        if not isinstance(message, bytes):
            raise TypeError(f"a broker carries bytes, not {type(message).__name__}")


class InMemoryBroker(Broker):
    """The default broker: one process, delivering on the next turn of the event loop like a remote one would.

    Asynchronous on purpose (encode/broadcaster's memory backend is too): code that works on it does not come to
    depend on a handler running inside `publish`, which no remote broker could give. `drain()` delivers what is
    queued at once; the loop calls it, and so may a test that runs without a loop.
    """

    def __init__(self):
        super().__init__()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._schedule()

    async def stop(self) -> None:
        self._loop = None
        self._queue.clear()

    def publish(self, channel: str, message: bytes) -> None:
        self._check_bytes(message)
        self._queue.append((channel, message))
        self._schedule()

    def _schedule(self) -> None:
        if self._loop is not None and self._queue and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._deliver_scheduled)

    def _deliver_scheduled(self) -> None:
        self._scheduled = False
        if self._loop is not None:
            self.drain(len(self._queue))  # what handlers publish meanwhile waits for the next turn of the loop
            self._schedule()

    def drain(self, limit: int | None = None) -> int:
        """Deliver queued messages oldest first, up to `limit` (default: until none is left); returns how many."""
        delivered = 0
        while self._queue and (limit is None or delivered < limit):
            self._deliver(*self._queue.popleft())
            delivered += 1
        return delivered
