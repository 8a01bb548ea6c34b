"""The Django admin over governance: every write goes through governance.services.

The admin's own save would skip the audit row and the snapshot publish, so
each ``save_model`` hands the form's values to the service instead. What has
no service (renaming, deleting) is read-only here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone

from governance import services
from governance.models import (
    ApiToken,
    Budget,
    BudgetSpend,
    McpBundle,
    McpServer,
    McpToolPolicy,
    Membership,
    ModelPrice,
    Organization,
    Provider,
    RateLimit,
    Route,
    RouteTarget,
    Team,
    VirtualKey,
)


class UserAdmin(auth_admin.UserAdmin):
    """Django's user admin, with (de)activation going through its service, so a
    deactivated user's keys are refused on the data plane and the change is audited."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not (change and "is_active" in form.changed_data):
            super().save_model(request, obj, form, change)
            return
        wanted = obj.is_active
        obj.is_active = not wanted
        super().save_model(request, obj, form, change)
        _adopt(obj, services.user_set_active(actor=request.user, user=obj, is_active=wanted))


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserAdmin)


def _adopt(obj: Model, saved: Model) -> None:
    # The admin goes on to log and redirect using the object it passed to
    # save_model, so that object must become the row the service wrote.
    obj.__dict__.update(saved.__dict__)


class TeamChoicesMixin:
    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A team's label names its organization; join it rather than query per option.
        if db_field.name == "team":
            kwargs["queryset"] = Team.objects.select_related("organization")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


