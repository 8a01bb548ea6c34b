from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from controlplane.metrics import metrics

# People sign in at one door, the console's (password, then TOTP when enrolled);
# the Django admin sends them there rather than checking a password itself.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = admin.site.site_title = "Tollgate administration"
admin.site.site_url = "/"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("sso/", include("identity.urls")),
    path("scim/v2/", include("controlplane.api.scim_urls")),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include("controlplane.api.urls")),
    # Claude Code's sign-in (the data plane relays the client's calls here) and its confirmation page.
    path("", include("devicelogin.urls")),
    path("", include("controlplane.web.urls")),
]
