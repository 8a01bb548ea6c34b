from django.contrib import admin
from django.urls import include, path

from controlplane.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include("controlplane.api.urls")),
    path("", include("controlplane.web.urls")),
]
