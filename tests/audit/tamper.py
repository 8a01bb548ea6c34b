"""What someone with the database owner's rights can do to the audit tables.

The guard's triggers stop everyone else; these take them away (inside the
caller's transaction, so a test's rollback restores them), which is exactly
the attack the hash chain and the checkpoints exist to reveal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from audit.guard import ARCHIVES, EVENTS, SQLITE_TRIGGERS, guard_install


def triggers_off() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {EVENTS} DISABLE TRIGGER USER")
            cursor.execute(f"ALTER TABLE {ARCHIVES} DISABLE TRIGGER USER")
        else:
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


@contextmanager
def as_superuser() -> Iterator[None]:
    """Triggers off for the block, back on after it."""
    triggers_off()
    try:
        yield
    finally:
        guard_install(connection)


def raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def rechain(from_seq: int = 1) -> None:
    """Recompute every hash from ``from_seq`` on, as a forger covering an edit would.
    Call with the triggers off."""
    from audit import canonical
    from audit.models import AuditEvent

    prev = AuditEvent.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first() or canonical.GENESIS
    for event in AuditEvent.objects.filter(seq__gte=from_seq).order_by("seq"):
        values = {name: getattr(event, name) for name in canonical.FIELDS}
        values["prev_hash"] = prev
        prev = canonical.event_hash(values)
        raw("UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", [values["prev_hash"], prev, event.id])
