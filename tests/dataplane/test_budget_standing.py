"""Spend you can see: spent, reserved, remaining and resets_at on every budget,
read live from the counter store with Redis and from the request log on the
embedded default; the persisted copy is refreshed there too (``make run``'s
scheduler runs the beat schedule)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import orjson
from django.core.management import call_command
from rest_framework.test import APIClient

from governance import services
from governance.models import BudgetSpend
from tests.conftest import REDIS

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def send(gateway, secret: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/messages", content=orjson.dumps(BODY | extra),
        headers={"x-api-key": secret, "content-type": "application/json"}, timeout=30,
    )


def standing(world, budget) -> dict[str, object]:
    client = APIClient()
    client.force_authenticate(world.alice)
    response = client.get(f"/api/v1/organizations/{world.acme.slug}/budgets/")
    assert response.status_code == 200, response.content
    return next(b for b in response.json()["results"] if b["id"] == budget.id)


def next_month_start() -> str:
    now = datetime.now(UTC)
    first = now.replace(year=now.year + (now.month == 12), month=now.month % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return first.isoformat().replace("+00:00", "Z")


def test_it_shows_what_a_budget_has_spent_and_has_left(gateway, world, publish, ledger):
    budget = services.budget_set(
        actor=world.alice, level="team", organization=world.acme, team=world.payments,
        amount_usd=Decimal("5"), period="monthly",
    )
    publish()
    assert send(gateway, world.secret).status_code == 200
    (row,) = ledger(1, key_prefix=world.key.prefix)
    if not REDIS:
        # make run's scheduler does this every TOLLGATE_BUDGET_SPEND_PERSIST_SECONDS.
        call_command("run_schedule", once=True)
    deadline = time.monotonic() + 5
    while True:
        shown = standing(world, budget)
        if Decimal(shown["spent"]) == row.cost_usd or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # settlement lands just after the response
    assert Decimal(shown["spent"]) == row.cost_usd > 0
    assert Decimal(shown["remaining"]) == Decimal(5) - row.cost_usd
    assert shown["resets_at"] == next_month_start()
    if REDIS:
        assert (shown["spend_source"], Decimal(shown["reserved"])) == ("counter store", 0)
    else:
        assert (shown["spend_source"], shown["reserved"]) == ("request log", None)
        assert BudgetSpend.objects.get(budget=budget).spent_usd == row.cost_usd


def test_it_shows_what_a_stream_in_flight_holds(gateway, world, publish, ledger, anthropic_upstream):
    budget = services.budget_set(
        actor=world.alice, level="key", organization=world.acme, key=world.key, amount_usd=Decimal("5"), period="daily",
    )
    publish()
    anthropic_upstream.event_delay = 0.2
    done = threading.Event()

    def stream() -> None:
        try:
            send(gateway, world.secret, stream=True)
        finally:
            done.set()

    threading.Thread(target=stream, daemon=True).start()
    deadline = time.monotonic() + 10
    held = None
    while not done.is_set() and time.monotonic() < deadline:
        shown = standing(world, budget)
        if shown["reserved"] is not None and Decimal(shown["reserved"]) > 0:
            held = shown
            break
        time.sleep(0.05)
    done.wait(20)
    if REDIS:
        assert held is not None, "the reservation of the stream in flight never showed"
        assert Decimal(held["remaining"]) == Decimal(5) - Decimal(held["spent"]) - Decimal(held["reserved"])
        (row,) = ledger(1, key_prefix=world.key.prefix)
        deadline = time.monotonic() + 5
        while True:
            after = standing(world, budget)
            if Decimal(after["spent"]) == row.cost_usd or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert Decimal(after["reserved"]) == 0 and Decimal(after["spent"]) == row.cost_usd
    else:
        # The embedded counters are inside the data-plane process: nothing in flight is known here.
        assert held is None and standing(world, budget)["reserved"] is None


def test_it_reads_the_persisted_copy_for_an_untouched_counter(gateway, world, publish):
    budget = services.budget_set(
        actor=world.alice, level="organization", organization=world.acme, amount_usd=Decimal("10"), period="weekly",
    )
    from dataplane.limits import period_bounds

    start, _ = period_bounds("weekly", False, budget.anchor.timestamp(), time.time())
    BudgetSpend.objects.create(budget=budget, period_start=datetime.fromtimestamp(start, tz=UTC), spent_usd=Decimal("2.5"))
    shown = standing(world, budget)
    assert (Decimal(shown["spent"]), Decimal(shown["remaining"])) == (Decimal("2.5"), Decimal("7.5"))
