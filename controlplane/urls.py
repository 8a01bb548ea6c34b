from django.contrib import admin
from django.urls import include, path

from controlplane.metrics import metrics
from controlplane.signin import SigninForm

# The admin's login says when a throttled sign-in may try again (controlplane/signin.py).
admin.site.login_form = SigninForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include("controlplane.api.urls")),
    path("", include("controlplane.web.urls")),
]
