"""The hash chain: every event names the previous one's hash and hashes all its own fields."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from audit import canonical, context
from audit.chain import chain_append
from audit.models import AuditEvent
from audit.services import audit_record
from audit.verify import audit_verify
from governance import services


def test_it_chains_each_event_to_the_previous(history):
    prev = canonical.GENESIS
    for event in history:
        assert event.prev_hash == prev
        values = {name: getattr(event, name) for name in canonical.FIELDS}
        assert event.hash == canonical.event_hash(values)
        prev = event.hash
    assert audit_verify().intact


def test_it_covers_every_field_of_an_event(alice, acme):
    token = context.current.set(
        context.RequestContext(request_id="req-42", ip="2001:DB8::1", user_agent="curl/8.5")
    )
    try:
        with transaction.atomic():
            event = audit_record(
                actor=alice, action="organization.rename", target=acme,
                before={"name": "Acme"}, after={"name": "Acme Corp", "ratio": 0.25, "big": 1e20},
            )
    finally:
        context.current.reset(token)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.request_id, stored.ip, stored.user_agent) == ("req-42", "2001:db8::1", "curl/8.5")
    values = {name: getattr(stored, name) for name in canonical.FIELDS}
    # What came back from the database hashes as what was written.
    assert canonical.event_hash(values) == stored.hash == event.hash
    for name, other in [
        ("actor_label", "mallory"), ("action", "organization.delete"), ("target_id", "999"),
        ("before", {"name": "Evil"}), ("after", None), ("request_id", "req-43"), ("ip", "10.0.0.1"),
        ("user_agent", "x"), ("created_at", stored.created_at.replace(year=2020)), ("prev_hash", "f" * 64),
        ("seq", stored.seq + 1), ("actor_id", None), ("target_type", "auth.user"), ("target_label", "?"),
    ]:
        assert canonical.event_hash({**values, name: other}) != stored.hash, name


def test_it_hashes_what_a_column_can_hold(alice, acme):
    with transaction.atomic():
        event = audit_record(actor=alice, action="x" * 150, target=acme)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.action == "x" * 100
    assert audit_verify().intact


def test_it_gives_a_rolled_back_seq_to_the_next_event(alice, acme):
    head = AuditEvent.objects.order_by("-seq").first()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=alice, action="organization.touch", target=acme)
        raise RuntimeError("the change failed")
    services.team_create(actor=alice, organization=acme, name="Payments")
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.seq, event.prev_hash) == (head.seq + 1, head.hash)
    assert audit_verify().intact


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_refuses_to_append_outside_a_transaction():
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError):
        chain_append(actor_id=None, actor_label="x", action="a", target_type="t", target_id="1")
    assert not AuditEvent.objects.exists()


@pytest.mark.skipif(
    not __import__("os").environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="threads sharing one SQLite database only take turns; the lock under test is PostgreSQL's",
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_keeps_one_chain_with_eight_writers_at_once():
    from django.contrib.auth import get_user_model

    alice = get_user_model().objects.create_superuser("alice", "alice@example.com", "alice-password-1")
    acme = services.organization_create(actor=alice, name="Acme", slug="acme")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                services.team_create(actor=alice, organization=acme, name=f"team-{n}-{i}")
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = audit_verify()
    assert result.intact, result.summary()
    assert result.events == 1 + 8 * 25 == AuditEvent.objects.count()
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 202))
