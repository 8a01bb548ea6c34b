"""Organizations, teams and people: members with their roles and teams, adding or inviting
someone, moving them between teams, creating a team. Admins write; everyone else reads."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import ResetPasswordForm
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from controlplane.web.scope import page_scope
from governance import access, selectors, services
from governance.models import Membership, Role


class MemberAddForm(forms.Form):
    username = forms.SlugField(max_length=150)
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)
    team = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, org: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "(no team)")] + [
            (t.slug, t.name) for t in selectors.team_list(organization=org)
        ]


def _back(org: Any) -> HttpResponse:
    return redirect(f"{reverse('people')}?org={org.slug}")


def _manager(request: HttpRequest) -> access.OrganizationAccess:
    scope = page_scope(request)
    if scope.access is None:
        raise PermissionDenied("No organization.")
    scope.access.require_manage()
    return scope.access


@login_required
def people_page(
    request: HttpRequest, *, form: MemberAddForm | None = None, status: int = 200
) -> HttpResponse:
    scope = page_scope(request)
    context: dict[str, Any] = {"title": "Organizations, teams and people", **scope.context()}
    if scope.access is not None:
        org = scope.organization
        teams = list(selectors.team_list(organization=org).annotate(members=Count("memberships")))
        memberships = list(
            Membership.objects.filter(organization=org)
            .select_related("user", "team")
            .order_by("team__name", "user__username")
        )
        context |= {
            "teams": teams,
            "memberships": memberships,
            "roles": Role.choices,
            "can_manage": scope.access.can_manage,
            "form": (form or MemberAddForm(org=org)) if scope.access.can_manage else None,
        }
    return render(request, "console/people.html", context, status=status)


@login_required
@require_POST
def member_add(request: HttpRequest) -> HttpResponse:
    org_access = _manager(request)
    form = MemberAddForm(request.POST, org=org_access.organization)
    if not form.is_valid():
        return people_page(request, form=form, status=400)
    v = form.cleaned_data
    try:
        with transaction.atomic():
            team = access.team_in(access=org_access, slug=v["team"]) if v["team"] else None
            user = services.user_create(
                actor=request.user, username=v["username"], email=v["email"],
                organization=org_access.organization, role=v["role"], team=team,
            )  # fmt: skip
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return people_page(request, form=form, status=400)
    # The new member sets their own password from the link allauth mails them.
    reset = ResetPasswordForm(data={"email": user.email})
    if reset.is_valid():
        reset.save(request)
    messages.success(
        request, f"{user.username} added; a link to set their password went to {user.email}."
    )
    return _back(org_access.organization)


@login_required
@require_POST
def member_set(request: HttpRequest, username: str) -> HttpResponse:
    org_access = _manager(request)
    member = access.member_in(access=org_access, username=username)
    slug = request.POST.get("team") or None
    try:
        team = access.team_in(access=org_access, slug=slug) if slug else None
        services.membership_set(
            actor=request.user, user=member, organization=org_access.organization,
            role=request.POST.get("role", ""), team=team,
        )  # fmt: skip
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
        return _back(org_access.organization)
    messages.success(request, f"{member.username} updated.")
    return _back(org_access.organization)


@login_required
@require_POST
def team_add(request: HttpRequest) -> HttpResponse:
    org_access = _manager(request)
    name = (request.POST.get("name") or "").strip()
    if not name:
        messages.error(request, "A team needs a name.")
        return _back(org_access.organization)
    try:
        team = services.team_create(
            actor=request.user, organization=org_access.organization, name=name[:200]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
        return _back(org_access.organization)
    messages.success(request, f"Team {team.name} created.")
    return _back(org_access.organization)
