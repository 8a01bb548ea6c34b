"""Devices signed in through the gateway (RFC 8628 device authorization).

A device authorization lives the few minutes between the client asking for a
code and the user confirming it in the console; the sign-in it becomes lives
as long as its refresh token, and stands on a virtual key of its own (the
user's team, the user's chain), which is what the data plane checks.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import models
from django.utils import timezone

from governance.models import Organization, VirtualKey


class AuthorizationStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the user"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    ISSUED = "issued", "Tokens issued"


class DeviceAuthorization(models.Model):
    # HMAC of the device code (the client's secret while it polls), never the code itself.
    device_code_digest = models.CharField(max_length=64, unique=True)
    user_code = models.CharField(max_length=9, db_index=True)
    status = models.CharField(max_length=10, choices=AuthorizationStatus.choices, default=AuthorizationStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    interval = models.PositiveIntegerField(default=5)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    client_address = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=300, blank=True, default="")
    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    signin = models.ForeignKey("DeviceSignin", null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"device code {self.user_code} ({self.status})"


class DeviceSignin(models.Model):
    uid = models.CharField(max_length=32, unique=True)
    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_signins")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key = models.OneToOneField(VirtualKey, on_delete=models.CASCADE, related_name="device_signin")
    refresh_digest = models.CharField(max_length=64, blank=True, default="", db_index=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    client_address = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=300, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user} on {self.key.prefix}"


class ManagedSettings(models.Model):
    """Claude Code's managed settings for an organization, or one of its teams
    (which then applies instead): what ``GET /managed/settings`` serves."""

    uuid = models.UUIDField(unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey("governance.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    settings = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "team"], name="one_managed_settings_per_scope"),
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(team=None), name="one_managed_settings_per_org"
            ),
        ]

    def __str__(self) -> str:
        return f"managed settings of {self.team or self.organization}"
