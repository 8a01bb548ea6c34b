"""Verifying the audit trail in the database: the chain, its checkpoints, its guard.

``audit_verify()`` is what ``manage.py audit_verify`` prints and what the
console's audit page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS

from audit import canonical, guard, signing
from audit.anchor import anchor_check
from audit.models import AuditArchive, AuditEvent
from audit.walk import Checkpoint, Problem, Walk

_VALUES = (*canonical.FIELDS, "hash")


@dataclass(frozen=True, slots=True)
class Verification:
    intact: bool
    # The range that verified: from just after the archived range to the head.
    first_seq: int | None
    last_seq: int
    events: int
    head_hash: str
    archived_through: int
    checkpoint: Checkpoint | None
    checkpoints: int
    # Batches of request-log rows whose Merkle roots still match.
    anchors: int
    # Events after the latest checkpoint, which only the next one will cover.
    unsigned_events: int
    problem: Problem | None
    # Triggers the database should have, and whether each is in place.
    guard: dict[str, bool]

    @property
    def guarded(self) -> bool:
        return all(self.guard.values())

    def summary(self) -> str:
        if self.problem is not None:
            p = self.problem
            return f"BROKEN at seq {p.seq} ({p.kind}): {p.detail}; intact up to seq {self.last_seq}"
        if self.checkpoint is not None:
            signed = f"checkpoint signed at {canonical.time_text(self.checkpoint.signed_at)} (seq {self.checkpoint.seq}, key {self.checkpoint.key_id})"
        else:
            signed = "no signed checkpoint yet"
        start = f" (seq 1-{self.archived_through} archived)" if self.archived_through else ""
        text = f"intact up to seq {self.last_seq}, {signed}{start}"
        if not self.guarded:
            missing = ", ".join(name for name, ok in self.guard.items() if not ok)
            text += f"; WARNING: the database no longer refuses edits (missing or disabled: {missing})"
        return text


def audit_verify(*, using: str = DEFAULT_DB_ALIAS, chunk_size: int = 2000) -> Verification:
    """Walk the whole chain in seq order; stop at the first problem."""
    archive = AuditArchive.objects.using(using).order_by("-last_seq").values_list("last_seq", "last_hash").first()
    start_seq, start_hash = archive if archive is not None else (0, canonical.GENESIS)

    def lookup(hash_: str) -> int | None:
        return AuditEvent.objects.using(using).filter(hash=hash_).values_list("seq", flat=True).first()

    walk = Walk(
        prev_seq=start_seq,
        prev_hash=start_hash,
        trusted=signing.trusted_keys(),
        lookup=lookup,
        anchor_check=lambda doc: anchor_check(doc, using=using),
    )
    rows = AuditEvent.objects.using(using).order_by("seq").values(*_VALUES).iterator(chunk_size=chunk_size)
    for row in rows:
        if not walk.feed(row):
            break
    checkpoint = walk.checkpoint
    # A rewritten event is named by the one after it, which the walk had not yet accepted.
    last_seq = min(walk.prev_seq, walk.problem.seq - 1) if walk.problem is not None else walk.prev_seq
    unsigned = walk.prev_seq - checkpoint.event_seq if checkpoint is not None else walk.events
    return Verification(
        intact=walk.problem is None,
        first_seq=walk.first_seq,
        last_seq=last_seq,
        events=walk.events,
        head_hash=walk.prev_hash,
        archived_through=start_seq,
        checkpoint=checkpoint,
        checkpoints=walk.checkpoints,
        anchors=walk.anchors,
        unsigned_events=max(0, unsigned),
        problem=walk.problem,
        guard=guard.guard_status(using),
    )
