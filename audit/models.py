from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One policy change or security-relevant act, written in the changing transaction.

    Rows form a hash chain (audit/chain.py): ``seq`` counts from 1 without gaps,
    ``prev_hash`` is the previous event's ``hash``, and ``hash`` covers every
    other field (audit/canonical.py). The database refuses UPDATE and DELETE on
    this table (audit/guard.py); old rows leave only through retention, which
    records what it removed in AuditArchive.
    """

    seq = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # No database constraint and no cascade: deleting a user must never have to
    # rewrite history (SET NULL would be an UPDATE the database refuses).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # Kept apart from the FK so the record still names the actor after the user is gone.
    actor_label = models.CharField(max_length=200, blank=True, default="")
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=100)
    target_label = models.CharField(max_length=300, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_label}"


class AuditArchive(models.Model):
    """A range of the chain removed by retention: the chain resumes after ``last_seq``
    from ``last_hash``, so what remains still verifies. Append-only like the events."""

    created_at = models.DateTimeField(default=timezone.now)
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField(unique=True)
    last_hash = models.CharField(max_length=64)
    events = models.BigIntegerField()
    # Where the removed events were written first (an S3 URL), empty when they
    # were only deleted; and the SHA-256 of that archive's manifest.
    location = models.CharField(max_length=500, blank=True, default="")
    manifest_sha256 = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-last_seq"]

    def __str__(self) -> str:
        return f"seq {self.first_seq}-{self.last_seq} removed {self.created_at:%Y-%m-%d}"


class SinkKind(models.TextChoices):
    ELASTIC = "elastic", "Elasticsearch (bulk API)"
    SPLUNK = "splunk", "Splunk HTTP Event Collector"
    DATADOG = "datadog", "Datadog logs"
    WEBHOOK = "webhook", "Webhook (HMAC-signed)"
    SYSLOG = "syslog", "Syslog (RFC 5424 over TCP or TLS)"


class AuditSink(models.Model):
    """A SIEM the audit trail is exported to, in seq order, at least once.

    ``cursor_seq`` is the last event the sink has acknowledged: delivery
    resumes after it, so a sink that was down catches up in order with nothing
    missing. Only the delivery loop (audit/sinks.py) moves it.
    """

    name = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=20, choices=SinkKind.choices)
    # http(s)://… for the HTTP kinds; tcp://host:port or tls://host:port for syslog.
    url = models.CharField(max_length=500)
    # The API key, HEC token or HMAC secret (Fernet, governance/sealing.py).
    secret_sealed = models.TextField(blank=True, default="")
    # Per kind: index (elastic, splunk), sourcetype and ack (splunk), tags (datadog), facility (syslog).
    options = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    cursor_seq = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    failures = models.IntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # One deliverer at a time per sink, so events leave in order.
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"
