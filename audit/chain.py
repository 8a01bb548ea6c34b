"""Appending to the hash chain: one writer at a time, inside the caller's transaction.

The lock is held until the caller's transaction ends, so the next writer
reads the head only after this one has committed (or rolled back, leaving
the head where it was). PostgreSQL: a transaction-scoped advisory lock.
SQLite: the database's single write lock, which Tollgate's connections take
at BEGIN (``transaction_mode: IMMEDIATE``); a no-op write takes it otherwise.
The unique ``seq`` is the last line of defence: a second writer that somehow
read the same head fails instead of forking the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from audit import canonical
from audit.models import AuditArchive, AuditEvent

# pg_advisory_xact_lock's key: the ASCII of "tgaudit" as a number, so other
# advisory users of the same database are unlikely to collide with it.
LOCK_KEY = int.from_bytes(b"tgaudit", "big")

_LIMITS = {
    f.name: f.max_length for f in AuditEvent._meta.get_fields() if getattr(f, "max_length", None)
}


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str


def chain_lock(connection: BaseDatabaseWrapper | None = None) -> None:
    connection = connection or transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("the audit chain is appended to inside the changing transaction")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        else:
            # Touches no row (so no trigger fires) but makes this a write transaction.
            cursor.execute("UPDATE audit_auditevent SET seq = seq WHERE 0")


def chain_head() -> Head:
    """The last event, or where retention left the chain, or the genesis. Call under chain_lock."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    if head is not None:
        return Head(*head)
    archived = AuditArchive.objects.order_by("-last_seq").values_list("last_seq", "last_hash").first()
    if archived is not None:
        return Head(*archived)
    return Head(0, canonical.GENESIS)


def chain_append(
    *,
    actor_id: int | None,
    actor_label: str,
    action: str,
    target_type: str,
    target_id: str,
    target_label: str = "",
    before: Any = None,
    after: Any = None,
    request_id: str = "",
    ip: str | None = None,
    user_agent: str = "",
) -> AuditEvent:
    chain_lock()
    head = chain_head()
    values: dict[str, Any] = {
        "seq": head.seq + 1,
        "prev_hash": head.hash,
        # Stamped under the lock, so time never goes backwards along the chain.
        "created_at": timezone.now(),
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "before": canonical.json_value(before),
        "after": canonical.json_value(after),
        "request_id": request_id,
        "ip": canonical.ip_text(ip),
        "user_agent": user_agent,
    }
    # What the columns can hold is what gets hashed: SQLite would keep a longer
    # string that PostgreSQL refuses, and the two must agree.
    for name, limit in _LIMITS.items():
        if isinstance(values.get(name), str):
            values[name] = values[name][:limit]
    values["hash"] = canonical.event_hash(values)
    return AuditEvent.objects.create(**values)
