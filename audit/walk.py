"""Walking a chain of audit events in seq order and naming the first thing wrong.

Pure Python (plus ``cryptography`` for checkpoint signatures), so that the
database verifier (audit/verify.py) and the offline archive verifier
(audit/offline.py) share one judgement.

What is wrong, and where:
- ``missing``: a seq is absent (deleted rows);
- ``changed``: an event's content no longer matches its hash, or an event was
  rewritten with a fresh hash (the next event, or a signed checkpoint, still
  names the old one);
- ``reordered``: an event sits at a position other than the one it was
  chained at;
- ``checkpoint``: a checkpoint whose signature is not valid, or made by a key
  nobody trusts;
- ``anchor``: request-log rows that no longer match the Merkle root their
  batch was anchored with (edited, deleted or slipped in).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import canonical

CHECKPOINT = "audit.checkpoint"
ANCHOR = "ledger.anchor"
# How far from its position a moved event is looked for before calling it changed.
REORDER_WINDOW = 512


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    signed_at: datetime
    key_id: str
    event_seq: int


@dataclass(slots=True)
class Walk:
    """State of one walk: feed rows in seq order, stop at the first problem."""

    prev_seq: int = 0
    prev_hash: str = canonical.GENESIS
    # Public keys (base64 of raw bytes) whose checkpoints count; None trusts any
    # valid signature (an offline check given no key still proves consistency).
    trusted: dict[str, Ed25519PublicKey] | None = None
    # Finds the seq of the event with a given hash, to tell a reorder from an edit.
    lookup: Callable[[str], int | None] = lambda _hash: None
    # Checks what a request-log anchor names against the rows (None: not checked, as offline).
    anchor_check: Callable[[dict[str, Any]], str | None] | None = None
    events: int = 0
    first_seq: int | None = None
    checkpoint: Checkpoint | None = None
    checkpoints: int = 0
    anchors: int = 0
    problem: Problem | None = None

    def feed(self, row: dict[str, Any]) -> bool:
        """Check one row; False once a problem is found (and stored in ``problem``)."""
        if self.problem is not None:
            return False
        seq = int(row["seq"])
        expected = self.prev_seq + 1
        if seq != expected:
            if seq > expected:
                gap = f"seq {expected}" if seq == expected + 1 else f"seq {expected}-{seq - 1}"
                self.problem = Problem(expected, "missing", f"{gap} missing: seq {seq} follows seq {self.prev_seq}")
            else:
                self.problem = Problem(seq, "reordered", f"seq {seq} appears after seq {self.prev_seq}")
            return False
        recomputed = canonical.event_hash(row)
        if recomputed != row["hash"]:
            self.problem = self._reorder(row, hash_ok=False) or Problem(
                seq, "changed", f"seq {seq}: its content does not match its hash (edited after it was written)"
            )
            return False
        if row["prev_hash"] != self.prev_hash:
            self.problem = self._reorder(row, hash_ok=True) or self._rewritten_before(row)
            return False
        if row["action"] == CHECKPOINT and not self._checkpoint(row):
            return False
        if row["action"] == ANCHOR and self.anchor_check is not None:
            wrong = self.anchor_check(row.get("after") or {})
            if wrong is not None:
                doc = row.get("after") or {}
                self.problem = Problem(
                    seq, "anchor", f"seq {seq}: request log rows {doc.get('first_id')}-{doc.get('last_id')}: {wrong}"
                )
                return False
            self.anchors += 1
        if self.first_seq is None:
            self.first_seq = seq
        self.prev_seq, self.prev_hash = seq, row["hash"]
        self.events += 1
        return True

    def _reorder(self, row: dict[str, Any], *, hash_ok: bool) -> Problem | None:
        seq = int(row["seq"])
        after = self.lookup(row["prev_hash"]) if row["prev_hash"] != self.prev_hash else None
        if hash_ok:
            # Consistent in itself, but chained after some other event.
            if after is not None and after != seq - 1:
                return Problem(seq, "reordered", f"seq {seq} was chained after seq {after}, not after seq {seq - 1}")
            return None
        # The hash covers seq: an event moved to another position hashes right
        # only at the seq it was written as. Look near, and where its link points.
        candidates = [after + 1] if after is not None else []
        candidates += [s for s in range(max(1, seq - REORDER_WINDOW), seq + REORDER_WINDOW + 1) if s != seq]
        for written_as in candidates:
            if canonical.event_hash({**row, "seq": written_as}) == row["hash"]:
                return Problem(seq, "reordered", f"seq {seq} holds the event written as seq {written_as}")
        return None

    def _rewritten_before(self, row: dict[str, Any]) -> Problem:
        seq = int(row["seq"])
        if self.events == 0:
            return Problem(
                seq, "changed", f"seq {seq} does not continue from seq {self.prev_seq} (the archived range's last hash)"
            )
        return Problem(
            seq - 1,
            "changed",
            f"seq {seq - 1} was rewritten: its hash is not the one seq {seq} was chained to",
        )

    def _checkpoint(self, row: dict[str, Any]) -> bool:
        seq = int(row["seq"])
        doc = row.get("after") or {}
        try:
            signed_seq, signed_hash = int(doc["seq"]), str(doc["hash"])
            signed_at, public_text, signature = str(doc["signed_at"]), str(doc["public_key"]), str(doc["signature"])
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_text))
            public.verify(
                base64.b64decode(signature),
                canonical.checkpoint_message(seq=signed_seq, head_hash=signed_hash, signed_at=signed_at),
            )
            when = canonical.time_parse(signed_at)
        except (KeyError, TypeError, ValueError, binascii.Error, InvalidSignature):
            self.problem = Problem(seq, "checkpoint", f"seq {seq}: the checkpoint's signature is not valid")
            return False
        if self.trusted is not None and public_text not in self.trusted:
            self.problem = Problem(seq, "checkpoint", f"seq {seq}: the checkpoint is signed by a key that is not trusted")
            return False
        if signed_seq != self.prev_seq or signed_hash != self.prev_hash:
            self.problem = Problem(
                signed_seq,
                "changed",
                f"history up to seq {signed_seq} was rewritten: the checkpoint signed at {signed_at} "
                f"names hash {signed_hash[:16]}…, the chain now has {self.prev_hash[:16]}…",
            )
            return False
        self.checkpoint = Checkpoint(signed_seq, signed_hash, when, canonical.key_id(public_text), seq)
        self.checkpoints += 1
        return True
