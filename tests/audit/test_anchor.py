"""Request-log rows anchored into the audit chain as a Merkle root per batch."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from django.db import connection, transaction

from audit import canonical
from audit.anchor import (
    anchor_writer_lock,
    anchored_through,
    request_log_anchor,
    request_log_anchor_all,
)
from audit.models import AuditEvent
from audit.tasks import anchor_request_log
from audit.verify import audit_verify
from controlplane.celery import app
from ledger.models import RequestLog
from ledger.writer import store
from tests.audit.tamper import raw

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


def usage(n: int, **values) -> dict:
    """A usage event as the data plane emits it."""
    return {
        "request_id": f"req-{n}-{uuid.uuid4().hex[:6]}", "ts": time.time(), "endpoint": "anthropic.messages",
        "model_requested": "claude-sonnet-4-6", "model_served": "claude-sonnet-4-6", "status": 200,
        "input_tokens": 100 + n, "output_tokens": 20, "cost_usd": "0.0001234567", "latency_ms": 812.5,
        "key_prefix": "tg-0123abcd", "user_agent": "claude-cli/2.1", **values,
    }


def test_it_anchors_persisted_rows_a_batch_at_a_time(db):
    store([usage(n) for n in range(25)])
    assert request_log_anchor_all(batch=10) == 3
    anchors = list(AuditEvent.objects.filter(action="ledger.anchor").order_by("seq"))
    ids = list(RequestLog.objects.order_by("id").values_list("id", flat=True))
    assert [(a.after["first_id"], a.after["last_id"], a.after["rows"]) for a in anchors] == [
        (ids[0], ids[9], 10), (ids[10], ids[19], 10), (ids[20], ids[24], 5)
    ]
    assert anchored_through() == ids[-1]
    assert request_log_anchor() is None  # nothing new
    store([usage(99)])
    assert request_log_anchor().after["rows"] == 1
    result = audit_verify()
    assert result.intact and result.anchors == 4, result.summary()


def test_it_finds_an_edited_request_log_row(db):
    store([usage(n) for n in range(12)])
    request_log_anchor_all(batch=5)
    victim = RequestLog.objects.order_by("id")[6]
    RequestLog.objects.filter(pk=victim.pk).update(cost_usd="0")
    result = audit_verify()
    second = AuditEvent.objects.filter(action="ledger.anchor").order_by("seq")[1]
    assert (result.problem.seq, result.problem.kind) == (second.seq, "anchor"), result.summary()
    assert result.problem.detail.endswith("a row's content changed since it was anchored")
    assert f"rows {second.after['first_id']}-{second.after['last_id']}" in result.problem.detail


def test_it_finds_a_deleted_request_log_row(db):
    store([usage(n) for n in range(4)])
    event = request_log_anchor()
    RequestLog.objects.order_by("id").last().delete()
    result = audit_verify()
    assert (result.problem.seq, result.problem.kind) == (event.seq, "anchor")
    assert result.problem.detail.endswith("1 row(s) gone")


def test_it_finds_a_row_slipped_into_an_anchored_range(db):
    store([usage(n) for n in range(3)])
    first, *_ = RequestLog.objects.order_by("id").values_list("id", flat=True)
    raw("DELETE FROM ledger_requestlog WHERE id = %s", [first + 1])
    event = request_log_anchor()
    assert event.after["rows"] == 2
    forged = RequestLog.objects.get(pk=first)
    forged.pk, forged.request_id = first + 1, "forged"
    forged.save(force_insert=True)
    result = audit_verify()
    assert (result.problem.seq, result.problem.kind) == (event.seq, "anchor")
    assert result.problem.detail.endswith("1 row(s) more than were anchored")


def test_it_hashes_rows_as_both_databases_give_them_back(db):
    store([usage(1, cost_usd="0"), usage(2, cost_usd="12.0000000007", ttfb_ms=None, latency_ms=0.1)])
    event = request_log_anchor()
    from audit.anchor import row_leaf

    rows = list(RequestLog.objects.order_by("id").values())
    assert event.after["root"] == canonical.merkle_root([row_leaf(r) for r in rows])
    assert audit_verify().intact


def test_it_anchors_on_the_beat_schedule(db):
    assert app.conf.beat_schedule["audit-anchor-request-log"]["task"] == anchor_request_log.name
    store([usage(n) for n in range(3)])
    assert anchor_request_log.apply().get() == 1


@pytest.mark.skipif(not POSTGRES, reason="SQLite has one writer at a time: no insert is ever in flight beside another")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_waits_for_a_writer_whose_lower_id_commits_last():
    """A writer took a lower id and commits after a later writer: an anchor ending at the
    later row would skip the earlier one forever. The anchorer waits for it instead."""
    holding, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                anchor_writer_lock()
                RequestLog.objects.create(request_id="slow", created_at=_now(), endpoint="x", status=200)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert holding.wait(10)
    store([usage(1)])  # commits now, with a higher id than the slow row
    anchored: list = []
    anchorer = threading.Thread(target=lambda: (anchored.append(request_log_anchor()), connection.close()))
    anchorer.start()
    anchorer.join(1.0)
    assert anchorer.is_alive(), "the anchorer read the log while an insert was in flight"
    release.set()
    slow.join(10)
    anchorer.join(10)
    assert anchored[0].after["rows"] == 2
    assert set(RequestLog.objects.values_list("request_id", flat=True)) >= {"slow"}
    assert audit_verify().intact


def _now():
    from django.utils import timezone

    return timezone.now()
