"""Engine leadership on a real redis-server: one holder at a time, fencing tokens that only grow, takeover after
the holder stops renewing, and a holder that loses Redis giving up before its lease can have expired."""

import asyncio
import time

from services.cluster.lease import EngineLease, LeaderInfo, Leadership


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario, 30))


async def until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def lease(server, node, ttl_ms=600):
    return EngineLease(server.url, node=node, address=f"http://{node}:8080", ttl_ms=ttl_ms)


def test_only_one_candidate_holds_the_lease_and_the_next_token_is_higher(redis_server):
    async def scenario():
        a, b = lease(redis_server, "a"), lease(redis_server, "b")
        first = await a.try_acquire()
        assert first is not None and await b.try_acquire() is None
        assert await a.leader() == await b.leader() == LeaderInfo("a", first, "http://a:8080")
        assert await a.renew(first) and not await b.renew(first)  # b cannot renew a's lease with a's token
        await a.release(first)
        second = await b.try_acquire()
        assert second == first + 1
        assert not await a.renew(first)  # a's old token is worth nothing now
        await a.close()
        await b.close()
    run(scenario())


def test_an_expired_lease_goes_to_the_next_candidate_with_a_higher_token(redis_server):
    async def scenario():
        a, b = lease(redis_server, "a", ttl_ms=200), lease(redis_server, "b", ttl_ms=200)
        first = await a.try_acquire()
        await asyncio.sleep(0.25)  # a did not renew
        second = await b.try_acquire()
        assert second == first + 1 and not await a.renew(first)
        await a.close()
        await b.close()
    run(scenario())


def test_a_standby_takes_over_within_the_ttl_when_the_leader_stops_renewing(redis_server):
    events = []

    async def scenario():
        leader = Leadership(lease(redis_server, "a"), on_elected=lambda t: events.append(("a", t)),
                            on_deposed=lambda why: events.append(("a lost", why)))
        standby = Leadership(lease(redis_server, "b"), on_elected=lambda t: events.append(("b", t)),
                             on_deposed=lambda why: events.append(("b lost", why)))
        leader.start()
        await until(lambda: leader.is_leader)
        standby.start()
        await asyncio.sleep(1.0)  # several renewals: the lease stays where it is
        assert leader.is_leader and not standby.is_leader
        leader._task.cancel()  # the leader hangs (no renewal, no release), as a kill -9 would leave it
        stopped = time.monotonic()
        await until(lambda: standby.is_leader)
        took = time.monotonic() - stopped
        assert took < 0.6 + 0.3, took  # the ttl, plus at most one retry interval
        assert standby.token == leader.token + 1
        await standby.stop()
        leader.token = None
        await leader.stop()
    run(scenario())
    assert [e[0] for e in events] == ["a", "b"]


def test_a_leader_that_cannot_reach_redis_gives_up_before_its_lease_expires(redis_server):
    events = []

    async def scenario():
        leader = Leadership(lease(redis_server, "a"), on_elected=lambda t: events.append(("elected", t)),
                            on_deposed=lambda why: events.append(("deposed", time.monotonic())))
        leader.start()
        await until(lambda: leader.is_leader)
        renewed = leader._renewed_at
        redis_server.stop()
        await until(lambda: not leader.is_leader, timeout_s=5)
        deposed_at = events[-1][1]
        assert deposed_at - renewed < 0.6, "gave up only after the lease could have gone to another process"
        redis_server.start()  # a new, empty Redis: the candidate campaigns again and wins
        await until(lambda: leader.is_leader, timeout_s=5)
        await leader.stop()
    run(scenario())
    assert [e[0] for e in events] == ["elected", "deposed", "elected"]


def test_a_clean_stop_releases_the_lease_at_once(redis_server):
    async def scenario():
        leader = Leadership(lease(redis_server, "a", ttl_ms=30_000), on_elected=lambda t: None,
                            on_deposed=lambda why: None)
        leader.start()
        await until(lambda: leader.is_leader)
        await leader.stop()
        other = lease(redis_server, "b", ttl_ms=30_000)
        assert await other.try_acquire() is not None  # no 30 s wait for the old lease to expire
        await other.close()
    run(scenario())


def test_tokens_stay_above_what_storage_has_seen_after_redis_lost_its_counter(redis_server):
    async def scenario():
        a = lease(redis_server, "a")
        assert await a.try_acquire(floor=41) == 42  # a fresh Redis would have said 1
        await a.release(42)
        assert await a.try_acquire(floor=10) == 43
        await a.close()
    run(scenario())


def test_a_quick_redis_restart_does_not_depose_the_leader(redis_server):
    """Redis restarted empty (no persistence): the leader takes its lease back with the same token at its next
    renewal, since no later token was ever issued; a candidate that campaigns meanwhile does not get it."""
    events = []

    async def scenario():
        leader = Leadership(lease(redis_server, "a", ttl_ms=3000), on_elected=lambda t: events.append(("a", t)),
                            on_deposed=lambda why: events.append(("a lost", why)))
        leader.start()
        await until(lambda: leader.is_leader)
        token = leader.token
        redis_server.stop()
        redis_server.start()
        renewed = leader._renewed_at
        await until(lambda: leader._renewed_at > renewed, timeout_s=5)
        other = lease(redis_server, "b", ttl_ms=3000)
        assert await other.try_acquire() is None
        assert leader.is_leader and leader.token == token
        assert (await other.leader()).node == "a"
        await other.close()
        await leader.stop()
    run(scenario())
    assert [e[0] for e in events] == ["a"]
