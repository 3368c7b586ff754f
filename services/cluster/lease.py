"""Engine leadership: a Redis lease with a fencing token, so that exactly one process at a time runs the engine.

The lease is one Redis key holding the leader's node id, its fencing token and the URL its HTTP server answers on,
with a time to live. A candidate takes it only when the key is absent, and then takes the next token from a counter
that only ever grows. The leader renews the lease well within its time to live; a leader that cannot renew in time
(it died, it lost Redis, it was paused) loses it, and a standby takes it with a higher token. The token is handed to
storage, which refuses any write carrying a lower token than the last one written (`Storage.fence`): a deposed
leader that has not yet noticed cannot change anything (Kleppmann, "How to do distributed locking").
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["EngineLease", "LeaderInfo", "Leadership"]

log = logging.getLogger(__name__)

PREFIX = "stockquest:"

# KEYS: the lease, the token counter. ARGV: node, ttl ms, url, floor. The new token, or nil when someone holds the
# lease. The token is above `floor` (the last token storage saw) even when the counter was lost with a Redis restart.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local token = redis.call('INCR', KEYS[2])
if token <= tonumber(ARGV[4]) then
  token = tonumber(ARGV[4]) + 1
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], cjson.encode({node = ARGV[1], token = token, url = ARGV[3]}), 'PX', ARGV[2])
return token
"""

# KEYS: the lease, the token counter. ARGV: node, token, ttl ms, url. 1 when the lease was still ours and is
# extended, else 0. A lease that is gone while no later token was ever issued (Redis restarted and lost both keys)
# is taken back with the same token, so a Redis restart does not depose a live leader.
_RENEW = """
local held = redis.call('GET', KEYS[1])
if not held then
  if tonumber(redis.call('GET', KEYS[2]) or '0') > tonumber(ARGV[2]) then return 0 end
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[1], cjson.encode({node = ARGV[1], token = tonumber(ARGV[2]), url = ARGV[4]}), 'PX', ARGV[3])
  return 1
end
local lease = cjson.decode(held)
if lease.node ~= ARGV[1] or tostring(lease.token) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# The start of a script that acts only while the lease (KEYS[1]) is ours (ARGV: node, token), else returns 0.
_WHILE_OURS = """
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local lease = cjson.decode(held)
if lease.node ~= ARGV[1] or tostring(lease.token) ~= ARGV[2] then return 0 end
"""

# KEYS: the lease, the key to set. ARGV: node, token, value. Sets the key only while the lease is ours.
_SAVE = _WHILE_OURS + "redis.call('SET', KEYS[2], ARGV[3])\nreturn 1\n"

# KEYS: the lease. ARGV: node, token. Deletes the lease only if it is still ours.
_RELEASE = _WHILE_OURS + "return redis.call('DEL', KEYS[1])\n"


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """Who holds the lease: its node id, its fencing token, and the URL of its HTTP server."""

    node: str
    token: int
    url: str


class EngineLease:
    """The lease's Redis operations; each raises RedisError (or OSError) when Redis cannot be reached."""

    def __init__(self, url: str, *, node: str, address: str, ttl_ms: int = 3000, prefix: str = PREFIX):
        self.node, self.address, self.ttl_ms = node, address, ttl_ms
        self._key, self._counter = prefix + "engine:lease", prefix + "engine:token"
        self._market = prefix + "engine:market"
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=max(ttl_ms / 3000, 0.2))
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._save = self._client.register_script(_SAVE)

    async def close(self) -> None:
        await self._client.aclose()

    async def try_acquire(self, floor: int = 0) -> int | None:
        """Take the lease if nobody holds it: the new fencing token (above `floor`), else None."""
        token = await self._acquire(keys=[self._key, self._counter],
                                    args=[self.node, self.ttl_ms, self.address, floor])
        return None if token is None else int(token)

    async def renew(self, token: int) -> bool:
        """Extend the lease by its time to live; False when it is no longer ours (it expired, or another took it)."""
        return bool(await self._renew(keys=[self._key, self._counter],
                                      args=[self.node, str(token), self.ttl_ms, self.address]))

    async def release(self, token: int) -> None:
        """Give the lease up at once (a clean shutdown), so a standby need not wait for it to expire."""
        await self._release(keys=[self._key], args=[self.node, str(token)])

    async def save_market(self, token: int, state: bytes) -> bool:
        """Keep the market's state for a standby (services.cluster.market_state); refused once the lease is lost."""
        return bool(await self._save(keys=[self._key, self._market], args=[self.node, str(token), state]))

    async def saved_market(self) -> bytes | None:
        return await self._client.get(self._market)

    async def leader(self) -> LeaderInfo | None:
        held = await self._client.get(self._key)
        if held is None:
            return None
        lease = json.loads(held)
        return LeaderInfo(lease["node"], int(lease["token"]), lease["url"])