class ServiceWrittenAdmin(admin.ModelAdmin):
    """Created through a service; no service renames or deletes, so neither does the admin."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Without an object this guards the change list and its actions, which stay usable.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(ServiceWrittenAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        _adopt(obj, services.organization_create(actor=request.user, name=obj.name, slug=obj.slug))


@admin.register(Team)
class TeamAdmin(ServiceWrittenAdmin):
    list_display = ("name", "slug", "organization", "created_at")
    list_filter = ("organization",)
    list_select_related = ("organization",)
    search_fields = ("name", "slug", "organization__slug")
    fields = ("organization", "name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        team = services.team_create(
            actor=request.user, organization=obj.organization, name=obj.name, slug=obj.slug
        )
        _adopt(obj, team)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "organization", "role", "team")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        org = data.get("organization") or self.instance.organization
        team = data.get("team")
        if team is not None and team.organization_id != org.pk:
            self.add_error("team", "The team belongs to another organization.")
        return data


@admin.register(Membership)
class MembershipAdmin(TeamChoicesMixin, admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user", "organization", "role", "team", "created_at")
    list_filter = ("role", "organization")
    list_select_related = ("user", "organization", "team__organization")
    search_fields = ("user__username", "organization__slug")
    raw_id_fields = ("user",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Moving a membership to another user or organization is a different membership.
        return ("user", "organization") if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        membership = services.membership_set(
            actor=request.user,
            user=obj.user,
            organization=obj.organization,
            role=obj.role,
            team=obj.team,
        )
        _adopt(obj, membership)


class ProviderForm(forms.ModelForm):
    # Write-only: the form never renders the stored credential, sealed or not.
    credential = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current credential.",
    )

    class Meta:
        model = Provider
        fields = ("name", "kind", "base_url", "is_active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["credential"].required = True
            self.fields["credential"].help_text = "Stored encrypted; never shown again."


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ("name", "kind", "base_url", "is_active", "has_credential", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "base_url")
    fields = ("name", "kind", "base_url", "is_active", "credential")

    @admin.display(boolean=True, description="credential")
    def has_credential(self, obj: Provider) -> bool:
        return bool(obj.credential_sealed)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "kind") if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Provider, form: Any, change: bool) -> None:
        credential = form.cleaned_data.get("credential") or None
        if change:
            # The form has already changed obj in memory; the service must see the stored row
            # to record a true "before".
            provider = services.provider_update(
                actor=request.user,
                provider=Provider.objects.get(pk=obj.pk),
                base_url=obj.base_url,
                is_active=obj.is_active,
                credential=credential,
            )
        else:
            provider = services.provider_create(
                actor=request.user,
                name=obj.name,
                kind=obj.kind,
                base_url=obj.base_url,
                credential=credential or "",
                is_active=obj.is_active,
            )
        _adopt(obj, provider)


class VirtualKeyForm(forms.ModelForm):
    allowed_models = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='One glob pattern per line, such as "claude-sonnet-*". Empty allows every model.',
    )

    class Meta:
        model = VirtualKey
        fields = ("organization", "name", "team", "user", "allowed_models", "expires_at")

    def clean_allowed_models(self) -> list[str]:
        raw = self.cleaned_data.get("allowed_models") or ""
        return [line.strip() for line in raw.splitlines() if line.strip()]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        org, team, user = data.get("organization"), data.get("team"), data.get("user")
        if org is not None:
            try:
                services.key_team_check(organization=org, team=team, user=user)
            except ValidationError as e:
                for field, errors in e.message_dict.items():
                    self.add_error(field, errors)
        expires_at = data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            self.add_error("expires_at", "The expiry must be in the future.")
        return data


@admin.register(VirtualKey)
class VirtualKeyAdmin(TeamChoicesMixin, ServiceWrittenAdmin):
    form = VirtualKeyForm
    list_display = (
        "name",
        "prefix",
        "status",
        "organization",
        "team",
        "user",
        "expires_at",
        "disabled_by_admin",
        "created_at",
    )
    list_filter = ("status", "organization")
    list_select_related = ("organization", "team__organization", "user")
    search_fields = ("name", "prefix", "user__username")
    raw_id_fields = ("user",)
    actions = ("disable_keys", "enable_keys", "rotate_keys")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The digest is never shown; the rest of a saved key is read-only here.
        return ("prefix", "status", "created_by", "created_at") if obj else ()

    def save_model(self, request: HttpRequest, obj: VirtualKey, form: Any, change: bool) -> None:
        key, secret = services.key_create(
            actor=request.user,
            organization=obj.organization,
            name=obj.name,
            team=obj.team,
            user=obj.user,
            allowed_models=list(obj.allowed_models),
            expires_at=obj.expires_at,
        )
        _adopt(obj, key)
        messages.success(request, f"The secret of {key.name}, shown only now, is: {secret}")

    @admin.action(description="Disable selected keys", permissions=["change"])
    def disable_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            services.key_disable(actor=request.user, key=key)
        self.message_user(request, f"Disabled {len(queryset)} key(s).", messages.SUCCESS)

    @admin.action(description="Enable selected keys", permissions=["change"])
    def enable_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            services.key_enable(actor=request.user, key=key)
        self.message_user(request, f"Enabled {len(queryset)} key(s).", messages.SUCCESS)

    # No grace period: rotating from here is for a secret that must stop working now.
    @admin.action(
        description="Rotate selected keys (old secrets stop working)", permissions=["change"]
    )
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset:
            key, secret = services.key_rotate(actor=request.user, key=key)
            messages.success(request, f"The new secret of {key.name}, shown only now, is: {secret}")


class ModelPriceForm(forms.ModelForm):
    class Meta:
        model = ModelPrice
        fields = (
            "model",
            "input_per_mtok",
            "output_per_mtok",
            "cache_write_per_mtok",
            "cache_read_per_mtok",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in self.Meta.fields[1:]:
            value = data.get(name)
            if value is not None and value < 0:
                self.add_error(name, "Prices cannot be negative.")
        return data


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    form = ModelPriceForm
    list_display = (
        "model",
        "input_per_mtok",
        "output_per_mtok",
        "cache_write_per_mtok",
        "cache_read_per_mtok",
        "updated_at",
    )
    search_fields = ("model",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("model",) if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ModelPrice, form: Any, change: bool) -> None:
        price = services.price_set(
            actor=request.user,
            model=obj.model,
            input_per_mtok=obj.input_per_mtok,
            output_per_mtok=obj.output_per_mtok,
            cache_write_per_mtok=obj.cache_write_per_mtok,
            cache_read_per_mtok=obj.cache_read_per_mtok,
        )
        _adopt(obj, price)


class ScopedPolicyForm(forms.ModelForm):
    """Checks that the team, member and key named belong to the organization; the
    models' constraints check that the level names exactly its own target."""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        org = data.get("organization") or getattr(self.instance, "organization", None)
        if org is None:
            return data
        team, user, key = data.get("team"), data.get("user"), data.get("key")
        if team is not None and team.organization_id != org.pk:
            self.add_error("team", "The team belongs to another organization.")
        if key is not None and key.organization_id != org.pk:
            self.add_error("key", "The key belongs to another organization.")
        if user is not None and not user.memberships.filter(organization=org).exists():
            self.add_error("user", f"{user} is not a member of {org.slug}.")
        return data


