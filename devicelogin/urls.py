from django.urls import path

from devicelogin import views

urlpatterns = [
    path("oauth/device_authorization", views.device_authorization, name="oauth-device-authorization"),
    path("oauth/token", views.token, name="oauth-token"),
    path("oauth/revoke", views.revoke, name="oauth-revoke"),
    path("managed/settings", views.managed_settings, name="managed-settings"),
    path("api/oauth/usage", views.oauth_usage, name="oauth-usage"),
    path("device/", views.device_page, name="device"),
    path("device/signins/<int:signin_id>/sign-out/", views.signin_revoke, name="device-signout"),
]
