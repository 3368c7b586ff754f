"""The broker between processes: Redis PUBLISH/SUBSCRIBE, keeping the contract of `realtime.broker.Broker`.

Imported only when the server is given `--redis-url`, so that a single-process server needs no Redis client.

Delivery is at most once, as Redis pub/sub is: what is published while the connection to Redis is down, and what
others publish while this process's subscription is down, is lost (counted in `dropped`, and logged once per
outage). After a drop the broker reconnects with backoff and subscribes again to every channel that has handlers.
"""

import asyncio
import logging
from collections import deque

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .broker import Broker, BrokerUnavailable
from .urls import safe_url

__all__ = ["RedisBroker"]

log = logging.getLogger(__name__)

PREFIX = "stockquest:"
"""Put before every channel name in Redis, so that the server can share a Redis with other programs."""

BATCH = 512
"""At most this many messages go to Redis in one pipeline (one round trip)."""

MAX_QUEUED = 100_000
"""Messages waiting for the writer past this (Redis too slow to take them): the oldest are dropped and counted, as
pub/sub is at most once anyway, rather than the process growing without bound."""


class RedisBroker(Broker):
    """PUBLISH through one connection, SUBSCRIBE on another; handlers run on the event loop, one message at a time.

    `publish` only queues (what is published before `start()` is sent once started): a writer task sends the
    queue in order through one connection, so messages of one channel keep their order. A reader task reads the
    subscription connection and calls the channel's handlers.
    A channel is subscribed in Redis while it has at least one local handler.
    """

    def __init__(self, url: str, *, prefix: str = PREFIX, retry_initial_s: float = 0.1, retry_max_s: float = 5.0,
                 connect_timeout_s: float = 5.0, max_queued: int = MAX_QUEUED):
        super().__init__()
        self.url = url
        self._prefix = prefix
        self._retry_initial_s, self._retry_max_s = retry_initial_s, retry_max_s
        self._connect_timeout_s = connect_timeout_s
        self._outgoing: deque[tuple[str, bytes]] = deque()
        self._max_queued = max_queued
        self._client: aioredis.Redis | None = None
        self._pubsub = None
        self._subscribed: set[str] = set()  # channels (without the prefix) asked for on the current connection
        self._confirmed: set[str] = set()  # ... and those Redis has confirmed: it sends them what is published now
        self._wake_writer = asyncio.Event()
        self._wake_reconciler = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._dropping = False  # while the publishing connection is down, and after stop()
        self._stopping = False
        self._reader_up = False
        self.dropped = 0
        """Messages published while the writer was disconnected (or stopped) and so never sent."""
        self.reconnects = 0
        """How many times the subscription connection was lost and made again."""

    # the contract --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, or raise BrokerUnavailable naming the URL: a server must not run deaf to the other nodes."""
        self._client = aioredis.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=self._connect_timeout_s)
        try:
            await self._client.ping()
            await self._open_pubsub()
        except (RedisError, OSError) as error:
            await self._client.aclose()
            self._client = None
            raise BrokerUnavailable(f"cannot reach Redis at {safe_url(self.url)}: {error}") from None
        self._tasks = [asyncio.create_task(coroutine, name=f"redis broker {role}") for role, coroutine in (
            ("writer", self._write()), ("reader", self._read()), ("subscriptions", self._reconcile()))]
        self._wake_writer.set()  # what was published before start() (as the market's first quotes are)
        log.info("broker: Redis at %s", safe_url(self.url))

    async def stop(self) -> None:
        self._dropping, self._reader_up, self._stopping = True, False, True
        self._wake_writer.set()
        self._wake_reconciler.set()
        # Cancel until each task has ended: on Python 3.11 a cancellation that lands as redis-py's wait_for (its
        # socket timeout) completes is swallowed, and the task goes on (bench found stop() waiting for ever).
        while pending := [task for task in self._tasks if not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.5)
        self._tasks = []
        self._outgoing.clear()
        await self._close_pubsub()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def publish(self, channel: str, message: bytes) -> None:
        self._check_bytes(message)
        if self._dropping:
            self._drop(1)
            return
        if len(self._outgoing) >= self._max_queued:
            self._outgoing.popleft()
            self._drop(1)
        self._outgoing.append((channel, message))
        self._wake_writer.set()

    def _channel_opened(self, channel: str) -> None:
        if channel not in self._subscribed:
            self._wake_reconciler.set()

    def _channel_closed(self, channel: str) -> None:
        self._wake_reconciler.set()

    @property
    def connected(self) -> bool:
        return self._reader_up and not self._dropping

    async def confirmed(self, channel: str) -> None:
        while channel not in self._confirmed:
            await asyncio.sleep(0.005)

    @property
    def subscribed_channels(self) -> frozenset[str]:
        """The channels Redis has confirmed subscribing this broker to: from then on it hears what anyone publishes."""
        return frozenset(self._confirmed)

    # delivery ------------------------------------------------------------------------------------------------

    def _drop(self, count: int) -> None:
        self.dropped += count

    # the writer ----------------------------------------------------------------------------------------------

    async def _write(self) -> None:
        """Send the queue in publish order; on a lost connection drop the queue and wait for Redis to come back."""
        while not self._stopping:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            while self._outgoing and not self._stopping:
                batch = [self._outgoing.popleft() for _ in range(min(BATCH, len(self._outgoing)))]
                pipe = self._client.pipeline(transaction=False)
                for channel, message in batch:
                    pipe.publish(self._prefix + channel, message)
                try:
                    await pipe.execute()
                except (RedisError, OSError) as error:
                    log.warning("broker: lost the Redis publishing connection (%s); dropping what is published "
                                "until it is back (pub/sub is at most once)", error)
                    self._drop(len(batch))  # a batch cut short may be partly sent: at most once, never twice
                    self._dropping = True
                    self._drop(len(self._outgoing))
                    self._outgoing.clear()
                    await self._retry(self._client.ping, "publishing")
                    self._dropping = False
                    log.info("broker: %d published messages dropped so far", self.dropped)

    # the reader and the subscriptions ------------------------------------------------------------------------

    async def _open_pubsub(self) -> None:
        self._pubsub = self._client.pubsub()
        self._subscribed, self._confirmed = set(), set()
        try:
            await self._pubsub.connect()
            if self._handlers:
                await self._pubsub.subscribe(*(self._prefix + channel for channel in self._handlers))
                self._subscribed = set(self._handlers)
        except BaseException:
            await self._close_pubsub()
            raise
        self._reader_up = True

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass

    async def _read(self) -> None:
        """Hand each message to its channel's handlers; on a lost connection reconnect and subscribe again."""
        skip = len(self._prefix)
        while True:
            try:
                item = await self._pubsub.get_message(timeout=None)
            except (RedisError, OSError) as error:
                log.warning("broker: lost the Redis subscription connection (%s); reconnecting", error)
                self._reader_up = False
                await self._close_pubsub()
                await self._retry(self._open_pubsub, "subscription")
                self.reconnects += 1
                self._wake_reconciler.set()  # handlers that came or went meanwhile
                continue
            if item is None:
                continue
            kind, channel = item["type"], item["channel"].decode()[skip:]
            if kind == "message":
                self._deliver(channel, item["data"])
            elif kind == "subscribe":
                self._confirmed.add(channel)
            elif kind == "unsubscribe":
                self._confirmed.discard(channel)

    async def _reconcile(self) -> None:
        """SUBSCRIBE a channel when its first local handler comes, UNSUBSCRIBE it when its last one goes."""
        while not self._stopping:
            await self._wake_reconciler.wait()
            self._wake_reconciler.clear()
            if not self._reader_up:
                continue  # the reader subscribes to everything wanted when it reconnects
            wanted = set(self._handlers)
            add, remove = wanted - self._subscribed, self._subscribed - wanted
            try:
                if add:
                    await self._pubsub.subscribe(*(self._prefix + channel for channel in add))
                    self._subscribed |= add
                if remove:
                    await self._pubsub.unsubscribe(*(self._prefix + channel for channel in remove))
                    self._subscribed -= remove
            except (RedisError, OSError, AttributeError) as error:  # the reader notices the loss and redoes it all
                log.debug("broker: subscription change failed (%s); left to the reconnection", error)

    async def _retry(self, attempt, what: str) -> None:
        """Call `attempt` until it succeeds, waiting longer each time up to `retry_max_s`."""
        delay = self._retry_initial_s
        while True:
            await asyncio.sleep(delay)
            try:
                await attempt()
            except (RedisError, OSError) as error:
                log.debug("broker: Redis %s connection still down (%s)", what, error)
                delay = min(delay * 2, self._retry_max_s)
                continue
            log.info("broker: Redis %s connection back at %s", what, safe_url(self.url))
            return
