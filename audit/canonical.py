"""The one serialisation an audit event's hash is computed over.

Pure Python, no Django: an auditor's machine verifies an archive with this
module alone (``python -m audit.offline``), so it must not change meaning
without a new ``VERSION``.

Every field an event carries is covered, in a fixed order of keys, with
values normalised so that what the database gives back hashes the same as
what was written: times in UTC to the microsecond, IP addresses in their
compressed form, integral floats as integers (PostgreSQL's jsonb keeps
``1e20`` as ``100000000000000000000``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

VERSION = 1
GENESIS = "0" * 64

# Everything but the hash itself; prev_hash is what makes it a chain.
FIELDS = (
    "seq",
    "prev_hash",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "request_id",
    "ip",
    "user_agent",
)


def time_text(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def ip_text(value: str | None) -> str | None:
    if not value:
        return None
    address = ipaddress.ip_address(value)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def json_value(value: Any) -> Any:
    """A JSON document as the database will hand it back."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("audit documents hold no NaN or infinity")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"an audit document cannot hold {type(value).__name__}")


def document(values: dict[str, Any]) -> dict[str, Any]:
    """The covered fields of one event as plain JSON values."""
    doc = {name: values.get(name) for name in FIELDS}
    created = doc["created_at"]
    doc["created_at"] = time_text(created) if isinstance(created, datetime) else created
    doc["ip"] = ip_text(doc["ip"])
    doc["before"] = json_value(doc["before"])
    doc["after"] = json_value(doc["after"])
    for name in ("actor_label", "action", "target_type", "target_id", "target_label", "request_id", "user_agent"):
        doc[name] = doc[name] or ""
    doc["v"] = VERSION
    return doc


def serialise(values: dict[str, Any]) -> bytes:
    return json.dumps(
        document(values), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def event_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(serialise(values)).hexdigest()


def checkpoint_message(*, seq: int, head_hash: str, signed_at: str) -> bytes:
    """What a checkpoint's Ed25519 signature covers: the head of the chain at a time."""
    return f"tollgate-audit-checkpoint/v{VERSION}\n{seq}\n{head_hash}\n{signed_at}\n".encode()


def key_id(public_key_b64: str) -> str:
    """A short name for an Ed25519 public key (base64 of its raw bytes), printed beside checkpoints."""
    return hashlib.sha256(base64.b64decode(public_key_b64)).hexdigest()[:16]


def merkle_root(leaves: list[str]) -> str:
    """Root over hex leaf hashes; an odd node is carried up unpaired (no duplication,
    so two different batches cannot share a root by repeating their last row)."""
    if not leaves:
        return GENESIS
    level = [bytes.fromhex(leaf) for leaf in leaves]
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def leaf_hash(row: dict[str, Any]) -> str:
    """A request-log row as a Merkle leaf (domain-separated from inner nodes)."""
    body = json.dumps(json_value(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(b"\x00" + body).hexdigest()
