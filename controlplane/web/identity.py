"""Single sign-on for an organization's admins: its identity providers (presets fill in the
claim names), the redirect URI to register, and which groups grant which role and team."""

from __future__ import annotations

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
from governance import access, selectors
from governance.models import Role
from identity import access as identity_access
from identity import services
from identity.models import IdentityProvider
from identity.presets import PRESETS, Preset


class IdentityProviderForm(forms.Form):
    name = forms.CharField(max_length=100, help_text='Shown as "Sign in with <name>".')
    preset = forms.ChoiceField(choices=Preset.choices, initial=Preset.OKTA)
    issuer = forms.URLField(
        max_length=500, assume_scheme="https", widget=forms.TextInput(attrs={"inputmode": "url"})
    )
    client_id = forms.CharField(max_length=255)
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"placeholder": "write-only, never shown"}
        ),
    )
    scopes = forms.CharField(max_length=500, required=False)
    email_claim = forms.CharField(max_length=100, required=False)
    groups_claim = forms.CharField(max_length=100, required=False)
    allowed_domains = forms.CharField(
        max_length=2000, required=False, help_text="Comma-separated; empty: any."
    )
    groups_from_graph = forms.BooleanField(
        required=False, label="Resolve an Entra group overage through Microsoft Graph"
    )
    enabled = forms.BooleanField(required=False, initial=True)

    @classmethod
    def for_edit(cls, idp: IdentityProvider, data: Any = None) -> IdentityProviderForm:
        initial = {name: getattr(idp, name) for name in services.EDITABLE}
        initial["allowed_domains"] = ", ".join(idp.allowed_domains)
        return cls(data, initial=initial, prefix=f"idp{idp.pk}")


class GroupMappingForm(forms.Form):
    group = forms.CharField(max_length=255)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)
    team = forms.CharField(max_length=100, required=False)


def _manager(request: HttpRequest) -> access.OrganizationAccess:
    scope = page_scope(request)
    if scope.access is None:
        raise PermissionDenied("No organization.")
    scope.access.require_manage()
    return scope.access


def _back(slug: str) -> HttpResponse:
    return redirect(f"{reverse('sso')}?org={slug}")


def _say_invalid(request: HttpRequest, exc: ValidationError) -> None:
    text = (
        " ".join(m for ms in exc.message_dict.values() for m in ms)
        if hasattr(exc, "error_dict")
        else " ".join(exc.messages)
    )
    messages.error(request, text)


def _form_errors(request: HttpRequest, form: forms.Form) -> None:
    messages.error(
        request, " ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
    )


@login_required
def sso_page(request: HttpRequest) -> HttpResponse:
    scope = page_scope(request)
    context: dict[str, Any] = {"title": "Single sign-on", **scope.context()}
    if scope.access is not None:
        scope.access.require_manage()
        idps = list(
            IdentityProvider.objects.filter(organization=scope.organization)
            .prefetch_related("group_mappings__team", "scim_tokens")
            .order_by("name", "id")
        )
        context |= {
            "providers": [(idp, IdentityProviderForm.for_edit(idp)) for idp in idps],
            "form": IdentityProviderForm(),
            "mapping_form": GroupMappingForm(),
            "teams": list(selectors.team_list(organization=scope.organization)),
            "presets": [(value, label, PRESETS[value]) for value, label in Preset.choices],
            "callback_url": request.build_absolute_uri(reverse("sso-callback")),
            "scim_url": request.build_absolute_uri("/scim/v2/"),
        }
    return render(request, "console/sso.html", context)


def _fields(form: forms.Form, *, creating: bool) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    data.pop("client_secret")
    if creating:
        # Left blank: the preset's defaults.
        data["groups_claim"] = data["groups_claim"] or None
    return data


@login_required
@require_POST
def sso_add(request: HttpRequest) -> HttpResponse:
    org_access = _manager(request)
    form = IdentityProviderForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _back(org_access.organization.slug)
    try:
        idp = services.identity_provider_create(
            actor=request.user,
            organization=org_access.organization,
            client_secret=form.cleaned_data["client_secret"],
            **_fields(form, creating=True),
        )
    except ValidationError as exc:
        _say_invalid(request, exc)
    else:
        messages.success(
            request, f"{idp.name} added; the client secret is stored encrypted and never shown."
        )
    return _back(org_access.organization.slug)


@login_required
@require_POST
def sso_edit(request: HttpRequest, idp_id: int) -> HttpResponse:
    idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
    form = IdentityProviderForm.for_edit(idp, request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _back(idp.organization.slug)
    try:
        services.identity_provider_update(
            actor=request.user,
            idp=idp,
            client_secret=form.cleaned_data["client_secret"],
            **_fields(form, creating=False),
        )
    except ValidationError as exc:
        _say_invalid(request, exc)
    else:
        messages.success(request, f"{idp.name} saved.")
    return _back(idp.organization.slug)


@login_required
@require_POST
def sso_delete(request: HttpRequest, idp_id: int) -> HttpResponse:
    idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
    services.identity_provider_delete(actor=request.user, idp=idp)
    messages.success(request, f"{idp.name} removed; the people it signed in keep their accounts.")
    return _back(idp.organization.slug)


@login_required
@require_POST
def sso_mapping_set(request: HttpRequest, idp_id: int) -> HttpResponse:
    idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
    form = GroupMappingForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _back(idp.organization.slug)
    org = access.OrganizationAccess(
        organization=idp.organization, user=request.user, role=Role.ADMIN
    )
    try:
        slug = form.cleaned_data["team"]
        team = access.team_in(access=org, slug=slug) if slug else None
        services.group_mapping_set(
            actor=request.user,
            idp=idp,
            group=form.cleaned_data["group"],
            role=form.cleaned_data["role"],
            team=team,
        )
    except ValidationError as exc:
        _say_invalid(request, exc)
    else:
        messages.success(
            request, f"Group {form.cleaned_data['group']} mapped; it applies at each next sign-in."
        )
    return _back(idp.organization.slug)


@login_required
@require_POST
def sso_mapping_delete(request: HttpRequest, idp_id: int, mapping_id: int) -> HttpResponse:
    mapping = identity_access.group_mapping_for_change(
        user=request.user, idp_id=idp_id, mapping_id=mapping_id
    )
    services.group_mapping_delete(actor=request.user, mapping=mapping)
    messages.success(request, f"Mapping of {mapping.group} removed.")
    return _back(mapping.identity_provider.organization.slug)


@login_required
@require_POST
def sso_scim_issue(request: HttpRequest, idp_id: int) -> HttpResponse:
    idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
    _, secret = services.scim_token_issue(
        actor=request.user, idp=idp, name=request.POST.get("name", "")[:100]
    )
    base = request.build_absolute_uri("/scim/v2/")
    messages.success(
        request, f"SCIM token for {idp.name} (shown only now): {secret} — base URL {base}"
    )
    return _back(idp.organization.slug)


@login_required
@require_POST
def sso_scim_revoke(request: HttpRequest, idp_id: int, token_id: int) -> HttpResponse:
    idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
    token = idp.scim_tokens.filter(pk=token_id).first()
    if token is not None:
        services.scim_token_revoke(actor=request.user, token=token)
        messages.success(request, f"SCIM token {token.prefix}… revoked.")
    return _back(idp.organization.slug)
