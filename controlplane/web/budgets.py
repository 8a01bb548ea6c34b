"""Budgets and rate limits of every level, with usage read where the data plane counts.

The bars refresh themselves every few seconds (htmx); setting and removing
go through the API's access functions and services.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from controlplane.web.scope import page_scope
from governance import access, counters, selectors, services
from governance.models import Level, Membership, Period

REFRESH_SECONDS = 5


def policy_label(policy: Any) -> str:
    if policy.level == Level.ORGANIZATION:
        return policy.organization.name
    if policy.level == Level.TEAM:
        return f"Team {policy.team.name}"
    if policy.level == Level.USER:
        return policy.user.username
    return f"Key {policy.key.name} ({policy.key.prefix}…)"


def _targets(org_access: access.OrganizationAccess) -> list[tuple[str, str]]:
    org = org_access.organization
    choices = [("organization", f"{org.name} (whole organization)")]
    choices += [(f"team:{t.slug}", f"Team {t.name}") for t in selectors.team_list(organization=org)]
    members = (
        Membership.objects.filter(organization=org)
        .select_related("user")
        .order_by("user__username")
    )
    choices += [(f"user:{m.user.username}", f"Member {m.user.username}") for m in members]
    choices += [
        (f"key:{k.pk}", f"Key {k.name} ({k.prefix}…)") for k in selectors.key_list(organization=org)
    ]
    return choices


class BudgetSetForm(forms.Form):
    target = forms.ChoiceField(label="For")
    amount_usd = forms.DecimalField(
        label="Amount (USD)", min_value=0, max_digits=14, decimal_places=4
    )
    period = forms.ChoiceField(choices=Period.choices, initial=Period.MONTHLY)
    rolling = forms.BooleanField(
        required=False, label="Rolling (from now) rather than by the calendar"
    )

    def __init__(self, *args: Any, org_access: access.OrganizationAccess, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = _targets(org_access)


def target_args(target: str) -> dict[str, Any]:
    """'team:payments' → the level and the names policy_targets takes."""
    kind, _, name = target.partition(":")
    return {
        "level": kind,
        "team": name if kind == Level.TEAM else None,
        "user": name if kind == Level.USER else None,
        "key": int(name) if kind == Level.KEY else None,
    }


def _usage_context(request: HttpRequest) -> dict[str, Any]:
    scope = page_scope(request)
    context: dict[str, Any] = {
        "title": "Budgets and rate limits",
        **scope.context(),
        "refresh": REFRESH_SECONDS,
    }
    if scope.access is None:
        return context
    org_access = scope.access
    owner = None if org_access.sees_every_key else request.user
    budgets = list(selectors.budget_list(organization=org_access.organization, owner=owner))
    limits = list(selectors.rate_limit_list(organization=org_access.organization, owner=owner))
    context["budgets"] = [
        {
            "usage": u,
            "label": policy_label(u.budget),
            "bar": _bar_class(u.spent_percent + u.reserved_percent),
        }
        for u in counters.budget_usage(budgets=budgets)
    ]
    context["limits"] = [
        {"usage": u, "label": policy_label(u.limit), "bar": _bar_class(u.percent)}
        for u in counters.rate_limit_usage(limits=limits)
    ]
    context["can_manage"] = org_access.can_manage
    return context


def _bar_class(percent: float) -> str:
    return "bad" if percent >= 90 else "warn" if percent >= 75 else ""


@login_required
def budget_page(request: HttpRequest) -> HttpResponse:
    context = _usage_context(request)
    if request.htmx:
        return render(request, "console/_budget_usage.html", context)
    if context.get("can_manage"):
        context["form"] = BudgetSetForm(org_access=context["org_access"])
    return render(request, "console/budgets.html", context)


@login_required
@require_POST
def budget_set(request: HttpRequest) -> HttpResponse:
    scope = page_scope(request)
    if scope.access is None:
        raise PermissionDenied("No organization.")
    org_access = scope.access
    org_access.require_manage()
    form = BudgetSetForm(request.POST, org_access=org_access)
    if form.is_valid():
        values = form.cleaned_data
        args = target_args(values["target"])
        try:
            targets = access.policy_targets(
                access=org_access, team=args["team"], user=args["user"], key=args["key"]
            )
            budget = services.budget_set(
                actor=request.user,
                level=args["level"],
                organization=org_access.organization,
                amount_usd=Decimal(values["amount_usd"]),
                period=values["period"],
                rolling=values["rolling"],
                **targets,
            )
        except ValidationError as exc:
            form.add_error(None, [m for ms in exc.message_dict.values() for m in ms])
        else:
            messages.success(
                request,
                f"{budget.get_period_display()} budget of {policy_label(budget)} set to ${budget.amount_usd:,.2f}.",
            )
            return redirect(f"{reverse('budgets')}?org={org_access.organization.slug}")
    context = _usage_context(request) | {"form": form}
    return render(request, "console/budgets.html", context, status=400)


@login_required
@require_POST
def budget_delete(request: HttpRequest, budget_id: int) -> HttpResponse:
    budget = access.budget_for_change(user=request.user, budget_id=budget_id)
    label, slug = policy_label(budget), budget.organization.slug
    services.budget_delete(actor=request.user, budget=budget)
    messages.success(request, f"Budget of {label} removed.")
    return redirect(f"{reverse('budgets')}?org={slug}")
