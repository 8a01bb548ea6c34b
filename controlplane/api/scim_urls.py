from django.urls import path

from controlplane.api.scim import (
    ScimGroupApi,
    ScimGroupsApi,
    ScimServiceProviderConfigApi,
    ScimUserApi,
    ScimUsersApi,
)

urlpatterns = [
    path("ServiceProviderConfig", ScimServiceProviderConfigApi.as_view(), name="scim-config"),
    path("Users", ScimUsersApi.as_view(), name="scim-users"),
    path("Users/<str:user_id>", ScimUserApi.as_view(), name="scim-user"),
    path("Groups", ScimGroupsApi.as_view(), name="scim-groups"),
    path("Groups/<str:group_id>", ScimGroupApi.as_view(), name="scim-group"),
]
