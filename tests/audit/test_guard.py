"""The database refuses to rewrite history, from every door; retention is the one way out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from audit.guard import guard_status
from audit.models import AuditArchive, AuditEvent
from audit.services import audit_retention
from audit.verify import audit_verify
from governance import services
from tests.audit.tamper import as_superuser, raw, rechain

POSTGRES = connection.vendor == "postgresql"


def refused(action) -> None:
    # A savepoint, so the refusal does not abort the test's transaction on PostgreSQL.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        action()


def test_it_has_every_trigger_in_place_after_migrating(db):
    status = guard_status()
    assert status and all(status.values()), status


def test_it_refuses_orm_updates_and_deletes(history):
    event = history[2]
    event.target_label = "forged"
    refused(event.save)
    refused(event.delete)
    refused(lambda: AuditEvent.objects.filter(seq=3).update(target_label="forged"))
    refused(lambda: AuditEvent.objects.all().delete())
    refused(lambda: AuditEvent.objects.filter(seq=6).delete())
    assert AuditEvent.objects.count() == 6
    assert AuditEvent.objects.get(seq=3).target_label != "forged"
    assert audit_verify().intact


def test_it_refuses_raw_sql(history):
    refused(lambda: raw("UPDATE audit_auditevent SET actor_label = 'mallory' WHERE seq = 2"))
    refused(lambda: raw("DELETE FROM audit_auditevent WHERE seq = 2"))
    refused(lambda: raw("DELETE FROM audit_auditevent"))
    if POSTGRES:
        refused(lambda: raw("TRUNCATE audit_auditevent"))
    assert AuditEvent.objects.count() == 6
    assert audit_verify().intact


def test_it_refuses_deletes_without_the_retention_window_even_for_archived_rows(history):
    # An archive row alone opens nothing: only retention's own transaction may delete.
    with as_superuser():
        AuditArchive.objects.create(first_seq=1, last_seq=2, last_hash=history[1].hash, events=2)
    refused(lambda: AuditEvent.objects.filter(seq=1).delete())


def test_it_refuses_edits_through_the_admin(history, alice):
    client = Client()
    client.force_login(alice)
    event = history[1]
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b"Save" not in page.content  # a view, not a form
    assert client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"actor_label": "mallory"}).status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    listing = client.post(
        "/admin/audit/auditevent/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert listing.status_code in (200, 302)
    assert AuditEvent.objects.filter(pk=event.pk, actor_label="alice").exists()
    assert AuditEvent.objects.count() == 6


def test_it_lets_a_user_go_without_touching_history(history, alice, acme):
    bob = services.user_create(actor=alice, username="bob", email="bob@example.com")
    services.team_create(actor=bob, organization=acme, name="Bob's")
    bob_id = bob.pk
    bob.delete()
    event = AuditEvent.objects.get(actor_label="bob")
    assert event.actor_id == bob_id  # the id it was written with, hashed as such
    assert audit_verify().intact


def test_it_removes_only_old_events_and_keeps_the_chain_verifiable(history, alice):
    with as_superuser():
        # Three events from last year: what retention is for.
        for event in history[:3]:
            raw("UPDATE audit_auditevent SET created_at = %s WHERE seq = %s", [timezone.now() - timedelta(days=400), event.seq])
        # Hashed as if written then.
        rechain()
    archive = audit_retention(actor=alice, older_than=timedelta(days=365))
    assert (archive.first_seq, archive.last_seq, archive.events) == (1, 3, 3)
    assert archive.last_hash == AuditEvent.objects.filter(seq=4).values_list("prev_hash", flat=True).get()
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [4, 5, 6, 7]
    record = AuditEvent.objects.get(seq=7)
    assert record.action == "audit.retention" and record.after["last_seq"] == 3
    result = audit_verify()
    assert result.intact and (result.first_seq, result.last_seq, result.archived_through) == (4, 7, 3), result.summary()
    assert "seq 1-3 archived" in result.summary()
    # The archive row is as immutable as the events, and it opened nothing beyond seq 3.
    refused(lambda: AuditArchive.objects.filter(pk=archive.pk).update(last_hash="0" * 64))
    refused(archive.delete)
    if POSTGRES:
        refused(lambda: raw("TRUNCATE audit_auditarchive"))
    refused(lambda: AuditEvent.objects.filter(seq=4).delete())
    assert audit_retention(actor=alice, older_than=timedelta(days=365)) is None


def test_it_never_removes_the_head(history, alice):
    archive = audit_retention(actor=alice, older_than=timedelta(0))
    assert (archive.first_seq, archive.last_seq) == (1, 5)
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [6, 7]
    assert audit_verify().intact


def test_it_runs_retention_from_the_command(history, capsys):
    call_command("audit_retention", "--days", "0")
    assert "Removed seq 1-5 (5 event(s))" in capsys.readouterr().out
    assert audit_verify().intact
