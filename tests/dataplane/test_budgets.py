"""Hard budgets, rate limits and allowlists on the org → team → user → key chain."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import httpx
import orjson
import pytest
from django.conf import settings

from dataplane.limits import NANO, reservation_nano
from dataplane.snapshot import Price
from governance import services
from tests.conftest import REDIS, GatewayProcess

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
RAW = orjson.dumps(BODY)
SONNET = Price(*(Decimal(p) / 1_000_000 for p in ("3", "15", "3.75", "0.30")))
RESERVE = Decimal(reservation_nano(len(RAW), 100, SONNET)) / NANO


def send(gateway, secret: str, body: bytes = RAW) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/messages", content=body,
        headers={"x-api-key": secret, "content-type": "application/json"}, timeout=20,
    )


def budget(world, amount: Decimal | str, level: str = "key", **target):
    defaults = {"key": {"key": world.key}, "team": {"team": world.payments}, "user": {"user": world.charlie}, "organization": {}}[level]
    return services.budget_set(
        actor=world.alice, level=level, organization=world.acme, amount_usd=Decimal(amount), period="monthly", **(target or defaults)
    )


def test_it_refuses_a_request_the_key_budget_cannot_cover(gateway, world, publish, ledger):
    budget(world, RESERVE / 2)
    publish()
    response = send(gateway, world.secret)
    assert response.status_code == 402, response.text
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["type"] == "billing_error"
    # Nothing is spent: the message says what is left and what the request may cost, never "used up".
    left = f"${RESERVE / 2:.4f}"
    assert error["message"].startswith(f"This key's monthly budget of {left} has {left} left, less than this request may cost (about $"), error
    assert error["message"].endswith(" 00:00 UTC. Ask your platform admin to raise it.")
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 402 and row.cost_usd == 0


@pytest.mark.parametrize("level", ["team", "organization", "user"])
def test_it_refuses_on_a_higher_level_when_the_key_has_room(gateway, world, publish, level):
    budget(world, "100")
    budget(world, RESERVE / 2, level=level)
    publish()
    response = send(gateway, world.secret)
    assert response.status_code == 402, response.text
    expected = {"team": "Team 'Payments'", "organization": "Organization 'Acme'", "user": "User 'charlie'"}[level]
    assert response.json()["error"]["message"].startswith(f"{expected} monthly budget of $")


def test_it_charges_the_actual_cost_and_releases_the_rest(gateway, world, publish, ledger):
    # One request first, with no budget: the ledger learns its exact cost.
    assert send(gateway, world.secret).status_code == 200
    (first,) = ledger(1, key_prefix=world.key.prefix)
    cost = first.cost_usd
    assert 0 < cost < RESERVE
    # Room for the one already made (restored from the request log), one cold
    # reservation, and a few more requests at their real cost.
    b = budget(world, cost + RESERVE + cost * Decimal("1.5"))
    b.refresh_from_db()
    amount = b.amount_usd  # as stored: the column keeps four decimals
    publish()
    statuses = []
    while len(statuses) < 40 and (not statuses or statuses[-1] == 200):
        response = send(gateway, world.secret)
        statuses.append(response.status_code)
    assert statuses[-1] == 402, statuses
    rows = ledger(len(statuses) + 1, key_prefix=world.key.prefix)
    spent = sum(r.cost_usd for r in rows)
    # Served until what is left no longer covers one more request (as reserved:
    # learned output and a quarter more), not before.
    assert spent <= amount and amount - spent < cost * Decimal("1.25"), (statuses, spent, amount)
    message = response.json()["error"]["message"]
    assert " left, less than this request may cost (about $" in message and "used up" not in message, message


def test_it_restores_spend_from_postgresql_when_counters_are_lost(gateway, world, publish, ledger, state_dir):
    budget(world, "100")
    publish()
    assert send(gateway, world.secret).status_code == 200
    (first,) = ledger(1, key_prefix=world.key.prefix)
    # Room for one more request only if the first one's spend were forgotten.
    budget(world, RESERVE + first.cost_usd / 2)
    publish()
    if REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        lost = [k for k in client.scan_iter(f"{settings.REDIS_PREFIX}{{o{world.acme.id}}}:*")]
        assert lost, "the admission left no counters"
        client.delete(*lost)
        client.close()
        worker = gateway
    else:
        # The embedded counters live in the worker: a restart loses them.
        worker = GatewayProcess(state_dir)
    try:
        response = send(worker, world.secret)
        assert response.status_code == 402, response.text
    finally:
        if worker is not gateway:
            worker.stop()


def test_it_refuses_a_model_without_a_price_when_a_budget_applies(gateway, world, publish):
    budget(world, "100")
    publish()
    response = send(gateway, world.secret, orjson.dumps(BODY | {"model": "claude-unpriced-1"}))
    assert response.status_code == 402
    assert "has no price in Tollgate" in response.json()["error"]["message"]


def test_it_intersects_allowlists_along_the_chain(gateway, world, publish):
    services.allowed_models_set(actor=world.alice, target=world.key, patterns=["claude-*"])
    services.allowed_models_set(actor=world.alice, target=world.payments, patterns=["claude-haiku-*"])
    publish()
    response = send(gateway, world.secret)
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "claude-sonnet-4-6" in message and "Team: claude-haiku-*" in message and "Key: claude-*" in message
    assert send(gateway, world.secret, orjson.dumps(BODY | {"model": "claude-haiku-4-5"})).status_code == 200


def test_it_keeps_a_rotated_secret_for_its_grace_period(gateway, world, publish):
    _, new_secret = services.key_rotate(actor=world.alice, key=world.key, grace_seconds=2)
    publish()
    assert send(gateway, new_secret).status_code == 200
    assert send(gateway, world.secret).status_code == 200
    time.sleep(2.1)
    assert send(gateway, new_secret).status_code == 200
    refused = send(gateway, world.secret)
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]


def test_it_rotates_without_grace(gateway, world, publish):
    _, new_secret = services.key_rotate(actor=world.alice, key=world.key)
    publish()
    assert send(gateway, world.secret).status_code == 401
    assert send(gateway, new_secret).status_code == 200


# --- rate limits ------------------------------------------------------------------


@pytest.fixture
def workers(state_dir, gateway):
    """Two workers on Redis share counters; the embedded default has one."""
    if not REDIS:
        yield [gateway]
        return
    extra = GatewayProcess(state_dir)
    yield [gateway, extra]
    extra.stop()


def test_it_admits_exactly_the_rate_limit_across_workers(world, workers, publish):
    services.rate_limit_set(
        actor=world.alice, level="key", organization=world.acme, key=world.key, metric="requests", limit=60, window_seconds=60
    )
    publish(*workers)
    # Start well inside a window so the whole burst lands in one.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{workers[i % len(workers)].url}/v1/messages", content=RAW,
                        headers={"x-api-key": world.secret, "content-type": "application/json"},
                    )
                    for i in range(100)
                )
            )

    responses = asyncio.run(burst())
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 60 and codes.count(429) == 40, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "This key is limited to 60 requests per minute" in refused.json()["error"]["message"]


def test_it_limits_tokens_per_window(gateway, world, publish, ledger):
    services.rate_limit_set(
        actor=world.alice, level="team", organization=world.acme, team=world.payments, metric="tokens", limit=10, window_seconds=3600
    )
    publish()
    assert send(gateway, world.secret).status_code == 200  # the window had room
    deadline = time.monotonic() + 5
    while (response := send(gateway, world.secret)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)  # settlement lands just after the response
    assert response.status_code == 429
    assert "Team 'Payments' is limited to 10 tokens per hour" in response.json()["error"]["message"]


# --- the counter store being down ---------------------------------------------------


@pytest.mark.parametrize("fail_open", [False, True])
def test_it_applies_the_stated_policy_when_the_counter_store_is_down(world, publish, state_dir, fail_open):
    budget(world, "100")
    worker = GatewayProcess(
        state_dir, TOLLGATE_COUNTERS_REDIS_URL="redis://127.0.0.1:9/0", TOLLGATE_COUNTERS_FAIL_OPEN="1" if fail_open else "0"
    )
    try:
        publish(worker)
        response = send(worker, world.secret)
        metrics = httpx.get(f"{worker.url}/metrics").text
    finally:
        worker.stop()
    if fail_open:
        assert response.status_code == 200
        assert "tollgate_admitted_without_counters_total 1" in metrics
    else:
        assert response.status_code == 503
        assert "counter store is unreachable" in response.json()["error"]["message"]
        assert response.headers.get("x-should-retry") != "false"
    assert 'tollgate_counter_store_errors_total{step="admit"} 1' in metrics


# --- concurrency: budgets are hard ---------------------------------------------------


@pytest.mark.parametrize("level", ["key", "team"])
def test_it_never_overspends_under_500_concurrent_streams(world, workers, publish, ledger, anthropic_upstream, level):
    limit = RESERVE * 50
    budget(world, limit, level=level)
    publish(*workers)
    anthropic_upstream.event_delay = 0.01
    body = orjson.dumps(BODY | {"stream": True})

    async def one(session: aiohttp.ClientSession, i: int) -> tuple[int, str]:
        url = f"{workers[i % len(workers)].url}/v1/messages"
        async with session.post(url, data=body, headers={"x-api-key": world.secret, "content-type": "application/json"}) as r:
            return r.status, await r.text()

    async def storm() -> list[tuple[int, str]]:
        connector = aiohttp.TCPConnector(limit=500)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            return await asyncio.gather(*(one(session, i) for i in range(500)))

    results = asyncio.run(storm())
    served = [text for status, text in results if status == 200]
    refused = [orjson.loads(text) for status, text in results if status != 200]
    assert len(served) >= 45, (len(served), refused[:3])
    assert all("event: message_stop" in text for text in served), [t for t in served if "event: message_stop" not in t][:1]
    label = {"key": "This key's", "team": "Team 'Payments'"}[level]
    odd = [r for r in refused if r["error"]["type"] != "billing_error" or not r["error"]["message"].startswith(label)]
    assert not odd, odd[:3]
    rows = ledger(500, key_prefix=world.key.prefix, timeout=30)
    assert len(rows) == 500
    charged = sum(r.cost_usd for r in rows)
    assert charged <= limit, (charged, limit)
    if REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        deadline = time.monotonic() + 5
        while True:
            keys = [k for k in client.scan_iter(f"{settings.REDIS_PREFIX}{{o{world.acme.id}}}:b:*") if not k.endswith(b":r")]
            reserved = [int(client.hget(k, "reserved") or 0) for k in keys]
            if (keys and not any(reserved)) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        client.close()
        assert keys and reserved == [0] * len(keys), "reservations left behind"


@pytest.mark.skipif(not REDIS, reason="the embedded counters live in the data plane; its request log is the record")
def test_it_persists_counter_spend_to_postgresql(gateway, world, publish, ledger):
    from governance.models import BudgetSpend
    from governance.tasks import persist_budget_spend

    b = budget(world, "100")
    publish()
    assert send(gateway, world.secret).status_code == 200
    (row,) = ledger(1, key_prefix=world.key.prefix)
    deadline = time.monotonic() + 5
    while True:
        assert persist_budget_spend() >= 1
        spend = BudgetSpend.objects.get(budget=b)
        if spend.spent_usd == row.cost_usd or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # settlement lands just after the response
    assert spend.spent_usd == row.cost_usd


@pytest.mark.skipif(not REDIS, reason="the running counter lives in Redis")
def test_it_takes_up_spend_a_redis_loss_forgot_from_the_next_snapshot(gateway, world, publish, ledger):
    import redis

    budget(world, "100")
    publish()  # its floor is $0: nothing is spent yet
    for _ in range(2):
        assert send(gateway, world.secret).status_code == 200
    ledger(2, key_prefix=world.key.prefix)
    client = redis.Redis.from_url(settings.REDIS_URL)
    pattern = f"{settings.REDIS_PREFIX}{{o{world.acme.id}}}:*"
    client.delete(*client.scan_iter(pattern))  # Redis came back empty
    assert send(gateway, world.secret).status_code == 200  # restarts from the $0 floor
    ledger(3, key_prefix=world.key.prefix)
    publish()  # the next snapshot's floor is the log's sum of all three
    assert send(gateway, world.secret).status_code == 200
    rows = ledger(4, key_prefix=world.key.prefix)
    logged = sum(int(r.cost_usd * NANO) for r in rows)
    deadline = time.monotonic() + 5
    while True:
        counters = [k for k in client.scan_iter(pattern) if client.type(k) == b"hash"]
        spent = sum(int(client.hget(k, "spent") or 0) for k in counters)
        if spent == logged or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # settlement lands just after the response
    client.close()
    assert spent == logged


def test_it_cuts_a_stream_that_runs_past_the_budget_and_charges_what_was_used(gateway, world, publish, ledger, anthropic_upstream):
    """A long answer outgrows its reservation: top-ups cover what the budget has
    left, then the stream ends with the budget's message and its cost is settled."""
    body = orjson.dumps({"model": "claude-sonnet-4-6", "max_tokens": 64000, "stream": True,
                         "messages": [{"role": "user", "content": "[[words: 30000]]"}]})
    cold = Decimal(reservation_nano(len(body), 64000, SONNET)) / NANO
    increment = Decimal(2048) * SONNET.output
    b = budget(world, cold + increment * Decimal("1.5"))
    b.refresh_from_db()
    publish()
    with httpx.stream("POST", f"{gateway.url}/v1/messages", content=body, timeout=60,
                      headers={"x-api-key": world.secret, "content-type": "application/json"}) as response:
        assert response.status_code == 200
        text = response.read().decode()
    assert "event: message_stop" not in text
    last = text.strip().split("\n\n")[-1]
    assert last.startswith("event: error\n"), last
    error = orjson.loads(last.split("data: ", 1)[1])["error"]
    assert error["type"] == "billing_error"
    assert error["message"].startswith("This key's monthly budget of $") and "cannot cover more of this answer" in error["message"]
    # Every event before the error is whole: the client's parser never sees half of one.
    for event in text.strip().split("\n\n")[:-1]:
        assert event.startswith("event: ") and "\ndata: {" in event and event.endswith("}"), event[-200:]
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 402 and row.error_type == "budget_exhausted"
    relayed_words = text.count("word")
    assert row.output_tokens >= relayed_words  # charged at least what reached the client
    # Within the stated bound: at most 32 tokens relayed past what the budget covered.
    assert 0 < row.cost_usd <= b.amount_usd + 32 * SONNET.output, (row.cost_usd, b.amount_usd)
    deadline = time.monotonic() + 5
    while anthropic_upstream.streams_cancelled < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert anthropic_upstream.streams_cancelled == 1  # the provider stopped generating too
    if REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = [k for k in client.scan_iter(f"{settings.REDIS_PREFIX}{{o{world.acme.id}}}:b:*") if not k.endswith(b":r")]
        deadline = time.monotonic() + 5
        while any(int(client.hget(k, "reserved") or 0) for k in keys) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert keys and all(int(client.hget(k, "reserved") or 0) == 0 for k in keys), "reservation left behind"
        client.close()