class BudgetForm(ScopedPolicyForm):
    class Meta:
        model = Budget
        fields = ("level", "organization", "team", "user", "key", "amount_usd", "period", "rolling")


class ScopedPolicyAdmin(TeamChoicesMixin, admin.ModelAdmin):
    list_filter = ("level", "organization")
    list_select_related = ("organization", "team__organization", "user", "key")
    raw_id_fields = ("user", "key")
    # What identifies a policy to its service; changing one of these makes another policy.
    identity: tuple[str, ...] = ()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.identity if obj else ()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.policy_delete(actor=request.user, policy=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for policy in queryset:
            self.policy_delete(actor=request.user, policy=policy)

    def policy_delete(self, *, actor: Any, policy: Any) -> None:
        # The service that deletes this kind of policy, named by the subclass.
        self.delete_service(actor=actor, **{self.delete_arg: policy})

    delete_service: Any
    delete_arg: str


@admin.register(Budget)
class BudgetAdmin(ScopedPolicyAdmin):
    form = BudgetForm
    list_display = (
        "level",
        "organization",
        "team",
        "user",
        "key",
        "amount_usd",
        "period",
        "rolling",
    )
    identity = ("level", "organization", "team", "user", "key", "period")

    def save_model(self, request: HttpRequest, obj: Budget, form: Any, change: bool) -> None:
        budget = services.budget_set(
            actor=request.user,
            level=obj.level,
            organization=obj.organization,
            team=obj.team,
            user=obj.user,
            key=obj.key,
            amount_usd=obj.amount_usd,
            period=obj.period,
            rolling=obj.rolling,
        )
        _adopt(obj, budget)

    delete_service = staticmethod(services.budget_delete)
    delete_arg = "budget"

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Persisted spend goes with its budget; that it cannot be deleted alone must not block this.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(BudgetSpend._meta.verbose_name)
        return deleted, counts, perms_needed, protected


class RateLimitForm(ScopedPolicyForm):
    class Meta:
        model = RateLimit
        fields = (
            "level",
            "organization",
            "team",
            "user",
            "key",
            "metric",
            "limit",
            "window_seconds",
            "model_pattern",
            "provider",
        )

    def clean_window_seconds(self) -> int:
        # The service's bound, checked here so the form can say so instead of failing on save.
        window = self.cleaned_data["window_seconds"]
        if window > 31 * 86400:
            raise forms.ValidationError("The window must be between 1 second and 31 days.")
        return window


@admin.register(RateLimit)
class RateLimitAdmin(ScopedPolicyAdmin):
    form = RateLimitForm
    list_display = (
        "level",
        "organization",
        "team",
        "user",
        "key",
        "metric",
        "limit",
        "window_seconds",
        "model_pattern",
        "provider",
    )
    list_select_related = (*ScopedPolicyAdmin.list_select_related, "provider")
    identity = (
        "level",
        "organization",
        "team",
        "user",
        "key",
        "metric",
        "window_seconds",
        "model_pattern",
        "provider",
    )

    def save_model(self, request: HttpRequest, obj: RateLimit, form: Any, change: bool) -> None:
        rate_limit = services.rate_limit_set(
            actor=request.user,
            level=obj.level,
            organization=obj.organization,
            team=obj.team,
            user=obj.user,
            key=obj.key,
            metric=obj.metric,
            limit=obj.limit,
            window_seconds=obj.window_seconds,
            model_pattern=obj.model_pattern,
            provider=obj.provider,
        )
        _adopt(obj, rate_limit)

    delete_service = staticmethod(services.rate_limit_delete)
    delete_arg = "rate_limit"


@admin.register(BudgetSpend)
class BudgetSpendAdmin(admin.ModelAdmin):
    """Written only by the periodic copy from the counter store; shown for reference."""

    list_display = ("budget", "period_start", "spent_usd", "persisted_at")
    list_filter = ("budget__organization",)
    list_select_related = (
        "budget__organization",
        "budget__team__organization",
        "budget__user",
        "budget__key",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RouteForm(forms.ModelForm):
    class Meta:
        model = Route
        fields = ("organization", "team", "key", "model_pattern")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        org, team, key = data.get("organization"), data.get("team"), data.get("key")
        if team is not None and key is not None:
            self.add_error("key", "A route names a team or a key, not both.")
        if team is not None and (org is None or team.organization_id != org.pk):
            self.add_error("team", "A team route needs the team's organization.")
        if key is not None and (org is None or key.organization_id != org.pk):
            self.add_error("key", "A key route needs the key's organization.")
        return data


class RouteTargetForm(forms.ModelForm):
    class Meta:
        model = RouteTarget
        fields = ("provider", "model", "weight", "tier")

    def clean_weight(self) -> int:
        weight = self.cleaned_data["weight"]
        if weight < 1:
            raise forms.ValidationError("Weights are positive integers.")
        return weight


class RouteTargetFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not kept:
            raise forms.ValidationError("A route needs at least one target.")


class RouteTargetInline(admin.TabularInline):
    model = RouteTarget
    form = RouteTargetForm
    formset = RouteTargetFormSet
    extra = 1


@admin.register(Route)
class RouteAdmin(TeamChoicesMixin, admin.ModelAdmin):
    """A route and its targets are one thing to route_set: the inline rows become its
    targets list, and every save replaces them all."""

    form = RouteForm
    inlines = (RouteTargetInline,)
    list_display = ("model_pattern", "organization", "team", "key", "created_at")
    list_filter = ("organization",)
    list_select_related = ("organization", "team__organization", "key")
    search_fields = ("model_pattern", "organization__slug", "team__slug", "key__prefix")
    raw_id_fields = ("key",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The scope and pattern name the route to route_set; changing them makes another route.
        return ("organization", "team", "key", "model_pattern") if obj else ()

    def save_model(self, request: HttpRequest, obj: Route, form: Any, change: bool) -> None:
        # Written in save_related, where the inline rows are at hand.
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        obj = form.instance
        targets = [
            {
                "provider": row["provider"],
                "model": row["model"],
                "weight": row["weight"],
                "tier": row["tier"],
            }
            for formset in formsets
            for row in formset.cleaned_data
            if row and not row.get("DELETE")
        ]
        route = services.route_set(
            actor=request.user,
            model_pattern=obj.model_pattern,
            targets=targets,
            organization=obj.organization,
            team=obj.team,
            key=obj.key,
        )
        _adopt(obj, route)
        for formset in formsets:
            # The change message reads what formset.save() would have recorded; the service
            # replaced the rows instead.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request: HttpRequest, obj: Route) -> None:
        services.route_delete(actor=request.user, route=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        for route in queryset:
            services.route_delete(actor=request.user, route=route)


# --- MCP gateway ----------------------------------------------------------------


class McpServerForm(forms.ModelForm):
    # Write-only like a provider credential: the stored secrets are never rendered.
    headers = forms.JSONField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text='Static headers as JSON, e.g. {"Authorization": "Bearer …"}. Leave empty to keep the current ones.',
    )
    client_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="OAuth client secret. Leave empty to keep the current one.",
    )
    env = forms.JSONField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="A stdio server's environment as JSON. Leave empty to keep the current one.",
    )

    class Meta:
        model = McpServer
        fields = (
            "name", "description", "transport", "url", "auth", "token_url", "client_id", "scope",
            "command", "cwd", "timeout_seconds", "is_active",
        )

    def clean(self) -> dict[str, Any]:
        # The service's rules, checked here so the form can show them instead of failing on save.
        data = super().clean()
        if self.errors:
            return data
        stored = services.mcp_server_secrets(self.instance) if self.instance.pk else {}
        secrets = {
            "headers": data.get("headers") or stored.get("headers"),
            "client_secret": data.get("client_secret") or stored.get("client_secret"),
            "env": data.get("env") or stored.get("env"),
        }
        candidate = McpServer(**{f: data.get(f, getattr(self.instance, f)) for f in McpServerForm.Meta.fields})
        services.mcp_server_validate(candidate, {k: v for k, v in secrets.items() if v})
        return data


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerForm
    list_display = ("name", "transport", "url", "auth", "is_active", "created_at")
    list_filter = ("transport", "is_active")
    search_fields = ("name", "url", "description")
    fields = (*McpServerForm.Meta.fields, "headers", "client_secret", "env")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "transport") if obj else ()

    def save_model(self, request: HttpRequest, obj: McpServer, form: Any, change: bool) -> None:
        data = form.cleaned_data
        secrets = {
            "headers": data.get("headers") or None,
            "client_secret": data.get("client_secret") or None,
            "env": data.get("env") or None,
        }
        values = {f: getattr(obj, f) for f in McpServerForm.Meta.fields if f not in ("name", "transport")}
        if change:
            server = services.mcp_server_update(
                actor=request.user, server=McpServer.objects.get(pk=obj.pk), **values, **secrets
            )
        else:
            server = services.mcp_server_create(
                actor=request.user, name=obj.name, transport=obj.transport, **values,
                **{k: v for k, v in secrets.items() if v is not None},
            )
        _adopt(obj, server)

    def delete_model(self, request: HttpRequest, obj: McpServer) -> None:
        services.mcp_server_delete(actor=request.user, server=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for server in queryset:
            services.mcp_server_delete(actor=request.user, server=server)


class McpToolPolicyForm(ScopedPolicyForm):
    class Meta:
        model = McpToolPolicy
        fields = ("level", "organization", "team", "user", "key", "allowed", "denied")


@admin.register(McpToolPolicy)
class McpToolPolicyAdmin(ScopedPolicyAdmin):
    form = McpToolPolicyForm
    list_display = ("level", "organization", "team", "user", "key", "allowed", "denied")
    identity = ("level", "organization", "team", "user", "key")

    def save_model(self, request: HttpRequest, obj: McpToolPolicy, form: Any, change: bool) -> None:
        policy = services.mcp_tool_policy_set(
            actor=request.user, level=obj.level, organization=obj.organization, team=obj.team, user=obj.user,
            key=obj.key, allowed=obj.allowed, denied=obj.denied,
        )
        _adopt(obj, policy)

    delete_service = staticmethod(services.mcp_tool_policy_delete)
    delete_arg = "policy"


@admin.register(McpBundle)
class McpBundleAdmin(admin.ModelAdmin):
    list_display = ("name", "tools", "description")
    fields = ("name", "description", "tools")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name",) if obj else ()

    def save_model(self, request: HttpRequest, obj: McpBundle, form: Any, change: bool) -> None:
        bundle = services.mcp_bundle_set(actor=request.user, name=obj.name, tools=obj.tools, description=obj.description)
        _adopt(obj, bundle)

    def delete_model(self, request: HttpRequest, obj: McpBundle) -> None:
        services.mcp_bundle_delete(actor=request.user, bundle=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for bundle in queryset:
            services.mcp_bundle_delete(actor=request.user, bundle=bundle)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens by prefix: the secret is not kept, so nothing here can be replayed."""

    list_display = ("prefix", "user", "name", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    list_select_related = ("user",)
    search_fields = ("prefix", "user__username", "name")
    fields = ("prefix", "user", "name", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_tokens",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens", permissions=["view"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            services.api_token_revoke(actor=request.user, token=token)
        self.message_user(request, f"Revoked {len(queryset)} token(s).", messages.SUCCESS)
