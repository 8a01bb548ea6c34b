"""``GET /api/v1/requests/``: the request log, filtered as the console's explorer filters it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import access
from ledger.access import report_scope
from ledger.request_log import RequestFilter, request_log_labels, request_log_rows, request_outcome


class RequestCursor(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


class RequestQuerySerializer(serializers.Serializer):
    organization = serializers.SlugField(
        required=False, help_text="Only this organization's requests."
    )
    team = serializers.SlugField(required=False, help_text="A team slug; needs organization.")
    user = serializers.CharField(required=False, max_length=150, help_text="A username.")
    key = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    model = serializers.CharField(required=False, max_length=200, help_text="Requested or served.")
    provider = serializers.CharField(required=False, max_length=100, help_text="A provider name.")
    status = serializers.RegexField(
        r"^(ok|error|refused|[1-5][0-9]{2})$", required=False,
        help_text="ok, error, refused (by Tollgate: key, budget, policy, rate limit) or an HTTP status.",
    )  # fmt: skip
    session = serializers.CharField(
        required=False, max_length=100, help_text="Claude Code's session id."
    )
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False, help_text="Exclusive.")

    class Meta:
        ref_name = "RequestLogQuery"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("team") and not attrs.get("organization"):
            raise serializers.ValidationError(
                {"team": "A team is named within an organization: give organization too."}
            )
        return attrs


class RequestRowSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    endpoint = serializers.CharField()
    organization = serializers.CharField(allow_null=True)
    team = serializers.CharField(allow_null=True)
    user = serializers.CharField(allow_null=True)
    key_id = serializers.IntegerField(allow_null=True)
    key_prefix = serializers.CharField()
    key_name = serializers.CharField(allow_null=True)
    model_requested = serializers.CharField()
    model_served = serializers.CharField()
    provider = serializers.CharField(allow_null=True)
    status = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=("ok", "error", "refused"))
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=10)
    latency_ms = serializers.FloatField()
    ttfb_ms = serializers.FloatField(allow_null=True)
    overhead_ms = serializers.FloatField()
    session_id = serializers.CharField()
    error_type = serializers.CharField()

    class Meta:
        ref_name = "RequestLogRow"


def request_rows_out(rows: list[Any]) -> list[dict[str, Any]]:
    labels = request_log_labels(rows)
    return [
        {
            **{f: getattr(r, f) for f in RequestRowSerializer().fields if hasattr(r, f)},
            "organization": labels["organizations"].get(r.organization_id),
            "team": labels["teams"].get(r.team_id),
            "user": labels["users"].get(r.user_id),
            "key_name": labels["keys"].get(r.key_id),
            "provider": labels["providers"].get(r.provider_id),
            "outcome": request_outcome(r),
        }
        for r in rows
    ]


class RequestsApi(APIView):
    pagination_class = RequestCursor

    @extend_schema(parameters=[RequestQuerySerializer], responses=RequestRowSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = RequestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        org = None
        if v.get("organization"):
            org = access.organization_access(
                user=request.user, slug=v["organization"], field="organization"
            ).organization
        flt = RequestFilter(
            organization=org, team=v.get("team"), user=v.get("user"), key=v.get("key"), model=v.get("model"),
            provider=v.get("provider"), status=v.get("status"), session=v.get("session"),
            since=v.get("since"), until=v.get("until"),
        )  # fmt: skip
        scope = report_scope(user=request.user, organization=v.get("organization"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            request_log_rows(scope=scope, flt=flt), request, view=self
        )
        data = RequestRowSerializer(request_rows_out(page), many=True).data
        return paginator.get_paginated_response(data)
