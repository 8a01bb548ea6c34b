"""Budget warnings before the wall: thresholds, their alerts, and delivery.

``budget_alerts_check`` runs on the beat schedule (and ``make run``'s
scheduler): a budget whose current-period spend reaches one of its thresholds
gets one BudgetAlert for that period and threshold (the unique constraint makes
a second check, or a second checker, a no-op) and one AlertDelivery per active
channel of its organization, each sent by a Celery task after commit. A failed
delivery is tried again after a growing pause (``BACKOFF``) by
``alert_deliveries_due``, on the same schedule, until it lands or runs out of
attempts; every attempt's outcome stays on its row.

Webhooks get JSON signed like Stripe's: ``X-Tollgate-Signature: t=<unix
time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the channel's secret>``, so a
receiver can check it and refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import sealing
from governance.counters import budget_usage
from governance.models import (
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    Budget,
    BudgetAlert,
    DeliveryStatus,
    Level,
)

log = logging.getLogger(__name__)

# Pauses before the 2nd, 3rd… attempt; after the last, the delivery is given up.
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
TIMEOUT_SECONDS = 10.0


def budget_label(budget: Budget) -> str:
    if budget.level == Level.TEAM:
        return f"Team '{budget.team.name}'"
    if budget.level == Level.USER:
        return f"User '{budget.user.get_username()}'"
    if budget.level == Level.KEY:
        return f"Key '{budget.key.name}' ({budget.key.prefix}…)"
    return f"Organization '{budget.organization.name}'"


def _usd(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01')):,}"


def alert_message(alert: BudgetAlert) -> str:
    budget = alert.budget
    return (
        f"{budget_label(budget)} has used {alert.threshold}% of its {_usd(alert.amount_usd)} {budget.period} budget "
        f"({_usd(alert.spent_usd)} spent); it resets {alert.resets_at:%Y-%m-%d %H:%M} UTC."
    )


def budget_alerts_check(*, now: float | None = None) -> list[BudgetAlert]:
    """Fire every threshold that current-period spend has reached and that has
    not fired yet this period; returns the alerts created."""
    budgets = list(
        Budget.objects.filter(amount_usd__gt=0)
        .exclude(alert_thresholds=[])
        .select_related("organization", "team", "user", "key")
    )
    moment = datetime.fromtimestamp(now, tz=UTC) if now is not None else None
    fired: list[BudgetAlert] = []
    for standing in budget_usage(budgets=budgets, now=moment):
        budget = standing.budget
        reached = [
            t for t in sorted(set(budget.alert_thresholds or []))
            if standing.spent * 100 >= budget.amount_usd * t
        ]
        if not reached:
            continue
        done = set(
            BudgetAlert.objects.filter(budget=budget, period_start=standing.period_start).values_list("threshold", flat=True)
        )
        for threshold in reached:
            if threshold in done:
                continue
            alert = _fire(budget, threshold, standing.spent, standing.period_start, standing.resets_at)
            if alert is not None:
                fired.append(alert)
    return fired


def _fire(budget: Budget, threshold: int, spent: Decimal, period_start: datetime, resets_at: datetime) -> BudgetAlert | None:
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                budget=budget,
                period_start=period_start,
                threshold=threshold,
                spent_usd=spent,
                amount_usd=budget.amount_usd,
                resets_at=resets_at,
            )
            deliveries = [
                AlertDelivery.objects.create(alert=alert, channel=channel)
                for channel in AlertChannel.objects.filter(organization_id=budget.organization_id, is_active=True)
            ]
            for delivery in deliveries:
                transaction.on_commit(lambda pk=delivery.pk: _enqueue(pk))
    except IntegrityError:
        return None  # another check fired it first
    return alert


def _enqueue(delivery_id: int) -> None:
    from governance.tasks import budget_alert_deliver

    try:
        budget_alert_deliver.delay(delivery_id)
    except Exception as exc:
        # The broker is away: the delivery is due already, so the next sweep sends it.
        log.warning("budget alert delivery %s not queued (%s); the schedule will send it", delivery_id, exc)


def alert_deliveries_due(*, now: datetime | None = None) -> int:
    """Attempt every pending delivery whose pause is over; returns how many were attempted."""
    now = now or timezone.now()
    due = list(
        AlertDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).values_list("pk", flat=True)
    )
    for pk in due:
        alert_delivery_attempt(delivery_id=pk, now=now)
    return len(due)


def alert_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> AlertDelivery | None:
    """Send one delivery once if it is due, record the outcome, and schedule the
    next try on failure. Only a due delivery is taken, so the task sent at
    commit and a sweep never both send a fresh one."""
    now = now or timezone.now()
    with transaction.atomic():
        pending = AlertDelivery.objects.select_for_update(of=("self",)).filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        delivery = pending.select_related(
            "channel", "alert__budget__organization", "alert__budget__team", "alert__budget__user", "alert__budget__key"
        ).first()
        if delivery is None:
            return None  # delivered, given up, or taken by another worker
        # Claimed for this attempt: a crash mid-send retries after the first pause.
        delivery.attempts += 1
        delivery.next_attempt_at = now + BACKOFF[min(delivery.attempts - 1, len(BACKOFF) - 1)]
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    status: int | None = None
    try:
        status = _send(delivery)
        error = "" if status is None or 200 <= status < 300 else f"HTTP {status}"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
    delivery.response_status = status
    delivery.last_error = error
    if not error:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = timezone.now()
    elif delivery.attempts > len(BACKOFF):
        delivery.status = DeliveryStatus.FAILED
        log.warning("budget alert delivery %s gave up after %s attempts: %s", delivery.pk, delivery.attempts, error)
    delivery.save(update_fields=["status", "delivered_at", "response_status", "last_error"])
    return delivery


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    budget = alert.budget
    return {
        "type": "budget.threshold_reached",
        "alert_id": alert.pk,
        "organization": budget.organization.slug,
        "budget": {
            "id": budget.pk,
            "level": budget.level,
            "target": budget_label(budget),
            "period": budget.period,
            "amount_usd": str(alert.amount_usd),
        },
        "threshold_percent": alert.threshold,
        "spent_usd": str(alert.spent_usd),
        "period_start": alert.period_start.isoformat(),
        "resets_at": alert.resets_at.isoformat(),
        "message": alert_message(alert),
    }


def _send(delivery: AlertDelivery) -> int | None:
    channel = delivery.channel
    alert = delivery.alert
    if channel.kind == AlertChannelKind.EMAIL:
        send_mail(
            subject=f"Tollgate: {budget_label(alert.budget)} at {alert.threshold}% of its budget",
            message=alert_message(alert),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[channel.email],
        )
        return None
    url = sealing.unseal(channel.url_sealed)
    if channel.kind == AlertChannelKind.SLACK:
        body = orjson.dumps({"text": alert_message(alert)})
        headers = {"content-type": "application/json"}
    else:
        body = orjson.dumps(alert_payload(alert))
        headers = {
            "content-type": "application/json",
            "x-tollgate-event": "budget.threshold_reached",
            "x-tollgate-delivery": str(delivery.pk),
            "x-tollgate-signature": webhook_signature(sealing.unseal(channel.secret_sealed), int(time.time()), body),
        }
    response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False)
    return response.status_code


def channel_destination(channel: AlertChannel) -> str:
    """What a channel's listing shows: the address, or a URL's host (its path is a credential)."""
    if channel.kind == AlertChannelKind.EMAIL:
        return channel.email
    return urlsplit(sealing.unseal(channel.url_sealed)).netloc
