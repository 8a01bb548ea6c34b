"""Keys page: list, create (the secret shown once), rotate with a grace period, disable and enable.

Every decision is the API's: the same access functions pick the keys a
person sees and may change, and the same services write, audit and publish.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from controlplane.web.scope import page_scope
from governance import access, selectors, services
from governance.models import Membership, ModelPrice, Route, VirtualKey
from ledger.access import report_scope
from ledger.models import DailyUsage, RequestLog
from ledger.selectors import cost_report

DEFAULT_GRACE_HOURS = 24


class KeyCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    # Free text behind a select: whom a key may go to is the access layer's
    # answer (a developer naming someone else gets the API's 403), not the form's.
    user = forms.CharField(required=False, max_length=150, label="Owner", widget=forms.Select)
    team = forms.ChoiceField(required=False)
    allowed_models = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    expires_on = forms.DateField(
        required=False, label="Expires on", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, org_access: access.OrganizationAccess, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        org = org_access.organization
        if org_access.can_manage:
            members = (
                Membership.objects.filter(organization=org)
                .select_related("user")
                .order_by("user__username")
            )
            self.fields["user"].widget.choices = [("", "(no one: a service key)")] + [
                (m.user.username, m.user.username) for m in members
            ]
        else:
            self.fields["user"].widget.choices = [
                (org_access.user.username, org_access.user.username)
            ]
        teams = [(t.slug, t.name) for t in selectors.team_list(organization=org)]
        self.fields["team"].choices = [("", "The owner's team")] + teams
        self.fields["allowed_models"].choices = [(m, m) for m in known_models(org)]


def known_models(org: Any) -> list[str]:
    """Models a key may be limited to: the priced ones and the patterns routes answer."""
    priced = ModelPrice.objects.values_list("model", flat=True)
    routed = Route.objects.filter(Q(organization=org) | Q(organization__isnull=True)).values_list(
        "model_pattern", flat=True
    )
    return sorted(set(priced) | set(routed))


def _key_rows(
    org_access: access.OrganizationAccess, keys: list[VirtualKey]
) -> list[dict[str, Any]]:
    last_used = _last_used([k.pk for k in keys])
    today = timezone.now().date()
    report = cost_report(
        scope=report_scope(user=org_access.user, organization=org_access.organization.slug),
        group_by="key",
        start=today.replace(day=1),
        end=today,
    )
    spend = {r["key_id"]: r["cost_usd"] for r in report.rows}
    now = timezone.now()
    return [
        {
            "key": k,
            "state": _state(k, now),
            "last_used": last_used.get(k.pk),
            "spend": spend.get(k.pk, 0),
            "can_change": org_access.can_change_key(k),
            "in_grace": bool(k.previous_valid_until and k.previous_valid_until > now),
        }
        for k in keys
    ]


def _last_used(ids: list[int]) -> dict[int, datetime | date]:
    """When each key was last used: the instant, from the last two days of the log;
    before that the day, from the roll-up (a key's whole history is too long to scan)."""
    if not ids:
        return {}
    since = timezone.now() - timedelta(days=2)
    # Each key's newest row, one look into the (key, time) index per key.
    latest = (
        RequestLog.objects.filter(key_id=OuterRef("pk"), created_at__gte=since)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    recent = VirtualKey.objects.filter(pk__in=ids).annotate(last=Subquery(latest))
    found: dict[int, datetime | date] = {
        pk: last for pk, last in recent.values_list("pk", "last") if last is not None
    }
    older = [i for i in ids if i not in found]
    if older:
        days = (
            DailyUsage.objects.filter(key_id__in=older).values("key_id").annotate(last=Max("day"))
        )
        found |= {row["key_id"]: row["last"] for row in days}
    return found


def _state(key: VirtualKey, now: datetime) -> str:
    if key.status != "active":
        return "disabled"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _page(
    request: HttpRequest,
    *,
    form: KeyCreateForm | None = None,
    shown: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    scope = page_scope(request)
    context: dict[str, Any] = {"title": "Keys", **scope.context(), "shown": shown}
    if scope.access is not None:
        org_access = scope.access
        owner = None if org_access.sees_every_key else request.user
        keys = list(selectors.key_list(organization=org_access.organization, owner=owner))
        context["rows"] = _key_rows(org_access, keys)
        if org_access.can_create_keys:
            context["form"] = form or KeyCreateForm(org_access=org_access)
        context["grace_hours"] = DEFAULT_GRACE_HOURS
    response = render(request, "console/keys.html", context, status=status)
    if shown:
        # The page holds a secret: no cache may keep it.
        response["Cache-Control"] = "no-store"
    return response


def _claude_code_lines(secret: str) -> str:
    gateway = settings.GATEWAY_PUBLIC_URL.rstrip("/")
    return f"export ANTHROPIC_BASE_URL={gateway}/anthropic\nexport ANTHROPIC_AUTH_TOKEN={secret}\nclaude"


@login_required
def key_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    scope = page_scope(request)
    if scope.access is None:
        raise PermissionDenied("No organization to create a key in.")
    org_access = scope.access
    form = KeyCreateForm(request.POST, org_access=org_access)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    values = form.cleaned_data
    expires_at = None
    if values["expires_on"]:
        expires_at = datetime.combine(values["expires_on"], time(23, 59, 59), tzinfo=UTC)
    try:
        owner = access.key_owner_for_create(access=org_access, username=values["user"] or None)
        team = access.key_team_for_create(
            access=org_access, owner=owner, slug=values["team"] or None, given=False
        )
        key, secret = services.key_create(
            actor=request.user,
            organization=org_access.organization,
            name=values["name"],
            team=team,
            user=owner,
            allowed_models=values["allowed_models"],
            expires_at=expires_at,
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _page(request, form=form, status=400)
    shown = {"key": key, "secret": secret, "lines": _claude_code_lines(secret), "rotated": False}
    return _page(request, shown=shown, status=201)


class KeyRotateForm(forms.Form):
    grace_hours = forms.FloatField(min_value=0, max_value=30 * 24, initial=DEFAULT_GRACE_HOURS)


@login_required
@require_POST
def key_rotate(request: HttpRequest, key_id: int) -> HttpResponse:
    key = access.key_for_change(user=request.user, key_id=key_id)
    request.GET = request.GET.copy()
    request.GET["org"] = key.organization.slug
    form = KeyRotateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The grace period is a number of hours from 0 to 720.")
        return _page(request, status=400)
    grace = int(timedelta(hours=form.cleaned_data["grace_hours"]).total_seconds())
    key, secret = services.key_rotate(actor=request.user, key=key, grace_seconds=grace)
    shown = {"key": key, "secret": secret, "lines": _claude_code_lines(secret), "rotated": True}
    return _page(request, shown=shown)


def _status_change(request: HttpRequest, key_id: int, *, enable: bool) -> HttpResponse:
    key = access.key_for_change(user=request.user, key_id=key_id)
    key = (services.key_enable if enable else services.key_disable)(actor=request.user, key=key)
    org_access = access.organization_access(user=request.user, slug=key.organization.slug)
    key = selectors.key_list(organization=key.organization).get(pk=key.pk)
    row = _key_rows(org_access, [key])[0]
    return render(
        request,
        "console/_key_row.html",
        {"row": row, "grace_hours": DEFAULT_GRACE_HOURS, "org": key.organization},
    )


@login_required
@require_POST
def key_disable(request: HttpRequest, key_id: int) -> HttpResponse:
    return _status_change(request, key_id, enable=False)


@login_required
@require_POST
def key_enable(request: HttpRequest, key_id: int) -> HttpResponse:
    return _status_change(request, key_id, enable=True)
