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
    route_id = models.BigIntegerField(null=True)
    # 1 when the first attempt answered; more after retries or fallbacks.
    attempts = models.PositiveSmallIntegerField(default=1)
    fallback = models.BooleanField(default=False)
    stream = models.BooleanField(default=False)
    status = models.IntegerField()
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    # Of the cache writes, those kept for an hour (billed at the 1-hour rate).
    cache_write_1h_tokens = models.BigIntegerField(default=0)
    web_search_requests = models.BigIntegerField(default=0)
    # Billed at the model's long-context tier (the prompt was over its threshold).
    long_context = models.BooleanField(default=False)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    unpriced = models.BooleanField(default=False)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True)
    overhead_ms = models.FloatField(default=0)
    error_type = models.CharField(max_length=60, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    client_disconnected = models.BooleanField(default=False)
    session_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    # The Claude Code subagent (Task/Agent tool) that made the request, from its
    # x-claude-code-agent-id header; "" for the session's main loop.
    agent_id = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=300, blank=True, default="")
    # MCP tool calls (endpoint "mcp_tool_call"): which server and tool, and the
    # JSON-RPC bytes each way; empty and 0 for model traffic.
    mcp_server = models.CharField(max_length=40, blank=True, default="", db_index=True)
    mcp_tool = models.CharField(max_length=200, blank=True, default="")
    request_bytes = models.BigIntegerField(default=0)
    response_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # An organization's rows of a time window (today's spend, the last
            # hour, the explorer's default day) without reading its whole history.
            models.Index(fields=["organization_id", "created_at"], name="request_log_org_time"),
            # A key's latest rows (the keys page's last use).
            models.Index(fields=["key_id", "created_at"], name="request_log_key_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_requested} {self.status}"


class DailyUsage(models.Model):
    """Spend per UTC day × organization × team × user × key × model, recomputed from RequestLog.

    A derived table: ``ledger.services.usage_rollup`` rewrites a whole day at
    a time, so it can always be rebuilt from the log. "None" is stored as 0 in
    the id columns: NULLs are distinct in a unique constraint on SQLite (and on
    PostgreSQL before 15), and database ids start at 1.
    """

    day = models.DateField()
    organization_id = models.BigIntegerField(default=0)
    team_id = models.BigIntegerField(default=0)
    user_id = models.BigIntegerField(default=0)
    key_id = models.BigIntegerField(default=0)
    # The served model, or the requested one when nothing was served.
    model = models.CharField(max_length=200, blank=True, default="")
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)
    web_search_requests = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    unpriced_requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    # Of the errors, those Tollgate refused itself before asking a provider
    # (ledger.aggregates.IS_REFUSAL): finance counts them apart.
    refusals = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "organization_id", "team_id", "user_id", "key_id", "model"],
                name="daily_usage_one_row_per_group",
            )
        ]
        indexes = [
            models.Index(fields=["organization_id", "day"], name="daily_usage_org_day"),
            # The last day a key was used, for keys idle longer than the log is read.
            models.Index(fields=["key_id", "day"], name="daily_usage_key_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} org {self.organization_id} {self.model}"


class RollupState(models.Model):
    """When each day was last rolled up, so reports know which days the roll-up covers."""

    day = models.DateField(unique=True)
    rolled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.day} rolled at {self.rolled_at:%Y-%m-%d %H:%M:%S}"


class RollupCursor(models.Model):
    """How far the late-row sweep has read the request log by id (a single row).

    The writer stamps rows with the event's time, not the insert time, so a row
    replayed hours later lands in a day already rolled up; ids, though, only grow.
    """

    # The highest id seen by the previous sweep and by the one before it. A
    # sweep rescans from the older mark, so a writer transaction that took its
    # ids before a sweep but committed after it is still seen by the next one.
    seen_id = models.BigIntegerField(default=0)
    rescan_from_id = models.BigIntegerField(default=0)
    swept_at = models.DateTimeField(null=True)


class UsageDeadLetter(models.Model):
    """A usage event the request log could not take (a value no column holds),
    kept aside so the rest of its batch lands and nobody edits the queue by hand.
    Counted in the control plane's /metrics and listed for admins."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    # The event as received, NUL and other unstorable characters escaped.
    payload = models.TextField()
    error = models.TextField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.request_id or '?'}: {self.error[:80]}"
