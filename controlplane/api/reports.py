"""Spend reports for finance and for people watching their own: JSON, or CSV to download."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import audit_note
from governance.access import organization_access
from ledger.access import report_scope
from ledger.selectors import (
    FOCUS_COLUMNS,
    FOCUS_VERSION,
    GROUP_BY,
    CostReport,
    cost_report,
    focus_export,
    report_dimensions,
    session_agents,
)

MAX_DAYS = 366


class ReportInputSerializer(serializers.Serializer):
    group_by = serializers.CharField(
        default="organization",
        max_length=40,
        help_text=f"One of {', '.join(GROUP_BY)}, or two of them joined by a comma (team,model).",
    )
    organization = serializers.SlugField(
        required=False, default=None, help_text="Only this organization's spend."
    )
    format = serializers.ChoiceField(
        choices=("json", "csv"), default="json", help_text="csv answers with a file to download."
    )

    class Meta:
        ref_name = "CostReportQuery"

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so the date range is declared here.
        fields = super().get_fields()
        fields["from"] = serializers.DateField(
            required=False,
            source="start",
            help_text="First UTC day; by default the first of the month of 'to', or of this month.",
        )
        fields["to"] = serializers.DateField(
            required=False,
            source="end",
            help_text="Last UTC day, inclusive; by default the last of the month of 'from', or of this month.",
        )
        return fields

    def validate_group_by(self, value: str) -> str:
        try:
            return ",".join(report_dimensions(value))
        except ValueError:
            raise serializers.ValidationError(
                f"Group by one of {', '.join(GROUP_BY)}, or two different ones joined by a comma."
            ) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A missing bound falls in the month of the other one, else this month.
        anchor: date = attrs.get("start") or attrs.get("end") or timezone.now().date()
        first = anchor.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        start: date = attrs.get("start") or first
        end: date = attrs.get("end") or last
        if end < start:
            raise serializers.ValidationError({"to": "Must not be before 'from'."})
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"to": f"A report covers at most {MAX_DAYS} days."})
        return {**attrs, "start": start, "end": end}


class SessionReportInputSerializer(ReportInputSerializer):
    group_by = None  # always by session

    class Meta:
        ref_name = "SessionReportQuery"


class ReportRowSerializer(serializers.Serializer):
    """One group's spend; which identifying fields appear depends on group_by."""

    organization_id = serializers.IntegerField(required=False, allow_null=True)
    organization = serializers.CharField(required=False, allow_null=True)
    organization_name = serializers.CharField(required=False, allow_null=True)
    team_id = serializers.IntegerField(required=False, allow_null=True)
    team = serializers.CharField(required=False, allow_null=True)
    team_name = serializers.CharField(required=False, allow_null=True)
    user_id = serializers.IntegerField(required=False, allow_null=True)
    username = serializers.CharField(required=False, allow_null=True)
    key_id = serializers.IntegerField(required=False, allow_null=True)
    key_prefix = serializers.CharField(required=False, allow_null=True)
    key_name = serializers.CharField(required=False, allow_null=True)
    model = serializers.CharField(required=False, allow_blank=True)
    day = serializers.DateField(required=False)
    session_id = serializers.CharField(
        required=False, allow_null=True, help_text="Claude Code's X-Claude-Code-Session-Id."
    )
    first_seen = serializers.DateTimeField(required=False)
    last_seen = serializers.DateTimeField(required=False)
    subagents = serializers.IntegerField(required=False, help_text="Claude Code subagents the session started.")
    subagent_requests = serializers.IntegerField(required=False)
    main_cost_usd = serializers.DecimalField(
        required=False, max_digits=28, decimal_places=10, help_text="What the session's main loop spent."
    )
    subagent_cost_usd = serializers.DecimalField(
        required=False, max_digits=28, decimal_places=10, help_text="What its subagents spent."
    )
    requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cache_write_1h_tokens = serializers.IntegerField(help_text="Of the cache writes, those kept for an hour.")
    web_search_requests = serializers.IntegerField()
    cost_usd = serializers.DecimalField(
        max_digits=28, decimal_places=10, help_text="Full precision; round only for display."
    )
    unpriced_requests = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Refusals included.")
    refusals = serializers.IntegerField(help_text="Requests Tollgate refused itself (key, budget, policy, rate limit).")

    class Meta:
        ref_name = "CostReportRow"

    def to_representation(self, row: dict[str, Any]) -> dict[str, Any]:
        shown = super().to_representation(row)
        return {k: v for k, v in shown.items() if k in self.context["columns"]}


class ReportTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cache_write_1h_tokens = serializers.IntegerField(help_text="Of the cache writes, those kept for an hour.")
    web_search_requests = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=28, decimal_places=10)
    unpriced_requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    refusals = serializers.IntegerField()

    class Meta:
        ref_name = "CostReportTotals"


class ReportOutputSerializer(serializers.Serializer):
    group_by = serializers.CharField(help_text="The grouping asked for, such as team or team,model.")
    rows = ReportRowSerializer(many=True)
    totals = ReportTotalsSerializer()

    class Meta:
        ref_name = "CostReport"

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateField(source="start")
        fields["to"] = serializers.DateField(source="end")
        return fields


def _csv_response(report: CostReport, organization: str | None) -> HttpResponse:
    name = "-".join(
        p
        for p in ("tollgate", report.group_by.replace(",", "-"), organization, f"{report.start}", f"{report.end}")
        if p
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow([_csv_cell(row[c]) for c in report.columns])
    return response


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.10f}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        # Session ids come from clients' headers; a spreadsheet must not run
        # one as a formula (https://owasp.org/www-community/attacks/CSV_Injection).
        return "'" + value
    return value


def _report(request: Request, *, group_by: str | None) -> Response | HttpResponse:
    query = (SessionReportInputSerializer if group_by else ReportInputSerializer)(
        data=request.query_params
    )
    query.is_valid(raise_exception=True)
    values = query.validated_data
    scope = report_scope(user=request.user, organization=values["organization"])
    report = cost_report(
        scope=scope,
        group_by=group_by or values["group_by"],
        start=values["start"],
        end=values["end"],
    )
    if values["format"] == "csv":
        # A file that leaves the system: on record, with what it covered.
        audit_note(
            actor=request.user,
            action="report.export",
            target_type="ledger.report",
            target_id=group_by or values["group_by"],
            target_label=f"{group_by or values['group_by']} report {values['start']}..{values['end']}",
            after={
                "format": "csv",
                "group_by": group_by or values["group_by"],
                "organization": values["organization"] or None,
                "from": str(values["start"]),
                "to": str(values["end"]),
                "rows": len(report.rows),
            },
        )
        return _csv_response(report, values["organization"])
    return Response(ReportOutputSerializer(report, context={"columns": report.columns}).data)


class _JsonErrors:
    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # ?format= picks the report's file type, not a DRF renderer; errors are JSON.
        return JSONRenderer(), JSONRenderer.media_type


_RESPONSES = {
    (200, "application/json"): ReportOutputSerializer,
    (200, "text/csv"): OpenApiResponse(
        OpenApiTypes.STR, description="With format=csv: a header row, then a row per group."
    ),
}


class CostReportApi(_JsonErrors, APIView):
    @extend_schema(parameters=[ReportInputSerializer], responses=_RESPONSES)
    def get(self, request: Request) -> Response | HttpResponse:
        return _report(request, group_by=None)


class SessionReportApi(_JsonErrors, APIView):
    """Spend per Claude Code session: one engineer's task, from its first request to its last."""

    @extend_schema(parameters=[SessionReportInputSerializer], responses=_RESPONSES)
    def get(self, request: Request) -> Response | HttpResponse:
        return _report(request, group_by="session")


