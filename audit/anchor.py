"""Request-log rows anchored into the audit chain, a Merkle root per batch.

"Who called which model when" lives in the request log (ledger.RequestLog),
far too many rows for one audit event each. Instead, batches of persisted
rows, in id order, are hashed into a Merkle root that is appended to the
chain as a ``ledger.anchor`` event naming the id range and the row count:
a row edited or deleted afterwards no longer matches its batch's root, and
``audit_verify`` says which batch.

Ids are handed out when a row is inserted, not when it commits, so a batch
may only end at an id below which nothing is still uncommitted. The log
writer's transactions take a shared lock (``anchor_writer_lock``) and the
anchorer an exclusive one before reading: while it holds it no writer is in
flight, so every id up to the highest it sees is committed and visible.
On SQLite the database's single write lock gives the same guarantee.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from audit import canonical
from audit.chain import chain_append
from audit.models import AuditEvent

ANCHOR = "ledger.anchor"
BATCH = 1000
# pg_advisory lock key shared by the log writer (shared) and the anchorer (exclusive).
LOCK_KEY = int.from_bytes(b"tganchor", "big") & 0x7FFFFFFFFFFFFFFF


def anchor_writer_lock() -> None:
    """Taken by every transaction that inserts request-log rows, before it inserts."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOCK_KEY])


def _exclusive() -> None:
    connection = transaction.get_connection()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        else:
            cursor.execute("UPDATE audit_auditevent SET seq = seq WHERE 0")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        # numeric(18,10) on PostgreSQL and SQLite's quantised text agree in fixed notation.
        return format(value, "f")
    if hasattr(value, "tzinfo"):
        return canonical.time_text(value)
    return value


def row_leaf(row: dict[str, Any]) -> str:
    return canonical.leaf_hash({name: _plain(value) for name, value in row.items()})


def _rows(first_id: int, last_id: int, using: str = "default") -> list[dict[str, Any]]:
    from ledger.models import RequestLog

    return list(RequestLog.objects.using(using).filter(id__gte=first_id, id__lte=last_id).order_by("id").values())


def anchored_through() -> int:
    """The highest request-log id already anchored (0 before the first batch)."""
    last = AuditEvent.objects.filter(action=ANCHOR).order_by("-seq").values_list("after", flat=True).first()
    return int(last["last_id"]) if last else 0


def request_log_anchor(*, batch: int = BATCH) -> AuditEvent | None:
    """Anchor the next batch of committed request-log rows; None when there is none."""
    from ledger.models import RequestLog

    with transaction.atomic():
        _exclusive()
        start = anchored_through()
        ids = list(RequestLog.objects.filter(id__gt=start).order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return None
        first_id, last_id = ids[0], ids[-1]
        rows = _rows(first_id, last_id)
        root = canonical.merkle_root([row_leaf(r) for r in rows])
        return chain_append(
            actor_id=None,
            actor_label="system",
            action=ANCHOR,
            target_type="ledger.requestlog",
            target_id=f"{first_id}-{last_id}",
            target_label=f"request log rows {first_id}-{last_id}",
            after={
                "first_id": first_id,
                "last_id": last_id,
                "rows": len(rows),
                "root": root,
                "from_created_at": canonical.time_text(rows[0]["created_at"]),
                "to_created_at": canonical.time_text(rows[-1]["created_at"]),
            },
        )


def request_log_anchor_all(*, batch: int = BATCH) -> int:
    """Anchor every committed row not yet anchored, one transaction per batch."""
    done = 0
    while request_log_anchor(batch=batch) is not None:
        done += 1
    return done


def anchor_check(doc: dict[str, Any], *, using: str = "default") -> str | None:
    """What is wrong with the rows an anchor event names, or None when they still match."""
    rows = _rows(int(doc["first_id"]), int(doc["last_id"]), using)
    if len(rows) != int(doc["rows"]):
        return f"{int(doc['rows']) - len(rows)} row(s) gone" if len(rows) < int(doc["rows"]) else (
            f"{len(rows) - int(doc['rows'])} row(s) more than were anchored"
        )
    if canonical.merkle_root([row_leaf(r) for r in rows]) != doc["root"]:
        return "a row's content changed since it was anchored"
    return None