def test_it_tells_claude_code_how_much_of_the_budget_is_used(gateway, world, publish, ledger):
    """The usage-limit headers Claude Code reads: utilization of the budget nearest
    its limit, the 75 % mark once passed, the pool scope for a team budget."""
    plain = send(gateway, world.secret)
    assert plain.headers["anthropic-ratelimit-requests-limit"] == "4000"  # the provider's own, without a budget
    assert "anthropic-ratelimit-unified-status" not in plain.headers
    (first,) = ledger(1, key_prefix=world.key.prefix)
    budget(world, "100")
    team = budget(world, first.cost_usd * 2 + RESERVE, level="team")
    team.refresh_from_db()
    publish()
    response = send(gateway, world.secret)
    assert response.status_code == 200, response.text
    h = response.headers
    assert "anthropic-ratelimit-requests-limit" not in h
    # The team's pool is the level nearest its limit: its spend, this request's reservation.
    used = (first.cost_usd + RESERVE) / team.amount_usd
    assert abs(float(h["anthropic-ratelimit-unified-overage-utilization"]) - float(used)) <= 0.01, (h, used)
    assert h["anthropic-ratelimit-unified-status"] == h["anthropic-ratelimit-unified-overage-status"] == "allowed_warning"
    assert h["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "0.75"
    assert h["anthropic-ratelimit-unified-representative-claim"] == "overage"
    assert h["anthropic-ratelimit-unified-overage-scope"] == "group_pool"
    assert int(h["anthropic-ratelimit-unified-reset"]) > time.time()
    assert h["anthropic-ratelimit-unified-reset"] == h["anthropic-ratelimit-unified-overage-reset"]


def claude_code_body(max_tokens: int = 128_000) -> bytes:
    """What Claude Code sends: a cached system prompt and tool list of some 60 KB,
    a conversation, its device id, ``max_tokens`` 128,000, streamed."""
    tools = [
        {"name": f"Tool{i}", "description": "Does one thing a coding agent needs. " * 40,
         "input_schema": {"type": "object", "properties": {f"arg{j}": {"type": "string", "description": "An argument " * 8}
                                                           for j in range(6)}, "required": ["arg0"]}}
        for i in range(18)
    ]
    system = [{"type": "text", "text": "You are Claude Code. " * 600, "cache_control": {"type": "ephemeral"}}]
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Look at the failing test and fix it."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "I'll read the test first."}]},
        {"role": "user", "content": [{"type": "text", "text": "Go on.", "cache_control": {"type": "ephemeral"}}]},
    ]
    return orjson.dumps({
        "model": "claude-sonnet-4-6", "max_tokens": max_tokens, "stream": True, "system": system, "tools": tools,
        "messages": messages, "metadata": {"user_id": "user_4f1c_account__session_9e2b"},
    })