class Leadership:
    """Runs for the life of an engine candidate: takes the lease when it is free, keeps it, and says when either
    happens.

    `floor()` is the highest token storage has seen; a new token is above it. `on_elected(token)` runs when this
    process becomes the leader; `on_deposed(reason)` when it stops being one: the renewal was refused, or it could
    not renew for `ttl * safety` (Redis unreachable), after which another process may already hold the lease. Both
    may be coroutines. A candidate retries every `ttl / 3`.
    """

    def __init__(self, lease: EngineLease, *, on_elected: Callable[[int], Awaitable[None] | None],
                 on_deposed: Callable[[str], Awaitable[None] | None], floor: Callable[[], int] = lambda: 0,
                 safety: float = 0.8,
                 monotonic: Callable[[], float] = time.monotonic):
        self.lease = lease
        self._on_elected, self._on_deposed, self._floor = on_elected, on_deposed, floor
        self._safety, self._monotonic = safety, monotonic
        self.token: int | None = None
        self._renewed_at = 0.0
        self._task: asyncio.Task | None = None
        self._stopped = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="engine leadership")

    async def stop(self) -> None:
        """Stop trying; give the lease up if held (after the caller has stopped the engine's writes)."""
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.token is not None:
            try:
                await self.lease.release(self.token)
            except (RedisError, OSError) as error:
                log.warning("engine lease not released (%s); it expires in %d ms", error, self.lease.ttl_ms)
            self.token = None
        await self.lease.close()

    async def _run(self) -> None:
        interval = self.lease.ttl_ms / 3000
        while not self._stopped.is_set():
            if self.is_leader:
                await self._keep()
            else:
                try:
                    await self._campaign()
                except (RedisError, OSError) as error:
                    log.debug("engine lease: Redis error %s", error)
                except Exception as error:  # noqa: BLE001 (the floor's storage unreachable: try again later)
                    log.warning("engine lease: cannot campaign now: %s", error)
            wait = interval
            if self.is_leader:  # wake in time to give up before the lease can have expired
                wait = max(0.0, min(interval, self._deadline() - self._monotonic()))
            await asyncio.sleep(wait)

    def _deadline(self) -> float:
        """When this leader must consider the lease lost if it has not renewed it since."""
        return self._renewed_at + self.lease.ttl_ms * self._safety / 1000

    async def _campaign(self) -> None:
        if await self.lease.leader() is not None:
            return  # held: storage (the floor) is read only when there is a lease to take
        started = self._monotonic()
        token = await self.lease.try_acquire(self._floor())
        if token is None:
            return
        self.token, self._renewed_at = token, started
        log.info("engine lease taken (fencing token %d): this process runs the engine", token)
        try:
            await _call(self._on_elected, token)
        except Exception:  # its storage cannot be opened, say: let another candidate try
            log.exception("the engine could not start here; giving the lease up")
            self.token = None
            await _call(self._on_deposed, "the engine could not start")
            await self.lease.release(token)

    async def _keep(self) -> None:
        started = self._monotonic()
        remaining = self._deadline() - started
        if remaining > 0:
            try:
                renewed = await asyncio.wait_for(self.lease.renew(self.token), remaining)
            except (RedisError, OSError, TimeoutError) as error:
                log.debug("engine lease: renewal failed (%s)", error)
            else:
                if renewed:
                    self._renewed_at = started
                    return
                await self._depose("another process holds the lease (it expired before this one renewed it)")
                return
        if self._monotonic() >= self._deadline():
            await self._depose(f"could not renew it within {self.lease.ttl_ms * self._safety:.0f} ms")

    async def _depose(self, reason: str) -> None:
        log.warning("engine lease lost: %s; this process stops running the engine", reason)
        self.token = None
        await _call(self._on_deposed, reason)


async def _call(callback, *args) -> None:
    result = callback(*args)
    if asyncio.iscoroutine(result):
        await result
