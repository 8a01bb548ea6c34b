"""Request log explorer: filters, totals of the filtered set, a page of rows, one row's detail, CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.services import audit_note
from controlplane.web.scope import page_scope
from governance import selectors
from governance.models import Membership, Provider
from ledger.access import report_scope
from ledger.request_log import (
    RequestFilter,
    request_log_labels,
    request_log_page,
    request_log_rows,
    request_log_totals,
    request_models,
    request_outcome,
)

PAGE_SIZE = 50
CSV_COLUMNS = (
    "request_id", "created_at", "organization", "team", "user", "key_prefix", "key_name", "model_requested",
    "model_served", "provider", "status", "outcome", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_usd", "latency_ms", "ttfb_ms", "overhead_ms", "session_id", "error_type",
)  # fmt: skip


class RequestFilterForm(forms.Form):
    team = forms.ChoiceField(required=False)
    user = forms.ChoiceField(required=False)
    key = forms.ChoiceField(required=False)
    model = forms.ChoiceField(required=False)
    provider = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any"),
            ("ok", "Succeeded"),
            ("error", "Errors"),
            ("refused", "Refused by Tollgate"),
        ],
    )
    session = forms.CharField(required=False, max_length=100, label="Claude Code session")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, org: Any, sees_all: bool, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        anyone = [("", "Any")]
        self.fields["team"].choices = anyone + [
            (t.slug, t.name) for t in selectors.team_list(organization=org)
        ]
        if sees_all:
            members = (
                Membership.objects.filter(organization=org)
                .select_related("user")
                .order_by("user__username")
            )
            self.fields["user"].choices = anyone + [
                (m.user.username, m.user.username) for m in members
            ]
            keys = selectors.key_list(organization=org)
        else:
            self.fields["user"].choices = [("", "Me")]
            keys = selectors.key_list(organization=org, owner=user)
        self.fields["key"].choices = anyone + [(str(k.pk), f"{k.name} ({k.prefix}…)") for k in keys]
        self.fields["model"].choices = anyone + [(m, m) for m in request_models()]
        self.fields["provider"].choices = anyone + [
            (p.name, p.name) for p in Provider.objects.order_by("name")
        ]

    def request_filter(self, org: Any) -> RequestFilter:
        v = self.cleaned_data
        return RequestFilter(
            organization=org,
            team=v.get("team") or None,
            user=v.get("user") or None,
            key=int(v["key"]) if v.get("key") else None,
            model=v.get("model") or None,
            provider=v.get("provider") or None,
            status=v.get("status") or None,
            session=v.get("session") or None,
            since=datetime.combine(v["since"], time.min, tzinfo=UTC)
            if v.get("since")
            else _default_since(v),
            until=datetime.combine(v["until"], time.min, tzinfo=UTC) + timedelta(days=1)
            if v.get("until")
            else None,
        )


DEFAULT_WINDOW = timedelta(hours=24)


def _default_since(values: dict[str, Any]) -> datetime | None:
    """Without dates (or a session to follow), the last 24 hours: a year of log is
    for the cost reports, which read the roll-up."""
    if values.get("until") or values.get("session"):
        return None
    return timezone.now() - DEFAULT_WINDOW


def _filtered(request: HttpRequest) -> tuple[Any, RequestFilterForm | None, Any]:
    scope = page_scope(request)
    if scope.access is None:
        return scope, None, None
    org_access = scope.access
    form = RequestFilterForm(
        request.GET or None,
        org=org_access.organization,
        sees_all=org_access.sees_every_key,
        user=request.user,
    )
    flt = (
        form.request_filter(org_access.organization)
        if form.is_valid()
        else RequestFilter(organization=org_access.organization, since=_default_since({}))
    )
    rows = request_log_rows(
        scope=report_scope(user=request.user, organization=org_access.organization.slug), flt=flt
    )
    return scope, form, rows


def _present(rows: list[Any]) -> list[dict[str, Any]]:
    labels = request_log_labels(rows)
    return [
        {
            "row": r,
            "team": labels["teams"].get(r.team_id),
            "user": labels["users"].get(r.user_id),
            "key": labels["keys"].get(r.key_id),
            "provider": labels["providers"].get(r.provider_id),
            "outcome": request_outcome(r),
        }
        for r in rows
    ]


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    scope, form, rows = _filtered(request)
    context: dict[str, Any] = {"title": "Request log", **scope.context(), "form": form}
    if rows is not None:
        before = request.GET.get("before", "")
        page_rows = rows.filter(id__lt=int(before)) if before.isdigit() else rows
        page = request_log_page(page_rows, size=PAGE_SIZE + 1)
        query = request.GET.copy()
        query.pop("before", None)
        context |= {
            "rows": _present(page[:PAGE_SIZE]),
            "totals": request_log_totals(rows),
            "older": page[PAGE_SIZE - 1].pk if len(page) > PAGE_SIZE else None,
            "query": query.urlencode(),
        }
    return render(request, "console/requests.html", context)


@login_required
def request_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    scope = page_scope(request)
    row = None
    if scope.access is not None:
        visible = request_log_rows(
            scope=report_scope(user=request.user, organization=scope.access.organization.slug),
            flt=RequestFilter(organization=scope.access.organization),
        )
        row = visible.filter(request_id=request_id).first()
    if row is None:
        raise Http404("No such request.")
    (presented,) = _present([row])
    return render(
        request,
        "console/request_detail.html",
        {"title": "Request", **scope.context(), "p": presented, "row": presented["row"]},
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def request_csv(request: HttpRequest) -> HttpResponse:
    scope, _, rows = _filtered(request)
    if rows is None:
        raise Http404("No organization.")
    writer = csv.writer(_Echo())
    # A file that leaves the system: on the audit trail, with the filter that chose its rows.
    audit_note(
        actor=request.user,
        action="request_log.export",
        target_type="ledger.requestlog",
        target_id=scope.organization.slug,
        target_label=f"request log of {scope.organization.slug}",
        after={
            "format": "csv",
            "organization": scope.organization.slug,
            "filters": dict(request.GET.items()),
        },
    )

    def lines() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        batch: list[Any] = []
        for row in rows.iterator(chunk_size=2000):
            batch.append(row)
            if len(batch) == 2000:
                yield from _csv_lines(writer, batch, scope.organization)
                batch = []
        yield from _csv_lines(writer, batch, scope.organization)

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="tollgate-requests-{scope.organization.slug}-{stamp}.csv"'
    )
    return response


def _csv_lines(writer: Any, rows: list[Any], org: Any) -> Iterator[str]:
    for p in _present(rows):
        r = p["row"]
        values = {
            "request_id": r.request_id, "created_at": r.created_at.isoformat(), "organization": org.slug,
            "team": p["team"] or "(no team)", "user": p["user"] or "(no user)", "key_prefix": r.key_prefix,
            "key_name": p["key"] or "", "model_requested": r.model_requested, "model_served": r.model_served,
            "provider": p["provider"] or "", "status": r.status, "outcome": p["outcome"],
            "input_tokens": r.input_tokens, "output_tokens": r.output_tokens, "cache_read_tokens": r.cache_read_tokens,
            "cache_write_tokens": r.cache_write_tokens, "cost_usd": f"{r.cost_usd:.10f}", "latency_ms": f"{r.latency_ms:.1f}",
            "ttfb_ms": "" if r.ttfb_ms is None else f"{r.ttfb_ms:.1f}", "overhead_ms": f"{r.overhead_ms:.1f}",
            "session_id": _safe(r.session_id), "error_type": r.error_type,
        }  # fmt: skip
        yield writer.writerow([values[c] for c in CSV_COLUMNS])


def _safe(value: str) -> str:
    # Session ids come from client headers: a spreadsheet must not run one as a formula.
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value
