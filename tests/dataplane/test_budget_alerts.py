"""Budget warnings before the wall: real traffic spends a budget, the schedule's
task fires each threshold once per period to a signed webhook and a
Slack-style webhook on a local HTTP server and to email, each delivery
recorded and retried with backoff."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import orjson
import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from controlplane.celery import app as celery_app
from governance import services
from governance.alerts import BACKOFF, alert_deliveries_due
from governance.models import AlertDelivery, BudgetAlert, DeliveryStatus
from governance.tasks import budget_alerts, persist_budget_spend
from ledger.models import RequestLog
from tests.fakes.webhook_receiver import WebhookReceiver

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
# 100,000 input tokens at $3 per million: each request costs $0.30.
COSTLY = {"input_tokens": 100_000, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


@pytest.fixture(scope="module")
def _receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def receiver(_receiver: WebhookReceiver) -> WebhookReceiver:
    _receiver.reset()
    return _receiver


@pytest.fixture(autouse=True)
def _tasks_in_process() -> Iterator[None]:
    # No Celery worker runs under the tests: tasks sent at commit run right there.
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


def spend(gateway, world, fake, times: int) -> None:
    for _ in range(times):
        fake.usage_next(COSTLY)
        response = httpx.post(
            f"{gateway.url}/v1/messages", content=orjson.dumps(BODY),
            headers={"x-api-key": world.secret, "content-type": "application/json"}, timeout=20,
        )
        assert response.status_code == 200, response.text


def tick(ledger, world, count: int) -> None:
    """What the schedule does every few seconds, once the ledger has the requests."""
    rows = ledger(count, key_prefix=world.key.prefix)
    assert len(rows) == count
    persist_budget_spend()
    budget_alerts()


def test_it_warns_once_per_threshold_per_period(gateway, world, publish, ledger, anthropic_upstream, receiver, django_capture_on_commit_callbacks):
    budget = services.budget_set(
        actor=world.alice, level="team", organization=world.acme, team=world.payments,
        amount_usd=Decimal("1"), period="monthly", alert_thresholds=[50, 75],
    )
    hook, secret = services.alert_channel_create(
        actor=world.alice, organization=world.acme, name="finance", kind="webhook", url=receiver.url("/hook")
    )
    services.alert_channel_create(actor=world.alice, organization=world.acme, name="chat", kind="slack", url=receiver.url("/slack"))
    services.alert_channel_create(actor=world.alice, organization=world.acme, name="lead", kind="email", email="lead@example.com")
    publish()

    spend(gateway, world, anthropic_upstream, 1)  # $0.30: under 50%
    with django_capture_on_commit_callbacks(execute=True):
        tick(ledger, world, 1)
    assert receiver.received == [] and BudgetAlert.objects.count() == 0

    spend(gateway, world, anthropic_upstream, 1)  # $0.60: past 50%
    with django_capture_on_commit_callbacks(execute=True):
        tick(ledger, world, 2)
    (first,) = receiver.at("/hook")
    signed = first.headers["x-tollgate-signature"]
    stamp, mac = (part.split("=", 1)[1] for part in signed.split(","))
    assert mac == hmac.new(secret.encode(), stamp.encode() + b"." + first.raw, hashlib.sha256).hexdigest()
    event = first.json
    assert (event["type"], event["threshold_percent"], event["budget"]["target"]) == ("budget.threshold_reached", 50, "Team 'Payments'")
    # What the request log holds for the team (two requests of $0.30 each).
    logged = sum(RequestLog.objects.filter(team_id=world.payments.id).values_list("cost_usd", flat=True))
    assert Decimal(event["spent_usd"]) == logged >= Decimal("0.6")
    assert event["message"].startswith("Team 'Payments' has used 50% of its $1.00 monthly budget ($0.60 spent); it resets ")
    (chat,) = receiver.at("/slack")
    assert chat.json == {"text": event["message"]}
    (email,) = mail.outbox
    assert email.to == ["lead@example.com"] and email.body == event["message"]

    # Checked again with nothing new: nothing is sent again.
    with django_capture_on_commit_callbacks(execute=True):
        budget_alerts()
    assert len(receiver.at("/hook")) == 1 and len(mail.outbox) == 1

    spend(gateway, world, anthropic_upstream, 1)  # $0.90: past 75%
    with django_capture_on_commit_callbacks(execute=True):
        tick(ledger, world, 3)
        budget_alerts()
    assert [d.json["threshold_percent"] for d in receiver.at("/hook")] == [50, 75]
    assert len(receiver.at("/slack")) == 2 and len(mail.outbox) == 2
    deliveries = AlertDelivery.objects.filter(alert__budget=budget)
    assert deliveries.count() == 6
    assert set(deliveries.values_list("status", "attempts")) == {(DeliveryStatus.DELIVERED, 1)}
    assert AuditEvent.objects.filter(action="alert_channel.create").count() == 3
    assert hook.pk in set(deliveries.values_list("channel", flat=True))


def test_it_retries_a_failed_delivery_with_backoff(world, receiver, django_capture_on_commit_callbacks):
    from governance.models import BudgetSpend

    budget = services.budget_set(
        actor=world.alice, level="organization", organization=world.acme, amount_usd=Decimal("10"), period="daily",
    )
    services.alert_channel_create(actor=world.alice, organization=world.acme, name="finance", kind="webhook", url=receiver.url())
    from governance.counters import budget_usage

    (standing,) = budget_usage(budgets=[budget])
    BudgetSpend.objects.create(budget=budget, period_start=standing.period_start, spent_usd=Decimal("7.6"))
    receiver.fail_next(2)
    with django_capture_on_commit_callbacks(execute=True):
        budget_alerts()
    (delivery,) = AlertDelivery.objects.all()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        DeliveryStatus.PENDING, 1, 500, "HTTP 500",
    )
    now = timezone.now()
    assert delivery.next_attempt_at - now > BACKOFF[0] - timedelta(seconds=5)
    # Not yet due: the sweep leaves it.
    assert alert_deliveries_due(now=now) == 0
    assert alert_deliveries_due(now=now + BACKOFF[0] + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 2)
    assert delivery.next_attempt_at > now + BACKOFF[1]
    assert alert_deliveries_due(now=now + BACKOFF[0] + BACKOFF[1] + timedelta(seconds=2)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (DeliveryStatus.DELIVERED, 3, 200)
    assert [d.json["threshold_percent"] for d in receiver.received] == [75]


def test_it_gives_up_after_the_last_pause(world, receiver, django_capture_on_commit_callbacks):
    from governance.counters import budget_usage
    from governance.models import BudgetSpend

    budget = services.budget_set(
        actor=world.alice, level="organization", organization=world.acme, amount_usd=Decimal("10"), period="daily",
        alert_thresholds=[100],
    )
    services.alert_channel_create(actor=world.alice, organization=world.acme, name="finance", kind="webhook", url=receiver.url())
    (standing,) = budget_usage(budgets=[budget])
    BudgetSpend.objects.create(budget=budget, period_start=standing.period_start, spent_usd=Decimal("10"))
    receiver.fail_next(100)
    with django_capture_on_commit_callbacks(execute=True):
        budget_alerts()
    later = timezone.now()
    for pause in BACKOFF:
        later += pause + timedelta(seconds=1)
        assert alert_deliveries_due(now=later) == 1
    (delivery,) = AlertDelivery.objects.all()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, len(BACKOFF) + 1)
    assert alert_deliveries_due(now=later + timedelta(days=1)) == 0
