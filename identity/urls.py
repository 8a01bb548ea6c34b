from django.urls import path

from identity.oidc import SsoCallbackView, SsoStartView

urlpatterns = [
    path("callback/", SsoCallbackView.as_view(), name="sso-callback"),
    path("<slug:slug>/start/", SsoStartView.as_view(), name="sso-start"),
]
