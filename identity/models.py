"""Identity providers an organization signs its people in with, and what their groups grant."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from governance.models import Organization, Role, Team
from identity.presets import Preset

# A mapping for this group applies to everyone the provider signs in (Google
# Workspace sends no groups; elsewhere it gives a default role).
EVERYONE = "*"


class IdentityProvider(models.Model):
    """An OIDC provider of one organization. Its slug names it in the sign-in URL
    (/sso/<slug>/start/), so it is unique across organizations."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="identity_providers"
    )
    slug = models.SlugField(max_length=100, unique=True)
    # Shown on the login page as "Sign in with <name>".
    name = models.CharField(max_length=100)
    preset = models.CharField(max_length=20, choices=Preset.choices, default=Preset.GENERIC)
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    # Fernet token (governance/sealing.py); never the plaintext.
    client_secret_sealed = models.TextField(blank=True, default="")
    scopes = models.CharField(max_length=500, default="openid email profile")
    email_claim = models.CharField(max_length=100, default="email")
    # Empty: the provider sends no groups (only * mappings apply).
    groups_claim = models.CharField(max_length=100, blank=True, default="groups")
    # Lower-case domains; empty allows any address the provider vouches for.
    allowed_domains = models.JSONField(default=list, blank=True)
    # Entra's group overage: fetch the groups from Microsoft Graph with the
    # sign-in's access token, or refuse the sign-in saying why.
    groups_from_graph = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class GroupMapping(models.Model):
    """Members of ``group`` at the provider get ``role`` (and ``team``) in its organization."""

    identity_provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="group_mappings"
    )
    group = models.CharField(max_length=255)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.DEVELOPER)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group"]
        constraints = [
            models.UniqueConstraint(
                fields=["identity_provider", "group"], name="group_mapping_unique_per_idp"
            )
        ]

    def __str__(self) -> str:
        return f"{self.identity_provider.slug}: {self.group} → {self.role}"


class IdentityLink(models.Model):
    """A person at a provider (its ``sub``, stable where emails change) and the Tollgate user they are."""

    identity_provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="links"
    )
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identity_links"
    )
    # The groups the provider last said, as compared at the next sign-in.
    groups = models.JSONField(default=list, blank=True)
    last_signin_at = models.DateTimeField(null=True, blank=True)
    # Set when a sign-in found them in no mapped group and Tollgate deactivated
    # them for it; a later sign-in with a mapped group may reactivate them.
    deprovisioned_at = models.DateTimeField(null=True, blank=True)
    # Made by the provider's SCIM client (its resource id is this row's id), and
    # whether that client deactivated the person: no sign-in through the provider then.
    scim = models.BooleanField(default=False)
    suspended = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["identity_provider", "subject"], name="identity_link_unique_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.identity_provider.slug}:{self.subject} → {self.user}"


class ScimToken(models.Model):
    """The bearer token a provider's SCIM client (Okta, Entra ID) provisions with. Only the
    prefix and the peppered HMAC digest are kept; the secret is shown once."""

    identity_provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="scim_tokens"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=32, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.identity_provider.slug} SCIM {self.prefix}…"


class ScimGroup(models.Model):
    """A group the provider pushes over SCIM; its display name or external id is what
    group mappings match, as they match the groups claim at sign-in."""

    identity_provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="scim_groups"
    )
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True, default="")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return f"{self.identity_provider.slug}: {self.display_name}"
