"""Cost reports for finance: spend grouped by one or two dimensions, on screen and as CSV.

The figures are the API's (``ledger.selectors.cost_report`` over the
reader's ``ReportScope``); the CSV is laid out for a spreadsheet: the period
on every row, names instead of ids ("(no team)" where there is none), a
currency column, six decimals, a totals row.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from controlplane.web.scope import page_scope
from ledger.access import report_scope
from ledger.selectors import CostReport, cost_report

DIMENSIONS = [
    ("team", "Team"),
    ("model", "Model"),
    ("user", "Person"),
    ("key", "Key"),
    ("day", "Day"),
    ("session", "Claude Code session"),
    ("organization", "Organization"),
]
CSV_DECIMALS = Decimal("0.000001")
NONE_LABELS = {
    "organization": "(no organization)",
    "team": "(no team)",
    "user": "(no user)",
    "key": "(no key)",
    "model": "(no model)",
    "session": "(no session)",
}


class CostReportForm(forms.Form):
    first = forms.ChoiceField(choices=DIMENSIONS, initial="team", label="Group by")
    second = forms.ChoiceField(
        choices=[("", "(nothing)")] + DIMENSIONS, required=False, initial="model", label="and by"
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        values = super().clean()
        if values.get("second") and values.get("second") == values.get("first"):
            self.add_error("second", "Pick a different second grouping, or none.")
        today = timezone.now().date()
        since = values.get("since") or today.replace(day=1)
        until = values.get("until") or (since.replace(day=28) + timedelta(days=4)).replace(
            day=1
        ) - timedelta(days=1)
        if until < since:
            self.add_error("until", "Must not be before the start.")
        elif (until - since).days > 365:
            self.add_error("until", "A report covers at most 366 days.")
        values["since"], values["until"] = since, until
        return values

    @property
    def group_by(self) -> str:
        v = self.cleaned_data
        return ",".join(d for d in (v["first"], v.get("second")) if d)


def _label(row: dict[str, Any], dim: str) -> str:
    if dim == "organization":
        value = row.get("organization_name")
    elif dim == "team":
        value = row.get("team_name")
    elif dim == "user":
        value = row.get("username")
    elif dim == "key":
        value = f"{row['key_name']} ({row['key_prefix']}…)" if row.get("key_prefix") else None
    elif dim == "day":
        value = row["day"].isoformat()
    elif dim == "session":
        value = row.get("session_id")
    else:
        value = row.get("model")
    return value or NONE_LABELS.get(dim, "")


def _presented(report: CostReport) -> list[dict[str, Any]]:
    return [
        {
            "labels": [_label(r, d) for d in report.dimensions],
            "row": r,
            # Refusals are among the errors in the data; finance reads them apart.
            "errors": r["errors"] - r["refusals"],
        }
        for r in report.rows
    ]


def _months() -> dict[str, tuple[date, date]]:
    today = timezone.now().date()
    this = today.replace(day=1)
    last_end = this - timedelta(days=1)
    return {"This month": (this, today), "Last month": (last_end.replace(day=1), last_end)}


@login_required
def cost_page(request: HttpRequest) -> HttpResponse:
    scope = page_scope(request)
    context: dict[str, Any] = {"title": "Cost reports", **scope.context(), "months": _months()}
    form = CostReportForm(request.GET or {"first": "team", "second": "model"})
    context["form"] = form
    if scope.access is not None and form.is_valid():
        report = _report(request, scope, form)
        context |= {
            "report": report,
            "rows": _presented(report),
            "headers": [dict(DIMENSIONS)[d] for d in report.dimensions],
            "query": request.GET.urlencode()
            or f"org={scope.organization.slug}&first=team&second=model",
            "errors": report.totals["errors"] - report.totals["refusals"],
        }
    return render(request, "console/costs.html", context)


def _report(request: HttpRequest, scope: Any, form: CostReportForm) -> CostReport:
    values = form.cleaned_data
    return cost_report(
        scope=report_scope(user=request.user, organization=scope.organization.slug),
        group_by=form.group_by,
        start=values["since"],
        end=values["until"],
    )


def _cents(value: Decimal) -> str:
    return str(value.quantize(CSV_DECIMALS, rounding=ROUND_HALF_UP))


@login_required
def cost_csv(request: HttpRequest) -> HttpResponse:
    scope = page_scope(request)
    form = CostReportForm(request.GET)
    if scope.access is None or not form.is_valid():
        raise Http404("No such report.")
    report = _report(request, scope, form)
    name = f"tollgate-costs-{scope.organization.slug}-{report.group_by.replace(',', '-')}-{report.start}-{report.end}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    dims = [dict(DIMENSIONS)[d].lower().replace(" ", "_") for d in report.dimensions]
    metrics = [
        "requests",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "errors",
        "refusals",
    ]
    writer.writerow(["period_from", "period_to", *dims, *metrics, "currency", "cost"])
    for p in _presented(report):
        r = p["row"]
        counts = [r[m] for m in metrics[:5]] + [p["errors"], r["refusals"]]
        writer.writerow(
            [
                report.start,
                report.end,
                *map(_spreadsheet_safe, p["labels"]),
                *counts,
                "USD",
                _cents(r["cost_usd"]),
            ]
        )
    t = report.totals
    counts = [t[m] for m in metrics[:5]] + [t["errors"] - t["refusals"], t["refusals"]]
    writer.writerow(
        [
            report.start,
            report.end,
            "Total",
            *[""] * (len(dims) - 1),
            *counts,
            "USD",
            _cents(t["cost_usd"]),
        ]
    )
    return response


def _spreadsheet_safe(value: str) -> str:
    # Session ids and names come from people and clients: never a formula in a spreadsheet.
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value
