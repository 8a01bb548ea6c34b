"""Audit log viewer: who did what to which target, and when, with before and after."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.sinks import sink_health
from audit.verify import audit_verify
from controlplane.audit_log import AuditFilter, audit_actions, audit_event_rows, audit_read_require

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=200)
    action = forms.ChoiceField(required=False)
    target = forms.CharField(required=False, max_length=300)
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions = audit_actions()
        families = sorted({a.split(".")[0] + "." for a in actions})
        self.fields["action"].choices = (
            [("", "Any")] + [(f, f"{f}*") for f in families] + [(a, a) for a in actions]
        )

    def audit_filter(self) -> AuditFilter:
        v = self.cleaned_data
        return AuditFilter(
            actor=v.get("actor") or None,
            action=v.get("action") or None,
            target=v.get("target") or None,
            since=datetime.combine(v["since"], time.min, tzinfo=UTC) if v.get("since") else None,
            until=datetime.combine(v["until"], time.min, tzinfo=UTC) + timedelta(days=1)
            if v.get("until")
            else None,
        )


@login_required
def audit_page(request: HttpRequest) -> HttpResponse:
    audit_read_require(user=request.user)
    form = AuditFilterForm(request.GET or None)
    flt = form.audit_filter() if form.is_valid() else AuditFilter()
    rows = audit_event_rows(flt=flt)
    before = request.GET.get("before", "")
    if before.isdigit():
        rows = rows.filter(id__lt=int(before))
    page = list(rows[: PAGE_SIZE + 1])
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "title": "Audit log",
        "form": form,
        "events": page[:PAGE_SIZE],
        "older": page[PAGE_SIZE - 1].pk if len(page) > PAGE_SIZE else None,
        "query": query.urlencode(),
        "sinks": sink_health(),
        "verified": request.session.get("audit_verified"),
    }
    return render(request, "console/audit.html", context)


@login_required
@require_POST
def audit_verify_now(request: HttpRequest) -> HttpResponse:
    """Walk the whole chain as ``manage.py audit_verify`` does, and show what it found.
    On demand, not on every page view: it reads every event."""
    audit_read_require(user=request.user)
    result = audit_verify()
    request.session["audit_verified"] = {
        "intact": result.intact and result.guarded,
        "summary": result.summary(),
        "events": result.events,
        "anchors": result.anchors,
        "unsigned": result.unsigned_events,
        "at": timezone.now().isoformat(),
    }
    return redirect("audit")
