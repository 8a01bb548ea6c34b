"""What each identity provider calls things, so an admin only picks one and fills in the issuer.

Sources: Okta's custom authorization servers put the ``groups`` claim in the
ID token when a groups claim is defined for the app
(https://developer.okta.com/docs/guides/customize-tokens-groups-claim/);
Microsoft Entra ID puts group object ids in ``groups`` when the app's
``groupMembershipClaims`` is set, and past 200 of them sends an overage
(``_claim_names``/``_claim_sources``, or ``hasgroups`` in implicit flows)
instead of the list (https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference);
Keycloak sends ``groups`` once a "Group Membership" mapper is added to the
client; Google Workspace sends no groups at all, only ``email`` and the
hosted domain ``hd`` (https://developers.google.com/identity/openid-connect/openid-connect).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class Preset(models.TextChoices):
    GENERIC = "generic", "Any OIDC provider"
    OKTA = "okta", "Okta"
    ENTRA = "entra", "Microsoft Entra ID"
    KEYCLOAK = "keycloak", "Keycloak"
    GOOGLE = "google", "Google Workspace"


@dataclass(frozen=True, slots=True)
class PresetDefaults:
    scopes: str
    email_claim: str
    groups_claim: str
    issuer_hint: str
    note: str


PRESETS: dict[str, PresetDefaults] = {
    Preset.GENERIC: PresetDefaults(
        scopes="openid email profile",
        email_claim="email",
        groups_claim="groups",
        issuer_hint="https://idp.example.com",
        note="Any provider that publishes /.well-known/openid-configuration.",
    ),
    Preset.OKTA: PresetDefaults(
        scopes="openid email profile groups",
        email_claim="email",
        groups_claim="groups",
        issuer_hint="https://<your-org>.okta.com/oauth2/default",
        note="Add a groups claim (filter: matches regex .*) to the authorization server.",
    ),
    Preset.ENTRA: PresetDefaults(
        scopes="openid email profile",
        email_claim="email",
        groups_claim="groups",
        issuer_hint="https://login.microsoftonline.com/<tenant-id>/v2.0",
        note=(
            "Set groupMembershipClaims in the app manifest and add the email optional claim. "
            "Groups arrive as object ids; past 200 Entra sends an overage instead, which Tollgate "
            "resolves through Microsoft Graph only when group lookup is on (scope GroupMember.Read.All)."
        ),
    ),
    Preset.KEYCLOAK: PresetDefaults(
        scopes="openid email profile",
        email_claim="email",
        groups_claim="groups",
        issuer_hint="https://keycloak.example.com/realms/<realm>",
        note="Add a Group Membership mapper (token claim name: groups, full path off) to the client.",
    ),
    Preset.GOOGLE: PresetDefaults(
        scopes="openid email profile",
        email_claim="email",
        groups_claim="",
        issuer_hint="https://accounts.google.com",
        note="Google sends no groups: map * (everyone this provider signs in) and restrict the domains.",
    ),
}
