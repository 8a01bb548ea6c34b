"""The request log in the Django admin: for reading only, since the ledger writer owns its rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from ledger.models import RequestLog, UsageDeadLetter


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "key_prefix",
        "model_requested",
        "model_served",
        "status",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "error_type",
    )
    list_filter = ("status", "provider_kind", "endpoint", "stream", "unpriced", "error_type")
    search_fields = ("request_id", "key_prefix", "model_requested", "session_id")
    date_hierarchy = "created_at"
    # An exact count of a large log on every page load is slow; the page works without it.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UsageDeadLetter)
class UsageDeadLetterAdmin(admin.ModelAdmin):
    """Events the writer set aside: read them, fix the cause, then delete them here."""

    list_display = ("created_at", "request_id", "error")
    search_fields = ("request_id", "error")
    readonly_fields = ("created_at", "request_id", "payload", "error")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
