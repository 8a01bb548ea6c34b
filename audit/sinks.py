"""Exporting the audit trail to SIEMs: in seq order, at least once, no gaps.

Each sink keeps a cursor: the last seq it acknowledged. A delivery sends the
next batch after the cursor and moves the cursor only over what the sink
accepted (Elastic's bulk API may accept the first half of a batch: the
cursor stops before the first refused event). A failure leaves the cursor
where it was and waits before the next try (2, 4, 8 … up to 300 seconds),
so a sink that was down for an hour catches up, in order, when it is back.
Events are sent as the document their hash covers plus the hash, so the
proof travels with them; signed checkpoints are events too.

One deliverer at a time per sink (a lease on its row, not a database lock
held across the network call), so two workers never interleave batches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import canonical
from audit.models import AuditEvent, AuditSink, SinkKind

BATCH = 500
TIMEOUT = 10.0
LEASE = timedelta(seconds=120)
MAX_BACKOFF = 300


class SinkError(Exception):
    """The sink refused or could not be reached; ``accepted`` events at the head of the batch did land."""

    def __init__(self, message: str, accepted: int = 0) -> None:
        super().__init__(message)
        self.accepted = accepted


def event_document(row: dict[str, Any]) -> dict[str, Any]:
    doc = canonical.document(row)
    doc["hash"] = row["hash"]
    return doc


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _secret(sink: AuditSink) -> str:
    from governance.sealing import unseal

    return unseal(sink.secret_sealed)


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 300:
        raise SinkError(f"{what} answered {response.status_code}: {response.text[:300]}")


# --- one function per kind: send these documents, raise SinkError on refusal ---


def _elastic(sink: AuditSink, docs: list[dict[str, Any]], client: httpx.Client) -> None:
    index = sink.options.get("index", "tollgate-audit")
    lines = []
    for doc in docs:
        # The seq as the document id: a redelivered event overwrites itself.
        lines.append(_dumps({"index": {"_index": index, "_id": str(doc["seq"])}}))
        lines.append(_dumps(doc))
    headers = {"content-type": "application/x-ndjson"}
    if sink.secret_sealed:
        headers["authorization"] = f"ApiKey {_secret(sink)}"
    response = client.post(f"{sink.url.rstrip('/')}/_bulk", content=b"\n".join(lines) + b"\n", headers=headers)
    _check(response, "Elasticsearch")
    body = response.json()
    if not body.get("errors"):
        return
    for n, item in enumerate(body.get("items", [])):
        result = next(iter(item.values()))
        if int(result.get("status", 500)) >= 300:
            error = result.get("error") or {}
            reason = error.get("reason", "") if isinstance(error, dict) else str(error)
            raise SinkError(f"Elasticsearch refused seq {docs[n]['seq']}: {result.get('status')} {reason}", accepted=n)


def _splunk(sink: AuditSink, docs: list[dict[str, Any]], client: httpx.Client) -> None:
    base = sink.url.rstrip("/")
    channel = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tollgate-audit-sink:{sink.name}"))
    headers = {"authorization": f"Splunk {_secret(sink)}", "x-splunk-request-channel": channel}
    events = []
    for doc in docs:
        event = {
            "time": canonical.time_parse(doc["created_at"]).timestamp(),
            "source": "tollgate",
            "sourcetype": sink.options.get("sourcetype", "tollgate:audit"),
            "event": doc,
        }
        if sink.options.get("index"):
            event["index"] = sink.options["index"]
        events.append(_dumps(event))
    response = client.post(f"{base}/services/collector/event", content=b"\n".join(events), headers=headers)
    _check(response, "Splunk HEC")
    body = response.json()
    if body.get("code", 0) != 0:
        raise SinkError(f"Splunk HEC refused the batch: {body}")
    if not sink.options.get("ack") or "ackId" not in body:
        return
    # Indexer acknowledgement: the events count as delivered once Splunk says they are indexed.
    ack_id = body["ackId"]
    deadline = time.monotonic() + float(sink.options.get("ack_timeout", 10))
    while time.monotonic() < deadline:
        acks = client.post(f"{base}/services/collector/ack", json={"acks": [ack_id]}, headers=headers)
        _check(acks, "Splunk HEC ack")
        if acks.json().get("acks", {}).get(str(ack_id)):
            return
        time.sleep(0.2)
    raise SinkError(f"Splunk HEC did not acknowledge ack id {ack_id} in time")


def _datadog(sink: AuditSink, docs: list[dict[str, Any]], client: httpx.Client) -> None:
    tags = sink.options.get("tags", "")
    entries = [
        {
            "ddsource": "tollgate",
            "service": sink.options.get("service", "tollgate-audit"),
            "hostname": socket.gethostname(),
            "ddtags": tags,
            "message": _dumps(doc).decode(),
        }
        for doc in docs
    ]
    response = client.post(
        f"{sink.url.rstrip('/')}/api/v2/logs", json=entries, headers={"dd-api-key": _secret(sink)}
    )
    _check(response, "Datadog")


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>." + body), as receivers check it."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def _webhook(sink: AuditSink, docs: list[dict[str, Any]], client: httpx.Client) -> None:
    body = _dumps({"events": docs})
    stamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-tollgate-timestamp": stamp,
        "x-tollgate-signature": webhook_signature(_secret(sink), stamp, body),
    }
    _check(client.post(sink.url, content=body, headers=headers), "the webhook")


def syslog_message(doc: dict[str, Any], *, facility: int = 13, hostname: str | None = None) -> bytes:
    """One RFC 5424 message; structured data names the seq and hash."""
    severity = 5 if doc["action"].endswith(("_failed", "_throttled")) else 6
    msgid = "".join(c for c in doc["action"] if 33 <= ord(c) <= 126)[:32] or "-"
    host = (hostname or socket.gethostname())[:255] or "-"
    sd = f'[tollgate@32473 seq="{doc["seq"]}" hash="{doc["hash"]}"]'
    head = f"<{facility * 8 + severity}>1 {doc['created_at']} {host} tollgate - {msgid} {sd} "
    return head.encode() + b"\xef\xbb\xbf" + _dumps(doc)


def _syslog(sink: AuditSink, docs: list[dict[str, Any]], client: httpx.Client) -> None:
    parts = urlparse(sink.url)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or not parts.port:
        raise SinkError(f"a syslog sink's URL is tcp://host:port or tls://host:port, not {sink.url}")
    facility = int(sink.options.get("facility", 13))
    # RFC 6587 octet counting: a length before each message, so a message may hold newlines.
    frames = b"".join(
        str(len(m)).encode() + b" " + m for m in (syslog_message(d, facility=facility) for d in docs)
    )
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as raw:
            conn = raw
            if parts.scheme == "tls":
                context = ssl.create_default_context(cafile=sink.options.get("ca_file") or None)
                conn = context.wrap_socket(raw, server_hostname=parts.hostname)
            conn.sendall(frames)
            # TCP has no acknowledgement of its own: a clean close after the
            # send is as much as syslog offers.
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)
    except OSError as exc:
        raise SinkError(f"syslog at {parts.hostname}:{parts.port}: {exc}") from exc


SENDERS: dict[str, Callable[[AuditSink, list[dict[str, Any]], httpx.Client], None]] = {
    SinkKind.ELASTIC: _elastic,
    SinkKind.SPLUNK: _splunk,
    SinkKind.DATADOG: _datadog,
    SinkKind.WEBHOOK: _webhook,
    SinkKind.SYSLOG: _syslog,
}


# --- delivery ---------------------------------------------------------------


def _lease(sink: AuditSink, now: datetime, force: bool) -> bool:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    query = AuditSink.objects.filter(pk=sink.pk, is_active=True).filter(free)
    if not force:
        query = query.filter(due)
    return query.update(lease_until=now + LEASE) == 1


def sink_deliver(*, sink: AuditSink, batch: int = BATCH, force: bool = False) -> int:
    """Send the next batch after the sink's cursor. Returns events delivered (0 when
    nothing was due, leased elsewhere, or the sink refused)."""
    now = timezone.now()
    if not _lease(sink, now, force):
        return 0
    sink.refresh_from_db()
    rows = list(
        AuditEvent.objects.filter(seq__gt=sink.cursor_seq)
        .order_by("seq")
        .values(*canonical.FIELDS, "hash")[:batch]
    )
    accepted, error = len(rows), ""
    if rows:
        docs = [event_document(r) for r in rows]
        try:
            with httpx.Client(timeout=TIMEOUT) as client:
                SENDERS[sink.kind](sink, docs, client)
        except SinkError as exc:
            accepted, error = exc.accepted, str(exc)
        except httpx.HTTPError as exc:
            accepted, error = 0, f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        values: dict[str, Any] = {"lease_until": None, "last_attempt_at": now}
        if accepted:
            values["cursor_seq"] = rows[accepted - 1]["seq"]
            values["delivered"] = sink.delivered + accepted
        if error:
            failures = sink.failures + 1
            values.update(
                failures=failures,
                last_error=error[:2000],
                next_attempt_at=now + timedelta(seconds=min(MAX_BACKOFF, 2**failures)),
            )
        else:
            values.update(failures=0, last_error="", next_attempt_at=None, last_success_at=now)
        AuditSink.objects.filter(pk=sink.pk).update(**values)
    for name, value in values.items():
        setattr(sink, name, value)
    return accepted


def sink_catch_up(*, sink: AuditSink, batch: int = BATCH, force: bool = False) -> int:
    """Deliver batch after batch until the sink is level with the head or refuses."""
    total = 0
    while True:
        sent = sink_deliver(sink=sink, batch=batch, force=force)
        total += sent
        if sent < batch or sink.failures:
            return total
        force = True  # a batch just landed: the next is due now


def sinks_deliver_all() -> int:
    return sum(sink_catch_up(sink=s) for s in AuditSink.objects.filter(is_active=True))


# --- writes (audited) -------------------------------------------------------


@transaction.atomic
def sink_create(
    *, actor: Any, name: str, kind: str, url: str, secret: str = "", options: dict[str, Any] | None = None,
    from_seq: int = 0,
) -> AuditSink:
    """A new export. It starts after ``from_seq`` (0: the whole trail still in the database)."""
    from django.core.exceptions import ValidationError

    from audit.services import audit_record
    from governance.sealing import seal

    if kind not in SENDERS:
        raise ValidationError({"kind": f"One of {', '.join(SENDERS)}."})
    scheme = urlparse(url).scheme
    if (kind == SinkKind.SYSLOG) != (scheme in ("tcp", "tls")) or scheme not in ("http", "https", "tcp", "tls"):
        raise ValidationError({"url": "http(s)://… for HTTP sinks, tcp://host:port or tls://host:port for syslog."})
    if kind in (SinkKind.SPLUNK, SinkKind.DATADOG, SinkKind.WEBHOOK) and not secret:
        raise ValidationError({"secret": "This kind of sink needs its token or key."})
    sink = AuditSink.objects.create(
        name=name, kind=kind, url=url, secret_sealed=seal(secret), options=options or {}, cursor_seq=from_seq
    )
    audit_record(actor=actor, action="audit_sink.create", target=sink, after=_sink_state(sink))
    return sink


@transaction.atomic
def sink_delete(*, actor: Any, sink: AuditSink) -> None:
    from audit.services import audit_record

    audit_record(actor=actor, action="audit_sink.delete", target=sink, before=_sink_state(sink))
    sink.delete()


def _sink_state(sink: AuditSink) -> dict[str, Any]:
    # The token itself never enters the trail, only whether there is one.
    return {
        "name": sink.name, "kind": sink.kind, "url": sink.url, "options": sink.options,
        "has_secret": bool(sink.secret_sealed), "cursor_seq": sink.cursor_seq, "is_active": sink.is_active,
    }


# --- health, for the console and /metrics -------------------------------------


@dataclass(frozen=True, slots=True)
class SinkHealth:
    name: str
    kind: str
    is_active: bool
    cursor_seq: int
    head_seq: int
    lag: int
    delivered: int
    failures: int
    last_error: str
    last_success_at: datetime | None
    next_attempt_at: datetime | None

    @property
    def healthy(self) -> bool:
        return self.is_active and self.failures == 0


def sink_health() -> list[SinkHealth]:
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    return [
        SinkHealth(
            name=s.name, kind=s.kind, is_active=s.is_active, cursor_seq=s.cursor_seq, head_seq=head,
            lag=max(0, head - s.cursor_seq), delivered=s.delivered, failures=s.failures, last_error=s.last_error,
            last_success_at=s.last_success_at, next_attempt_at=s.next_attempt_at,
        )
        for s in AuditSink.objects.all()
    ]


def metrics_text() -> str:
    """Prometheus lines for the audit chain's head and every sink."""
    sinks = sink_health()
    head = sinks[0].head_seq if sinks else (AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0)
    lines = [
        "# HELP tollgate_audit_head_seq The audit chain's newest sequence number.",
        "# TYPE tollgate_audit_head_seq gauge",
        f"tollgate_audit_head_seq {head}",
    ]
    series = [
        ("tollgate_audit_sink_lag_events", "Audit events not yet acknowledged by the sink.", lambda h: h.lag),
        ("tollgate_audit_sink_cursor_seq", "The last audit seq the sink acknowledged.", lambda h: h.cursor_seq),
        ("tollgate_audit_sink_failures", "Consecutive failed deliveries to the sink (0 when healthy).", lambda h: h.failures),
        ("tollgate_audit_sink_up", "1 when the sink's last delivery succeeded and it is active.", lambda h: int(h.healthy)),
        (
            "tollgate_audit_sink_last_success_timestamp_seconds",
            "When the sink last acknowledged a delivery (0: never).",
            lambda h: int(h.last_success_at.timestamp()) if h.last_success_at else 0,
        ),
    ]
    for metric, help_text, value in series:
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        lines += [f'{metric}{{sink="{h.name}",kind="{h.kind}"}} {value(h)}' for h in sinks]
    return "\n".join(lines) + "\n"
