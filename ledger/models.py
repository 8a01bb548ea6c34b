from __future__ import annotations

from django.db import models


class RequestLog(models.Model):
    """One row per proxied request, written by the ledger writer from usage events.

    Identities are plain ids, not foreign keys: the log outlives keys and teams,
    and the writer must never fail a batch over a row deleted meanwhile.
    """

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=40)
    key_id = models.BigIntegerField(null=True, db_index=True)
    key_prefix = models.CharField(max_length=32, blank=True, default="")
    user_id = models.BigIntegerField(null=True, db_index=True)
    team_id = models.BigIntegerField(null=True, db_index=True)
    organization_id = models.BigIntegerField(null=True, db_index=True)
    model_requested = models.CharField(max_length=200, blank=True, default="")
    model_served = models.CharField(max_length=200, blank=True, default="")
    provider_id = models.BigIntegerField(null=True)
    provider_kind = models.CharField(max_length=30, blank=True, default="")
    stream = models.BooleanField(default=False)
    status = models.IntegerField()
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    unpriced = models.BooleanField(default=False)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True)
    overhead_ms = models.FloatField(default=0)
    error_type = models.CharField(max_length=60, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    client_disconnected = models.BooleanField(default=False)
    session_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_requested} {self.status}"