class SessionAgentSerializer(serializers.Serializer):
    agent_id = serializers.CharField(help_text="Claude Code's x-claude-code-agent-id; empty for the main loop.")
    role = serializers.ChoiceField(choices=("main", "subagent"))
    models = serializers.ListField(child=serializers.CharField())
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cache_write_1h_tokens = serializers.IntegerField()
    web_search_requests = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=28, decimal_places=10)
    unpriced_requests = serializers.IntegerField()
    errors = serializers.IntegerField()

    class Meta:
        ref_name = "SessionAgent"


class SessionAgentsOutputSerializer(serializers.Serializer):
    session_id = serializers.CharField()
    cost_usd = serializers.DecimalField(max_digits=28, decimal_places=10)
    main_cost_usd = serializers.DecimalField(max_digits=28, decimal_places=10)
    subagent_cost_usd = serializers.DecimalField(max_digits=28, decimal_places=10)
    agents = SessionAgentSerializer(many=True)

    class Meta:
        ref_name = "SessionAgents"


class SessionAgentsApi(APIView):
    """One Claude Code session's spend, split into its main loop and each subagent (Task/Agent tool) it started."""

    @extend_schema(responses=SessionAgentsOutputSerializer)
    def get(self, request: Request, session_id: str) -> Response:
        scope = report_scope(user=request.user, organization=request.query_params.get("organization") or None)
        agents = session_agents(scope=scope, session_id=session_id)
        if not agents:
            raise NotFound("No requests of this session are visible to you.")
        main = sum((a["cost_usd"] for a in agents if a["role"] == "main"), Decimal(0))
        total = sum((a["cost_usd"] for a in agents), Decimal(0))
        body = {"session_id": session_id, "cost_usd": total, "main_cost_usd": main, "subagent_cost_usd": total - main, "agents": agents}
        return Response(SessionAgentsOutputSerializer(body).data)


class FocusInputSerializer(serializers.Serializer):
    organization = serializers.SlugField(help_text="The organization to charge back.")
    month = serializers.RegexField(
        r"^\d{4}-(0[1-9]|1[0-2])$", required=False, help_text="YYYY-MM, UTC; by default this month."
    )

    class Meta:
        ref_name = "FocusExportQuery"


def _focus_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return _csv_cell(value)


class FocusExportApi(_JsonErrors, APIView):
    """A month's spend of one organization as a FOCUS 1.2 CSV, for FinOps tools and chargeback."""

    @extend_schema(
        parameters=[FocusInputSerializer],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="A header row of FOCUS columns, then a row per day, team, user, key, model and provider.")},
    )
    def get(self, request: Request) -> HttpResponse:
        query = FocusInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        slug = query.validated_data["organization"]
        scope = report_scope(user=request.user, organization=slug)
        organization = organization_access(user=request.user, slug=slug, field="organization").organization
        raw = query.validated_data.get("month")
        month = date.fromisoformat(f"{raw}-01") if raw else timezone.now().astimezone(UTC).date().replace(day=1)
        export = focus_export(scope=scope, organization=organization, month=month)
        audit_note(
            actor=request.user,
            action="report.export",
            target_type="ledger.report",
            target_id="focus",
            target_label=f"FOCUS export of {slug} for {month:%Y-%m}",
            after={"format": "focus-csv", "organization": slug, "month": f"{month:%Y-%m}", "rows": len(export.rows)},
        )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="tollgate-focus-{slug}-{month:%Y-%m}.csv"'
        response["X-FOCUS-Version"] = FOCUS_VERSION
        writer = csv.writer(response)
        writer.writerow(FOCUS_COLUMNS)
        for row in export.rows:
            writer.writerow([_focus_cell(row.get(c)) for c in FOCUS_COLUMNS])
        return response


urlpatterns = [
    path("costs/", CostReportApi.as_view(), name="api-report-costs"),
    path("sessions/", SessionReportApi.as_view(), name="api-report-sessions"),
    path("sessions/<str:session_id>/agents/", SessionAgentsApi.as_view(), name="api-report-session-agents"),
    path("focus/", FocusExportApi.as_view(), name="api-report-focus"),
]