@pytest.mark.parametrize("level", ["key", "team"])
def test_it_serves_a_burst_of_claude_code_requests_up_to_the_budget_and_no_further(world, workers, publish, ledger, anthropic_upstream, level):
    """500 concurrent streams with Claude Code's body (max_tokens 128,000) against a
    budget worth 50 of them, from a key that has been working in the last minutes."""
    body = claude_code_body()
    headers = {"x-api-key": world.secret, "content-type": "application/json"}
    budget(world, "100", level=level)
    publish(*workers)
    # The key has been working: every worker has seen its answers, as a real fleet's would.
    for worker in workers * 2:
        warm = httpx.post(f"{worker.url}/v1/messages", content=body, headers=headers, timeout=30)
        assert warm.status_code == 200 and "event: message_stop" in warm.text
    warmed = ledger(2 * len(workers), key_prefix=world.key.prefix)
    cost = warmed[-1].cost_usd
    spent = sum(r.cost_usd for r in warmed)
    b = budget(world, spent + cost * 50, level=level)
    b.refresh_from_db()
    publish(*workers)
    anthropic_upstream.event_delay = 0.01

    async def one(session: aiohttp.ClientSession, i: int) -> tuple[int, str]:
        async with session.post(f"{workers[i % len(workers)].url}/v1/messages", data=body, headers=headers) as r:
            return r.status, await r.text()

    async def storm() -> list[tuple[int, str]]:
        connector = aiohttp.TCPConnector(limit=500)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            return await asyncio.gather(*(one(session, i) for i in range(500)))

    results = asyncio.run(storm())
    served = [text for status, text in results if status == 200 and "event: message_stop" in text]
    refused = [orjson.loads(text) for status, text in results if status != 200]
    label = {"key": "This key's", "team": "Team 'Payments'"}[level]
    assert len(served) >= 45, (len(served), refused[:2])
    odd = [r for r in refused if r["error"]["type"] != "billing_error" or not r["error"]["message"].startswith(label)]
    assert not odd, odd[:3]
    rows = ledger(500 + 2 * len(workers), key_prefix=world.key.prefix, timeout=30)
    charged = sum(r.cost_usd for r in rows)
    print(f"\nburst of 500 ({level}): served {len(served)}, refused {len(refused)}, charged ${charged - spent} of ${cost * 50}")
    assert charged <= b.amount_usd, (charged, b.amount_usd)
    if REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        deadline = time.monotonic() + 5
        while True:
            keys = [k for k in client.scan_iter(f"{settings.REDIS_PREFIX}{{o{world.acme.id}}}:b:*") if not k.endswith(b":r")]
            reserved = [int(client.hget(k, "reserved") or 0) for k in keys]
            if (keys and not any(reserved)) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        client.close()
        assert keys and reserved == [0] * len(keys), "reservations left behind"
