"""The device flow's HTTP side: what Claude Code calls (through the data plane,
which relays these paths here), and the page where the user confirms a code.

The OAuth endpoints take form bodies, answer JSON with OAuth error codes, and
carry no cookies, hence no CSRF check; the confirmation page is the console's
(signed in, CSRF-protected POST, rate-limited per client address).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from devicelogin import services
from devicelogin.models import DeviceSignin
from devicelogin.settings_policy import settings_for
from governance import counters
from governance.models import Budget, Level, Organization
from ledger.access import own_report_scope
from ledger.selectors import cost_report

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Confirmations (right or wrong codes) per client address per window.
CONFIRM_LIMIT = 20
CONFIRM_WINDOW_SECONDS = 600


def _client(request: HttpRequest) -> str:
    # Where Claude Code asked from, as the data plane relays it: shown to the user
    # on the confirmation page and kept on the sign-in, never used to decide anything.
    return (request.headers.get("X-Forwarded-For") or request.META.get("REMOTE_ADDR") or "")[:64]


def _no_store(body: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _oauth_error(err: services.GrantError) -> JsonResponse:
    return _no_store({"error": err.error, "error_description": err.description}, status=err.status)


@csrf_exempt
@require_POST
def device_authorization(request: HttpRequest) -> JsonResponse:
    # The client sends surface=claude_code and nothing else we need: unknown
    # parameters are ignored, none is required.
    auth, device_code = services.device_start(
        client_address=_client(request), user_agent=request.headers.get("User-Agent", "")
    )
    page = settings.CONTROL_PLANE_PUBLIC_URL.rstrip("/") + reverse("device")
    return _no_store(
        {
            "device_code": device_code,
            "user_code": auth.user_code,
            "verification_uri": page,
            "verification_uri_complete": f"{page}?user_code={auth.user_code}",
            "expires_in": services.CODE_SECONDS,
            "interval": auth.interval,
        }
    )


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> JsonResponse:
    grant = request.POST.get("grant_type", "")
    try:
        if grant == DEVICE_GRANT:
            tokens = services.token_for_device(device_code=request.POST.get("device_code", ""))
        elif grant == "refresh_token":
            tokens = services.token_refresh(refresh_token=request.POST.get("refresh_token", ""))
        else:
            raise services.GrantError("unsupported_grant_type", f"Grant type '{grant[:80]}' is not supported.")
    except services.GrantError as err:
        return _oauth_error(err)
    return _no_store(tokens.as_json())


@csrf_exempt
@require_POST
def revoke(request: HttpRequest) -> HttpResponse:
    services.token_revoke(token=request.POST.get("token", ""))
    return HttpResponse(status=200)


def _bearer(request: HttpRequest) -> DeviceSignin | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return services.signin_for_bearer(value.strip()) if scheme.lower() == "bearer" else None


def _unauthorized() -> JsonResponse:
    response = JsonResponse(
        {"type": "error", "error": {"type": "authentication_error", "message": "Sign in again with /login."}},
        status=401,
    )
    response["x-should-retry"] = "false"
    return response


@require_http_methods(["GET"])
def managed_settings(request: HttpRequest) -> HttpResponse:
    """The signed-in user's managed settings: ``{uuid, checksum, settings}``, with
    the checksum as a quoted ETag (304 on a match), 404 when no policy applies."""
    signin = _bearer(request)
    if signin is None:
        return _unauthorized()
    policy = settings_for(signin)
    match = request.headers.get("If-None-Match", "")
    if policy is None:
        return HttpResponse(status=404)
    etag = f'"{policy.checksum}"'
    if match == "*" or match.strip() == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(
            json.dumps(policy.document(), separators=(",", ":")), content_type="application/json"
        )
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


def _confirm_allowed(request: HttpRequest) -> bool:
    # The browser's own address, as the password throttle takes it (never a header it could set).
    address = request.META.get("REMOTE_ADDR") or "unknown"
    key = "device-confirm:" + hashlib.sha256(address.encode()).hexdigest()[:32]
    cache.add(key, 0, CONFIRM_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, CONFIRM_WINDOW_SECONDS)
        count = 1
    return count <= CONFIRM_LIMIT


@never_cache
@login_required
def device_page(request: HttpRequest) -> HttpResponse:
    """Confirm the code Claude Code shows (never submitted for the user: they press the button)."""
    code = services.user_code_normal(request.POST.get("user_code") or request.GET.get("user_code", ""))
    memberships = services.signin_organizations(request.user)
    context: dict[str, Any] = {"title": "Sign in Claude Code", "user_code": code, "memberships": memberships}
    if request.method == "POST":
        if not _confirm_allowed(request):
            messages.error(request, "Too many attempts from this address; wait ten minutes and try again.")
            return render(request, "devicelogin/device.html", context, status=429)
        try:
            if request.POST.get("action") == "deny":
                services.device_deny(user=request.user, user_code=code)
                return render(request, "devicelogin/done.html", {"title": "Sign-in denied", "approved": False})
            org = None
            if request.POST.get("organization"):
                org = Organization.objects.filter(slug=request.POST["organization"]).first()
            signin = services.device_approve(user=request.user, user_code=code, organization=org)
        except ValidationError as exc:
            # The form again, saying what was wrong (a page, not an API answer).
            messages.error(request, " ".join(exc.messages))
            return render(request, "devicelogin/device.html", context)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            return render(request, "devicelogin/device.html", context, status=403)
        return render(
            request, "devicelogin/done.html", {"title": "Claude Code is signed in", "approved": True, "signin": signin}
        )
    context["pending"] = services.pending_authorization(code) if code else None
    return render(request, "devicelogin/device.html", context)


@require_POST
@login_required
def signin_revoke(request: HttpRequest, signin_id: int) -> HttpResponse:
    signin = DeviceSignin.objects.filter(pk=signin_id).first()
    if signin is None:
        messages.error(request, "No such signed-in device.")
    else:
        try:
            services.signin_revoke(actor=request.user, signin=signin)
            messages.success(request, "The device is signed out; its requests are refused from now on.")
        except PermissionDenied as exc:
            messages.error(request, str(exc))
    return redirect("me")


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(ROUND_HALF_UP))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@require_http_methods(["GET"])
def oauth_usage(request: HttpRequest) -> HttpResponse:
    """The signed-in user's standing in dollars, for Claude Code's ``/usage``: the
    fullest budget on their chain (the one the usage headers describe, with the
    same reset to the second), one row per budget; without one, their spend."""
    signin = _bearer(request)
    if signin is None:
        return _unauthorized()
    key = signin.key
    chain = Q(level=Level.ORGANIZATION) | Q(level=Level.USER, user_id=signin.user_id) | Q(level=Level.KEY, key_id=key.pk)
    if key.team_id is not None:
        chain |= Q(level=Level.TEAM, team_id=key.team_id)
    budgets = list(Budget.objects.filter(chain, organization_id=signin.organization_id).select_related("organization"))
    usages = [u for u in counters.budget_usage(budgets=budgets) if u.budget.amount_usd > 0]
    if usages:
        def used(u: counters.BudgetUsage) -> Decimal:
            return (u.spent + u.reserved) / u.budget.amount_usd

        fullest = max(usages, key=used)
        percent = {u.budget.pk: int((used(u) * 100).to_integral_value(ROUND_HALF_UP)) for u in usages}
        body: dict[str, Any] = {
            "extra_usage": {
                "is_enabled": True,
                "monthly_limit": _cents(fullest.budget.amount_usd),
                "used_credits": _cents(fullest.spent + fullest.reserved),
                "utilization": percent[fullest.budget.pk],
                "currency": "USD",
            },
            "limits": [
                {
                    "kind": "spend",
                    "group": u.budget.period,
                    "percent": percent[u.budget.pk],
                    "resets_at": _iso(u.resets_at),
                    "severity": "critical" if percent[u.budget.pk] >= 95 else "warning" if percent[u.budget.pk] >= 75 else "normal",
                    "is_active": u is fullest,
                }
                for u in usages
            ],
        }
    else:
        today = timezone.now().date()
        mine = own_report_scope(user=signin.user)

        def spent(start: date) -> int:
            return _cents(cost_report(scope=mine, group_by="key", start=start, end=today).totals["cost_usd"] or Decimal(0))

        body = {
            "extra_usage": {
                "is_enabled": True, "monthly_limit": None, "utilization": None, "currency": "USD",
                "used_credits": spent(today.replace(day=1)),
                "daily": {"limit": None, "used_credits": spent(today), "utilization": None},
                "weekly": {"limit": None, "used_credits": spent(today - timedelta(days=today.weekday())), "utilization": None},
            },
            "limits": [],
        }  # fmt: skip
    return _no_store(body)
