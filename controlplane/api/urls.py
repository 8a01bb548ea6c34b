from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from controlplane.api.alerts import AlertChannelApi, AlertChannelsApi, AlertDeliveriesApi
from controlplane.api.audit import AuditEventsApi
from controlplane.api.auth import ApiTokenApi, ApiTokensApi, TokenCreateApi
from controlplane.api.budgets import BudgetDeleteApi, BudgetsApi
from controlplane.api.identity_providers import (
    GroupMappingApi,
    GroupMappingsApi,
    IdentityProviderApi,
    IdentityProvidersApi,
    ScimTokenApi,
    ScimTokensApi,
)
from controlplane.api.keys import KeyApi, KeyDisableApi, KeyEnableApi, KeyRotateApi, KeysApi
from controlplane.api.managed_settings import ManagedSettingsApi
from controlplane.api.mcp import (
    McpBundleApi,
    McpBundlesApi,
    McpPoliciesApi,
    McpPolicyApi,
    McpServerApi,
    McpServerCheckApi,
    McpServersApi,
)
from controlplane.api.members import MemberApi
from controlplane.api.organizations import OrganizationApi, OrganizationsApi
from controlplane.api.prices import PricesApi, PriceSetApi
from controlplane.api.providers import ProviderCredentialApi, ProviderCredentialsApi, ProvidersApi
from controlplane.api.rate_limits import RateLimitDeleteApi, RateLimitsApi
from controlplane.api.requests import RequestsApi
from controlplane.api.root import ApiRootApi
from controlplane.api.routes import GatewayRoutesApi, OrganizationRoutesApi, RouteDeleteApi
from controlplane.api.teams import TeamApi, TeamsApi
from controlplane.api.users import UserActivateApi, UserDeactivateApi, UsersApi


class IdConverter:
    """A row id: at most 18 digits, so it always fits the database's 64-bit key
    (a longer one is a missing page, not an overflow and a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

# drf-spectacular serves its views to anyone by default; the API's shape is for signed-in users.
SIGNED_IN = {"permission_classes": [IsAuthenticated]}

urlpatterns = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("schema/", SpectacularAPIView.as_view(**SIGNED_IN), name="api-schema"),
    path(
        "schema/swagger/",
        SpectacularSwaggerView.as_view(url_name="api-schema", **SIGNED_IN),
        name="api-swagger",
    ),
    path("auth/token/", TokenCreateApi.as_view(), name="api-token"),
    path("auth/tokens/", ApiTokensApi.as_view(), name="api-tokens"),
    path("auth/tokens/<id:token_id>/", ApiTokenApi.as_view(), name="api-token-revoke"),
    path("organizations/", OrganizationsApi.as_view(), name="api-organizations"),
    path("organizations/<slug:slug>/", OrganizationApi.as_view(), name="api-organization"),
    path("organizations/<slug:slug>/teams/", TeamsApi.as_view(), name="api-teams"),
    path(
        "organizations/<slug:slug>/teams/<slug:team_slug>/",
        TeamApi.as_view(),
        name="api-team",
    ),
    path("organizations/<slug:slug>/keys/", KeysApi.as_view(), name="api-keys"),
    path("organizations/<slug:slug>/members/<str:username>/", MemberApi.as_view(), name="api-member"),
    path("organizations/<slug:slug>/budgets/", BudgetsApi.as_view(), name="api-budgets"),
    path("organizations/<slug:slug>/rate-limits/", RateLimitsApi.as_view(), name="api-rate-limits"),
    path("organizations/<slug:slug>/alert-channels/", AlertChannelsApi.as_view(), name="api-alert-channels"),
    path(
        "organizations/<slug:slug>/alert-channels/<id:channel_id>/",
        AlertChannelApi.as_view(),
        name="api-alert-channel",
    ),
    path("organizations/<slug:slug>/alert-deliveries/", AlertDeliveriesApi.as_view(), name="api-alert-deliveries"),
    path("organizations/<slug:slug>/managed-settings/", ManagedSettingsApi.as_view(), name="api-managed-settings"),
    path(
        "organizations/<slug:slug>/routes/",
        OrganizationRoutesApi.as_view(),
        name="api-organization-routes",
    ),
    path(
        "organizations/<slug:slug>/identity-providers/",
        IdentityProvidersApi.as_view(),
        name="api-identity-providers",
    ),
    path("identity-providers/<id:idp_id>/", IdentityProviderApi.as_view(), name="api-identity-provider"),
    path(
        "identity-providers/<id:idp_id>/group-mappings/",
        GroupMappingsApi.as_view(),
        name="api-group-mappings",
    ),
    path(
        "identity-providers/<id:idp_id>/group-mappings/<id:mapping_id>/",
        GroupMappingApi.as_view(),
        name="api-group-mapping",
    ),
    path("identity-providers/<id:idp_id>/scim-tokens/", ScimTokensApi.as_view(), name="api-scim-tokens"),
    path(
        "identity-providers/<id:idp_id>/scim-tokens/<id:token_id>/",
        ScimTokenApi.as_view(),
        name="api-scim-token",
    ),
    path("keys/<id:key_id>/", KeyApi.as_view(), name="api-key"),
    path("keys/<id:key_id>/disable/", KeyDisableApi.as_view(), name="api-key-disable"),
    path("keys/<id:key_id>/enable/", KeyEnableApi.as_view(), name="api-key-enable"),
    path("keys/<id:key_id>/rotate/", KeyRotateApi.as_view(), name="api-key-rotate"),
    path("budgets/<id:budget_id>/", BudgetDeleteApi.as_view(), name="api-budget"),
    path("rate-limits/<id:rate_limit_id>/", RateLimitDeleteApi.as_view(), name="api-rate-limit"),
    path("routes/", GatewayRoutesApi.as_view(), name="api-routes"),
    path("routes/<id:route_id>/", RouteDeleteApi.as_view(), name="api-route"),
    path("users/", UsersApi.as_view(), name="api-users"),
    path("users/<id:user_id>/deactivate/", UserDeactivateApi.as_view(), name="api-user-deactivate"),
    path("users/<id:user_id>/activate/", UserActivateApi.as_view(), name="api-user-activate"),
    path("providers/", ProvidersApi.as_view(), name="api-providers"),
    path("providers/<id:provider_id>/credentials/", ProviderCredentialsApi.as_view(), name="api-provider-credentials"),
    path(
        "providers/<id:provider_id>/credentials/<id:credential_id>/",
        ProviderCredentialApi.as_view(),
        name="api-provider-credential",
    ),
    path("prices/", PricesApi.as_view(), name="api-prices"),
    path("prices/<path:model>/", PriceSetApi.as_view(), name="api-price-set"),
    path("reports/", include("controlplane.api.reports")),
    path("requests/", RequestsApi.as_view(), name="api-requests"),
    path("audit/", AuditEventsApi.as_view(), name="api-audit"),
    path("mcp/servers/", McpServersApi.as_view(), name="api-mcp-servers"),
    path("mcp/servers/<id:server_id>/", McpServerApi.as_view(), name="api-mcp-server"),
    path("mcp/servers/<id:server_id>/check/", McpServerCheckApi.as_view(), name="api-mcp-server-check"),
    path("mcp/bundles/", McpBundlesApi.as_view(), name="api-mcp-bundles"),
    path("mcp/bundles/<slug:name>/", McpBundleApi.as_view(), name="api-mcp-bundle"),
    path("organizations/<slug:slug>/mcp-policies/", McpPoliciesApi.as_view(), name="api-mcp-policies"),
    path("mcp-policies/<id:policy_id>/", McpPolicyApi.as_view(), name="api-mcp-policy"),
]
