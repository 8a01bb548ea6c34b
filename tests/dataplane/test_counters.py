"""The counter stores, Redis and in-process, held to one contract."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid

import pytest

from dataplane.limits import (
    NANO,
    RESERVATION_TTL,
    BudgetRule,
    LimitRule,
    MemoryCounters,
    RedisCounters,
    Refusal,
    period_bounds,
    plan_for,
)
from dataplane.resp import RedisPipe
from tests.conftest import REDIS

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["memory", "redis"] if REDIS else ["memory"]


def run(coro):
    return asyncio.run(coro)


def budget_rule(amount_usd: str = "1", floor: int = 0, start: float = 0.0) -> BudgetRule:
    return BudgetRule(
        uid=uuid.uuid4().hex, id=1, organization_id=7, label="Team 'core'", amount_nano=int(float(amount_usd) * NANO),
        amount_usd=amount_usd, period="monthly", rolling=False, anchor=0.0, floor_nano=floor, floor_period_start=start,
    )


def limit_rule(metric: str, limit: int, window: int = 60) -> LimitRule:
    return LimitRule(uid=uuid.uuid4().hex, id=2, organization_id=7, label="This key", metric=metric, limit=limit, window=window)


async def store(kind: str, clock=None):
    if kind == "memory":
        return MemoryCounters(clock) if clock else MemoryCounters()
    return RedisCounters(RedisPipe(REDIS_URL), clock) if clock else RedisCounters(RedisPipe(REDIS_URL))


def plan(budgets=(), limits=(), reserve=0, now=1_000_000.0, rid=None):
    return plan_for(
        prefix="tgtest-counters:", request_id=rid or uuid.uuid4().hex,
        budgets=tuple(budgets), limits=tuple(limits), model="m", provider_id=None, reserve_nano=reserve, now=now,
    )


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_reserves_then_settles_at_the_actual_cost(kind):
    async def scenario():
        s = await store(kind)
        rule = budget_rule("1")
        a = plan([rule], reserve=NANO // 2)
        await s.admit(a, 1_000_000.0)
        b = plan([rule], reserve=NANO // 2)
        await s.admit(b, 1_000_000.0)
        with pytest.raises(Refusal) as refused:
            await s.admit(plan([rule], reserve=1), 1_000_000.0)
        assert refused.value.status == 402 and refused.value.message.startswith("Team 'core' monthly budget of $1.00")
        await s.settle(a, NANO // 10, 0)
        assert await s.spent(a.budgets[0].key) == (NANO // 10, NANO // 2)
        await s.settle(b, 0, 0)
        assert await s.spent(a.budgets[0].key) == (NANO // 10, 0)

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_starts_an_empty_counter_from_the_published_floor(kind):
    async def scenario():
        s = await store(kind)
        now = 1_000_000.0
        start, _ = period_bounds("monthly", False, 0.0, now)
        rule = budget_rule("1", floor=NANO - 10, start=start)
        with pytest.raises(Refusal):
            await s.admit(plan([rule], reserve=11, now=now), now)
        await s.admit(plan([rule], reserve=10, now=now), now)
        # A floor from another period does not apply.
        stale = budget_rule("1", floor=NANO, start=start - 1)
        await s.admit(plan([stale], reserve=10, now=now), now)

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_takes_up_a_newer_floor_on_a_counter_already_running(kind):
    """Redis came back empty and restarted from an older floor; the next snapshot's
    floor holds the spend the loss forgot, and the running counter must rise to it."""
    async def scenario():
        s = await store(kind)
        now = 1_000_000.0
        start, _ = period_bounds("monthly", False, 0.0, now)
        older = budget_rule("1", floor=NANO // 2, start=start)
        first = plan([older], reserve=10, now=now)
        await s.admit(first, now)
        await s.settle(first, 10, 0)
        assert (await s.spent(first.budgets[0].key))[0] == NANO // 2 + 10
        newer = dataclasses.replace(older, floor_nano=NANO - 100)
        with pytest.raises(Refusal):
            await s.admit(plan([newer], reserve=101, now=now), now)
        assert (await s.spent(first.budgets[0].key))[0] == NANO - 100
        # An older floor never lowers what the counter knows.
        await s.admit(plan([older], reserve=100, now=now), now)
        assert (await s.spent(first.budgets[0].key))[0] == NANO - 100

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_expires_reservations_never_settled(kind):
    async def scenario():
        s = await store(kind)
        rule = budget_rule("1")
        now = 1_000_000.0
        await s.admit(plan([rule], reserve=NANO, now=now), now)
        with pytest.raises(Refusal):
            await s.admit(plan([rule], reserve=1, now=now), now)
        later = now + RESERVATION_TTL + 1
        await s.admit(plan([rule], reserve=NANO, now=now), later)

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_admits_nothing_when_one_level_refuses(kind):
    async def scenario():
        s = await store(kind)
        roomy, tight = budget_rule("10"), budget_rule("0.000000001")
        window = limit_rule("requests", 5)
        p = plan([roomy, tight], [window], reserve=NANO)
        with pytest.raises(Refusal):
            await s.admit(p, 1_000_000.0)
        assert await s.spent(p.budgets[0].key) == (0, 0)
        # The window was not counted either: five requests still fit.
        for _ in range(5):
            await s.admit(plan([roomy], [window], reserve=1), 1_000_000.0)

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_slides_request_windows_and_says_when_to_retry(kind):
    async def scenario():
        s = await store(kind)
        rule = limit_rule("requests", 3, window=60)
        t0 = 6_000_000.0  # a window boundary
        for _ in range(3):
            await s.admit(plan(limits=[rule], now=t0 + 10), t0 + 10)
        with pytest.raises(Refusal) as refused:
            await s.admit(plan(limits=[rule], now=t0 + 20), t0 + 20)
        assert refused.value.status == 429 and 1 <= refused.value.retry_after <= 60
        # Half-way through the next window, half of the previous one still counts.
        await s.admit(plan(limits=[rule], now=t0 + 90), t0 + 90)
        with pytest.raises(Refusal):
            await s.admit(plan(limits=[rule], now=t0 + 90), t0 + 90)

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_counts_tokens_at_settlement(kind):
    async def scenario():
        s = await store(kind)
        rule = limit_rule("tokens", 100)
        now = 6_000_010.0
        first = plan(limits=[rule], now=now)
        await s.admit(first, now)
        await s.settle(first, 0, 150)
        with pytest.raises(Refusal) as refused:
            await s.admit(plan(limits=[rule], now=now), now)
        assert "100 tokens per minute" in refused.value.message

    run(scenario())


# --- the pipelined connection --------------------------------------------------------

needs_redis = pytest.mark.skipif(not REDIS, reason="talks to the Redis server")


@needs_redis
def test_it_matches_concurrent_replies_to_their_calls():
    async def scenario():
        pipe = RedisPipe(REDIS_URL)
        key = f"tgtest-pipe-{uuid.uuid4().hex}"
        results = await asyncio.gather(*(pipe.call("INCR", key) for _ in range(500)))
        assert sorted(results) == list(range(1, 501))
        echoes = await asyncio.gather(*(pipe.call("ECHO", f"m{i}") for i in range(200)))
        assert echoes == [f"m{i}".encode() for i in range(200)]
        await pipe.call("DEL", key)
        await pipe.close()

    run(scenario())


@needs_redis
def test_it_keeps_order_after_an_error_reply_and_reloads_flushed_scripts():
    async def scenario():
        pipe = RedisPipe(REDIS_URL)
        with pytest.raises(Exception, match="unknown command"):
            await pipe.call("NOSUCHCOMMAND")
        assert await pipe.call("ECHO", "after") == b"after"
        source = f"return '{uuid.uuid4().hex}'"
        first = await pipe.script(source, [], [])
        await pipe.call("SCRIPT", "FLUSH")
        assert await pipe.script(source, [], []) == first
        await pipe.close()

    run(scenario())


@needs_redis
def test_it_fails_calls_in_flight_on_a_silent_server_and_recovers():
    async def scenario():
        pipe = RedisPipe(REDIS_URL, timeout=0.4)
        blocked = asyncio.ensure_future(pipe.call("BLPOP", f"tgtest-never-{uuid.uuid4().hex}", 5))
        with pytest.raises(ConnectionError, match="did not answer"):
            await blocked
        assert await pipe.call("PING") == b"PONG"
        await pipe.close()

    run(scenario())


@needs_redis
def test_a_lingering_command_leaves_in_the_next_commands_write():
    from urllib.parse import urlparse

    from dataplane.resp import pack

    async def scenario():
        # A TCP relay in front of the real server records each write the pipe makes.
        writes: list[bytes] = []
        upstream = urlparse(REDIS_URL)

        async def relay(reader, writer):
            up_reader, up_writer = await asyncio.open_connection(upstream.hostname, upstream.port or 6379)

            async def back():
                while data := await up_reader.read(65536):
                    writer.write(data)

            replies = asyncio.ensure_future(back())
            while data := await reader.read(65536):
                writes.append(data)
                up_writer.write(data)
            replies.cancel()
            up_writer.close()

        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        netloc = upstream.netloc.rsplit("@", 1)[0] + "@" if "@" in upstream.netloc else ""
        pipe = RedisPipe(upstream._replace(netloc=f"{netloc}127.0.0.1:{port}").geturl())
        await pipe.call("PING")
        writes.clear()

        settled = asyncio.ensure_future(pipe.call("ECHO", "settle", linger=0.5))
        await asyncio.sleep(0.05)
        assert writes == []  # still waiting for company
        assert await pipe.call("ECHO", "admit") == b"admit"
        assert await settled == b"settle"
        assert writes == [pack("ECHO", "settle") + pack("ECHO", "admit")]

        writes.clear()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await pipe.call("ECHO", "alone", linger=0.05) == b"alone"
        assert loop.time() - started >= 0.05 and writes == [pack("ECHO", "alone")]
        await pipe.close()
        server.close()

    run(scenario())


def test_it_reports_an_unreachable_server_quickly():
    async def scenario():
        pipe = RedisPipe("redis://127.0.0.1:9/0", timeout=1)
        with pytest.raises(ConnectionError, match="cannot reach redis"):
            await pipe.call("PING")

    run(scenario())


def estimate(stats: str, body_bytes: int = 4096, cold: int = NANO // 10, output_nano: float = 15_000.0, max_tokens: int = 128_000):
    from dataplane.limits import Estimate

    return Estimate(stats, stats + ":org", body_bytes, cold, output_nano, max_tokens)


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_reserves_what_the_keys_recent_requests_cost_not_the_worst_case(kind):
    from dataplane.limits import DEFAULT_OUTPUT_TOKENS

    async def scenario():
        now = 1_000_000.0
        s = await store(kind, clock=lambda: now)
        rule = budget_rule("10")
        stats = f"tgtest-counters:{{o7}}:e:{uuid.uuid4().hex}:m"
        first = plan([rule], now=now)
        first.estimate = estimate(stats)
        await s.admit(first, now)
        # Nothing learned yet: the whole body at the worst case, 4,096 tokens of output (not 128,000).
        assert first.output_tokens == DEFAULT_OUTPUT_TOKENS
        assert first.held == NANO // 10 + DEFAULT_OUTPUT_TOKENS * 15_000 + 1
        first.relayed = 3_000
        await s.settle(first, 2_000_000 + 300 * 15_000, 0, (2_000_000, 300))
        second = plan([rule], now=now + 1)
        second.estimate = estimate(stats)
        await s.admit(second, now + 1)
        # Output as learned, and a quarter more.
        assert (second.held, second.output_tokens) == (2_000_000 + 375 * 15_000 + 1, 375)
        assert second.bytes_per_token == 10.0
        await s.settle(second, 0, 0)
        # The body grew by a KiB: that part at the worst case, the rest as learned.
        third = plan([rule], now=now + 2)
        third.estimate = estimate(stats, body_bytes=5120)
        await s.admit(third, now + 2)
        assert third.held == 2_000_000 + (NANO // 10) // 5 + 375 * 15_000 + 1
        await s.settle(third, 0, 0)
        # Past the prompt cache's five minutes, input is the worst case again; output stays learned.
        cold = plan([rule], now=now + 400)
        cold.estimate = estimate(stats)
        await s.admit(cold, now + 400)
        assert (cold.held, cold.output_tokens) == (NANO // 10 + 375 * 15_000 + 1, 375)

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_tops_a_reservation_up_on_every_level_or_on_none(kind):
    async def scenario():
        s = await store(kind)
        now = 1_000_000.0
        roomy, tight = budget_rule("1"), budget_rule("0.5")
        a = plan([roomy, tight], reserve=NANO // 4, now=now)
        await s.admit(a, now)
        a.held = NANO // 4
        await s.top_up(a, NANO // 8)
        assert a.held == NANO // 4 + NANO // 8
        assert [await s.spent(step.key) for step in a.budgets] == [(0, NANO // 4 + NANO // 8)] * 2
        with pytest.raises(Refusal) as refused:
            await s.top_up(a, NANO // 4)
        assert refused.value.status == 402 and "cannot cover more of this answer" in refused.value.message
        assert refused.value.message.startswith("Team 'core' monthly budget of $0.50")
        # Nothing was added anywhere, and settlement gives back all that was held.
        assert [await s.spent(step.key) for step in a.budgets] == [(0, NANO // 4 + NANO // 8)] * 2
        await s.settle(a, NANO // 10, 0)
        assert [await s.spent(step.key) for step in a.budgets] == [(NANO // 10, 0)] * 2

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_it_says_used_up_only_when_it_is(kind):
    async def scenario():
        s = await store(kind)
        now = 1_000_000.0
        rule = budget_rule("1")
        running = plan([rule], reserve=NANO // 2, now=now)
        await s.admit(running, now)
        with pytest.raises(Refusal) as refused:
            await s.admit(plan([rule], reserve=NANO * 6 // 10, now=now), now)
        assert refused.value.message.startswith(
            "Team 'core' monthly budget of $1.00 has $1.00 left ($0.50 of it held by requests still running), "
            "less than this request may cost (about $0.60); resets "
        ), refused.value.message
        await s.settle(running, NANO, 0)
        with pytest.raises(Refusal) as refused:
            await s.admit(plan([rule], reserve=1, now=now), now)
        assert refused.value.message.startswith("Team 'core' monthly budget of $1.00 is used up; resets ")

    run(scenario())


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_key_new_to_a_model_starts_from_what_its_organization_learned(kind):
    from dataplane.limits import Estimate

    async def scenario():
        now = 1_000_000.0
        s = await store(kind, clock=lambda: now)
        rule = budget_rule("10")
        org = f"tgtest-counters:{{o7}}:e:org.{uuid.uuid4().hex}:m"
        first = plan([rule], now=now)
        first.estimate = Estimate(f"{org}:key-a", org, 4096, NANO // 10, 15_000.0, 128_000)
        await s.admit(first, now)
        await s.settle(first, 0, 0, (2_000_000, 300))
        other = plan([rule], now=now + 1)
        other.estimate = Estimate(f"{org}:key-b", org, 4096, NANO // 10, 15_000.0, 128_000)
        await s.admit(other, now + 1)
        assert (other.held, other.output_tokens) == (2_000_000 + 375 * 15_000 + 1, 375)

    run(scenario())
