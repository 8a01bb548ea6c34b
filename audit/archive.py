"""Old audit events moved to S3-compatible storage, with the proof beside them.

After ``TOLLGATE_AUDIT_ARCHIVE_DAYS`` (default 90) events leave the database
for the bucket named by ``TOLLGATE_AUDIT_ARCHIVE_URL`` (``s3://bucket/prefix``;
``TOLLGATE_AUDIT_ARCHIVE_ENDPOINT_URL`` for MinIO, Ceph and other S3-compatible
stores; credentials as every AWS client reads them). Each part is two objects:

- ``<first>-<last>.jsonl``: one event per line, exactly the document its hash
  covers (audit/canonical.py) plus the hash;
- ``<first>-<last>.manifest.json``: the range, the hash the part continues
  from and the one it ends with, the SHA-256 of the JSONL file, signed with
  the checkpoint key.

The database records the moved range (AuditArchive) in the same transaction
that removes it, so the chain left behind still verifies, and an auditor
checks the parts with ``python -m audit.offline DIR`` without any database.
Parts older than ``TOLLGATE_AUDIT_RETENTION_DAYS`` (default 365) are deleted
from the bucket by the retention task, on the record too.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from audit import canonical, signing
from audit.chain import chain_append, chain_head, chain_lock
from audit.models import AuditArchive, AuditEvent
from audit.offline import FORMAT, manifest_bytes

PART_EVENTS = 10_000


def event_line(row: dict[str, Any]) -> bytes:
    doc = canonical.document(row)
    doc["hash"] = row["hash"]
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True)
class S3Store:
    """One bucket and key prefix on an S3-compatible store, through botocore."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str = "us-east-1"

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None, region: str = "us-east-1") -> S3Store:
        parts = urlparse(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ImproperlyConfigured(f"TOLLGATE_AUDIT_ARCHIVE_URL must look like s3://bucket/prefix, not {url!r}")
        prefix = parts.path.lstrip("/")
        return cls(parts.netloc, prefix + ("/" if prefix and not prefix.endswith("/") else ""), endpoint_url, region)

    def _client(self) -> Any:
        import botocore.session

        return botocore.session.get_session().create_client("s3", endpoint_url=self.endpoint_url, region_name=self.region)

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def put(self, name: str, body: bytes, content_type: str) -> None:
        self._client().put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body, ContentType=content_type)

    def get(self, name: str) -> bytes:
        return self._client().get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()

    def names(self) -> list[str]:
        client, names, token = self._client(), [], None
        while True:
            kwargs = {"Bucket": self.bucket, "Prefix": self.prefix, **({"ContinuationToken": token} if token else {})}
            page = client.list_objects_v2(**kwargs)
            names += [o["Key"][len(self.prefix) :] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(names)
            token = page["NextContinuationToken"]

    def delete(self, name: str) -> None:
        self._client().delete_object(Bucket=self.bucket, Key=self.prefix + name)


def archive_store() -> S3Store | None:
    if not settings.AUDIT_ARCHIVE_URL:
        return None
    return S3Store.from_url(
        settings.AUDIT_ARCHIVE_URL,
        endpoint_url=settings.AUDIT_ARCHIVE_ENDPOINT_URL or None,
        region=settings.AUDIT_ARCHIVE_REGION,
    )


def range_remove(*, actor: Any, action: str, first_seq: int, last_seq: int, location: str = "", manifest_sha256: str = "", extra: dict[str, Any] | None = None) -> AuditArchive:
    """Record seq first..last as gone, remove it, and say so on the chain. Under chain_lock."""
    from audit import guard

    last_hash = AuditEvent.objects.filter(seq=last_seq).values_list("hash", flat=True).get()
    archive = AuditArchive.objects.create(
        first_seq=first_seq,
        last_seq=last_seq,
        last_hash=last_hash,
        events=AuditEvent.objects.filter(seq__gte=first_seq, seq__lte=last_seq).count(),
        location=location,
        manifest_sha256=manifest_sha256,
    )
    connection = transaction.get_connection()
    with guard.retention_window(connection):
        AuditEvent.objects.filter(seq__lte=last_seq).delete()
    actor_id, actor_label = (actor.pk, actor.get_username()) if getattr(actor, "pk", None) else (None, str(actor or "system"))
    chain_append(
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        target_type="audit.archive",
        target_id=str(archive.pk),
        target_label=str(archive),
        after={
            "first_seq": archive.first_seq,
            "last_seq": archive.last_seq,
            "last_hash": archive.last_hash,
            "events": archive.events,
            "location": location,
            "manifest_sha256": manifest_sha256,
            **(extra or {}),
        },
    )
    return archive


def _next_range(cutoff: Any, limit: int) -> tuple[int, int] | None:
    first = AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first()
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    if first is None:
        return None
    young = AuditEvent.objects.filter(created_at__gte=cutoff).order_by("seq").values_list("seq", flat=True).first()
    # Never the head: the chain must go on from an event still in the database.
    last = min((young - 1) if young is not None else head, head - 1, first + limit - 1)
    return (first, last) if last >= first else None


def audit_archive(*, store: S3Store | None = None, older_than: timedelta | None = None, part_events: int = PART_EVENTS) -> AuditArchive | None:
    """Move the oldest part of the chain past the archive age to storage; None when there is none."""
    store = store or archive_store()
    if store is None:
        raise ImproperlyConfigured("TOLLGATE_AUDIT_ARCHIVE_URL is not set")
    key = signing.signing_key()
    if key is None:
        raise ImproperlyConfigured("archives are signed: TOLLGATE_AUDIT_SIGNING_KEY is not set")
    older_than = older_than if older_than is not None else timedelta(days=settings.AUDIT_ARCHIVE_DAYS)
    span = _next_range(timezone.now() - older_than, part_events)
    if span is None:
        return None
    first, last = span
    # Events in the range can no longer change (the database refuses), so they
    # are read and uploaded without holding up writers; only the removal locks.
    rows = list(AuditEvent.objects.filter(seq__gte=first, seq__lte=last).order_by("seq").values(*canonical.FIELDS, "hash"))
    body = b"".join(event_line(r) for r in rows)
    name = f"{first:012d}-{last:012d}"
    public = signing.public_key_text(key.public_key())
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "first_seq": first,
        "last_seq": last,
        "events": len(rows),
        "prev_hash": rows[0]["prev_hash"],
        "last_hash": rows[-1]["hash"],
        "first_created_at": canonical.time_text(rows[0]["created_at"]),
        "last_created_at": canonical.time_text(rows[-1]["created_at"]),
        "events_file": f"{name}.jsonl",
        "events_sha256": hashlib.sha256(body).hexdigest(),
        "archived_at": canonical.time_text(timezone.now()),
        "public_key": public,
        "key_id": canonical.key_id(public),
    }
    manifest["signature"] = base64.b64encode(key.sign(manifest_bytes(manifest))).decode()
    manifest_body = json.dumps(manifest, sort_keys=True, indent=1).encode() + b"\n"
    store.put(f"{name}.jsonl", body, "application/x-ndjson")
    store.put(f"{name}.manifest.json", manifest_body, "application/json")
    with transaction.atomic():
        chain_lock()
        # Another archiver got there first: its range stands, this upload is a copy of it.
        if AuditEvent.objects.filter(seq=first).exists() is False or chain_head().seq <= last:
            return None
        return range_remove(
            actor="archive",
            action="audit.archive",
            first_seq=first,
            last_seq=last,
            location=store.url(f"{name}.manifest.json"),
            manifest_sha256=hashlib.sha256(manifest_body).hexdigest(),
        )


def audit_archive_all(*, store: S3Store | None = None, older_than: timedelta | None = None) -> int:
    parts = 0
    while audit_archive(store=store, older_than=older_than) is not None:
        parts += 1
    return parts


def audit_archive_expire(*, store: S3Store | None = None, older_than: timedelta | None = None) -> list[str]:
    """Delete archived parts whose newest event is past retention, on the record."""
    store = store or archive_store()
    if store is None:
        return []
    older_than = older_than if older_than is not None else timedelta(days=settings.AUDIT_RETENTION_DAYS)
    cutoff = canonical.time_text(timezone.now() - older_than)
    expired = []
    for name in store.names():
        if not name.endswith(".manifest.json"):
            continue
        manifest = json.loads(store.get(name))
        if manifest["last_created_at"] < cutoff:
            store.delete(manifest["events_file"])
            store.delete(name)
            expired.append(name)
    if expired:
        with transaction.atomic():
            chain_append(
                actor_id=None,
                actor_label="retention",
                action="audit.archive_expire",
                target_type="audit.archive",
                target_id=store.url(""),
                target_label=f"{len(expired)} archived part(s) past retention",
                after={"parts": expired, "older_than_days": older_than.total_seconds() / 86400},
            )
    return expired
