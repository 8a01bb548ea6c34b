"""The only writers of single sign-on state: identity providers, their group mappings,
and what a sign-in does to a person's account, memberships and keys.

Configuration changes take a keyword-only ``actor`` (an admin of the provider's
organization) and write their audit row in the same transaction. A sign-in acts
as the provider itself (``idp:<slug>`` in the audit trail): it creates the user
on first sign-in, applies the group mappings every time, and when the person is
in no mapped group any more, takes their membership away and disables their
keys through the governance services, which publish the snapshot the data
plane refuses them by.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from audit.services import audit_note, audit_record
from governance import access, sealing
from governance import services as governance
from governance.models import KeyStatus, Membership, Organization, Role, Team, VirtualKey
from identity.claims import Person, SignInRefused, domain_allowed
from identity.models import EVERYONE, GroupMapping, IdentityLink, IdentityProvider
from identity.presets import PRESETS, Preset

User = get_user_model()
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ROLE_RANK = {Role.VIEWER: 1, Role.DEVELOPER: 2, Role.ADMIN: 3}
EDITABLE = (
    "name",
    "preset",
    "issuer",
    "client_id",
    "scopes",
    "email_claim",
    "groups_claim",
    "allowed_domains",
    "groups_from_graph",
    "enabled",
)


def _manage_require(*, actor: Any, organization: Organization) -> None:
    if not access.actor_manages(actor=actor, organization=organization):
        raise PermissionDenied("Only an admin of this organization may change its single sign-on.")


def _idp_state(idp: IdentityProvider) -> dict[str, Any]:
    # The client secret never enters the audit trail; only whether one is set.
    state = {name: getattr(idp, name) for name in EDITABLE}
    return state | {"slug": idp.slug, "has_client_secret": bool(idp.client_secret_sealed)}


def _domains(values: Any) -> list[str]:
    if isinstance(values, str):
        values = re.split(r"[\s,]+", values)
    domains = sorted({str(v).strip().lower().lstrip("@") for v in values or [] if str(v).strip()})
    bad = [d for d in domains if not DOMAIN.match(d)]
    if bad:
        raise ValidationError({"allowed_domains": f"'{bad[0]}' is not a domain name."})
    return domains


def _validated(idp: IdentityProvider) -> None:
    if idp.preset not in Preset.values:
        raise ValidationError(
            {"preset": f"Unknown preset '{idp.preset}'; use one of {', '.join(Preset.values)}."}
        )
    if "openid" not in idp.scopes.split():
        raise ValidationError({"scopes": "The scopes must include openid."})
    if not idp.issuer.startswith(("https://", "http://")):
        raise ValidationError({"issuer": "The issuer is the provider's https:// URL."})
    if not idp.client_id.strip():
        raise ValidationError({"client_id": "Give the client id the provider issued."})
    if not idp.email_claim.strip():
        raise ValidationError({"email_claim": "Name the claim that holds the email address."})
    idp.allowed_domains = _domains(idp.allowed_domains)


@transaction.atomic
def identity_provider_create(
    *,
    actor: Any,
    organization: Organization,
    name: str,
    issuer: str,
    client_id: str,
    client_secret: str = "",
    slug: str = "",
    preset: str = Preset.GENERIC,
    scopes: str = "",
    email_claim: str = "",
    groups_claim: str | None = None,
    allowed_domains: Any = (),
    groups_from_graph: bool = False,
    enabled: bool = True,
) -> IdentityProvider:
    """A new identity provider; what is left blank comes from the preset's defaults."""
    _manage_require(actor=actor, organization=organization)
    defaults = PRESETS.get(preset, PRESETS[Preset.GENERIC])
    slug = slug or slugify(f"{organization.slug}-{name}")
    if IdentityProvider.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"An identity provider with slug '{slug}' already exists."})
    idp = IdentityProvider(
        organization=organization,
        slug=slug,
        name=name,
        preset=preset,
        issuer=issuer.strip(),
        client_id=client_id.strip(),
        client_secret_sealed=sealing.seal(client_secret),
        scopes=scopes.strip() or defaults.scopes,
        email_claim=email_claim.strip() or defaults.email_claim,
        groups_claim=defaults.groups_claim if groups_claim is None else groups_claim.strip(),
        allowed_domains=allowed_domains,
        groups_from_graph=groups_from_graph,
        enabled=enabled,
    )
    _validated(idp)
    idp.save()
    audit_record(actor=actor, action="identity_provider.create", target=idp, after=_idp_state(idp))
    return idp


@transaction.atomic
def identity_provider_update(
    *, actor: Any, idp: IdentityProvider, client_secret: str = "", **changes: Any
) -> IdentityProvider:
    """Change the fields given; a non-empty ``client_secret`` replaces the sealed one."""
    idp = IdentityProvider.objects.select_for_update().select_related("organization").get(pk=idp.pk)
    _manage_require(actor=actor, organization=idp.organization)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError({unknown[0]: "This field cannot be changed."})
    before = _idp_state(idp)
    for name, value in changes.items():
        setattr(idp, name, value.strip() if isinstance(value, str) else value)
    if client_secret:
        idp.client_secret_sealed = sealing.seal(client_secret)
    _validated(idp)
    idp.save()
    after = _idp_state(idp) | {"client_secret_replaced": bool(client_secret)}
    audit_record(
        actor=actor, action="identity_provider.update", target=idp, before=before, after=after
    )
    return idp


@transaction.atomic
def identity_provider_delete(*, actor: Any, idp: IdentityProvider) -> None:
    """Remove a provider; the people it signed in keep their accounts, memberships and keys."""
    _manage_require(actor=actor, organization=idp.organization)
    audit_record(actor=actor, action="identity_provider.delete", target=idp, before=_idp_state(idp))
    idp.delete()


def _mapping_state(mapping: GroupMapping) -> dict[str, Any]:
    return {
        "group": mapping.group,
        "role": mapping.role,
        "team": mapping.team.slug if mapping.team else None,
    }


@transaction.atomic
def group_mapping_set(
    *, actor: Any, idp: IdentityProvider, group: str, role: str, team: Team | None = None
) -> GroupMapping:
    """Members of ``group`` (``*``: everyone the provider signs in) get ``role`` and ``team``
    in the provider's organization, from their next sign-in on."""
    _manage_require(actor=actor, organization=idp.organization)
    group = group.strip()
    if not group:
        raise ValidationError(
            {"group": "Name the group as the provider sends it (or * for everyone)."}
        )
    if role not in Role.values:
        raise ValidationError(
            {"role": f"Unknown role '{role}'; use one of {', '.join(Role.values)}."}
        )
    if team is not None and team.organization_id != idp.organization_id:
        raise ValidationError({"team": "The team belongs to another organization."})
    mapping = GroupMapping.objects.filter(identity_provider=idp, group=group).first()
    before = _mapping_state(mapping) if mapping else None
    mapping = mapping or GroupMapping(identity_provider=idp, group=group)
    mapping.role, mapping.team = role, team
    mapping.save()
    audit_record(
        actor=actor,
        action="group_mapping.set",
        target=mapping,
        before=before,
        after=_mapping_state(mapping),
    )
    return mapping


@transaction.atomic
def group_mapping_delete(*, actor: Any, mapping: GroupMapping) -> None:
    _manage_require(actor=actor, organization=mapping.identity_provider.organization)
    audit_record(
        actor=actor, action="group_mapping.delete", target=mapping, before=_mapping_state(mapping)
    )
    mapping.delete()


# --- sign-in -------------------------------------------------------------------


def sso_actor(idp: IdentityProvider) -> str:
    return f"idp:{idp.slug}"


def sso_refusal_record(*, idp: IdentityProvider | None, refusal: SignInRefused) -> None:
    """Put a refused single sign-on on record, in a transaction of its own."""
    after = {"reason": refusal.reason, **refusal.detail}
    if idp is None:
        audit_note(
            actor="anonymous",
            action="auth.sso_failed",
            target_type="identity.identityprovider",
            target_id="",
            after=after,
        )
        return
    with transaction.atomic():
        audit_record(actor="anonymous", action="auth.sso_failed", target=idp, after=after)


def sso_signin_record(*, idp: IdentityProvider, user: Any) -> None:
    with transaction.atomic():
        audit_record(
            actor=user,
            action="auth.signin",
            target=user,
            after={"method": "sso", "identity_provider": idp.slug},
        )


def _mapped(idp: IdentityProvider, groups: tuple[str, ...]) -> tuple[str, Team | None] | None:
    """The role and team the mappings give someone in ``groups``: the highest role among
    the mappings that match, and the team of the highest-ranked match that names one."""
    matches = [
        m
        for m in idp.group_mappings.select_related("team")
        if m.group == EVERYONE or m.group in groups
    ]
    if not matches:
        return None
    matches.sort(key=lambda m: (-ROLE_RANK[Role(m.role)], m.group))
    team = next((m.team for m in matches if m.team is not None), None)
    return matches[0].role, team


def _username_for(person: Person) -> str:
    base = person.email[:150]
    if not User.objects.filter(username=base).exists():
        return base
    stem = person.email.partition("@")[0][:120]
    n = 2
    while User.objects.filter(username=f"{stem}-{n}").exists():
        n += 1
    return f"{stem}-{n}"


def _existing_user(idp: IdentityProvider, person: Person) -> Any | None:
    """An account made before this provider was connected, taken over by email only when
    that is safe: verified address, no platform admin, and a member of this provider's
    organization and of no other (another organization's admin could otherwise claim
    anyone's address with an IdP of their own)."""
    if not person.email_verified:
        return None
    found = list(User.objects.filter(email__iexact=person.email, is_superuser=False)[:2])
    if len(found) != 1:
        return None
    orgs = set(Membership.objects.filter(user=found[0]).values_list("organization_id", flat=True))
    return found[0] if orgs == {idp.organization_id} else None


def _deprovision(*, idp: IdentityProvider, link: IdentityLink) -> None:
    """In no mapped group: out of the provider's organization, keys there disabled, and
    with no organization left, deactivated (which stops every key and session they have)."""
    actor = sso_actor(idp)
    user = link.user
    for key in VirtualKey.objects.filter(
        user=user, organization=idp.organization, status=KeyStatus.ACTIVE
    ):
        governance.key_disable(actor=actor, key=key)
    membership = (
        Membership.objects.filter(user=user, organization=idp.organization)
        .select_related("team")
        .first()
    )
    if membership is not None:
        audit_record(
            actor=actor,
            action="membership.remove",
            target=membership,
            before={
                "role": membership.role,
                "team": membership.team.slug if membership.team else None,
            },
        )
        membership.delete()
        governance.config_changed()
    if (
        user.is_active
        and not user.is_superuser
        and not Membership.objects.filter(user=user).exists()
    ):
        governance.user_set_active(actor=actor, user=user, is_active=False)
        link.deprovisioned_at = timezone.now()
        link.save(update_fields=["deprovisioned_at"])
    audit_record(
        actor=actor,
        action="sso.deprovision",
        target=user,
        after={
            "identity_provider": idp.slug,
            "groups": list(link.groups),
            "deactivated": not user.is_active,
        },
    )


def _groups_record(*, idp: IdentityProvider, link: IdentityLink, groups: tuple[str, ...]) -> None:
    if list(groups) != list(link.groups):
        audit_record(
            actor=sso_actor(idp),
            action="sso.groups_change",
            target=link.user,
            before={"groups": list(link.groups)},
            after={"groups": list(groups), "identity_provider": idp.slug},
        )
        link.groups = list(groups)


def sso_sign_in(*, idp: IdentityProvider, person: Person) -> Any:
    """The user ``person`` signs in as, with the group mappings applied; or SignInRefused.

    A refusal after the person was found still commits what it did (their
    membership and keys taken away), so a later retry cannot slip past it.
    """
    if not domain_allowed(idp=idp, person=person):
        raise SignInRefused(
            "domain",
            f"{person.email} is not an address of a domain {idp.name} may sign in "
            f"({', '.join(idp.allowed_domains)}).",
            email=person.email,
        )
    assert person.groups is not None, "resolve an overage before signing in"
    groups = person.groups
    refusal: SignInRefused | None = None
    with transaction.atomic():
        actor = sso_actor(idp)
        link = (
            IdentityLink.objects.select_for_update()
            .select_related("user")
            .filter(identity_provider=idp, subject=person.subject)
            .first()
        )
        user = link.user if link else _existing_user(idp, person)
        mapped = _mapped(idp, groups)
        if (
            user is not None
            and not user.is_active
            and (link is None or link.deprovisioned_at is None)
        ):
            raise SignInRefused(
                "deactivated", "This account is deactivated; ask your admin.", email=person.email
            )
        if mapped is None:
            if link is not None:
                _groups_record(idp=idp, link=link, groups=groups)
                link.save(update_fields=["groups"])
                if link.deprovisioned_at is None:
                    _deprovision(idp=idp, link=link)
            refusal = SignInRefused(
                "no_mapped_group",
                f"None of your groups at {idp.name} gives access to {idp.organization.name}; ask your admin.",
                email=person.email,
                groups=list(groups),
            )
        else:
            role, team = mapped
            if user is None:
                user = governance.user_create(
                    actor=actor, username=_username_for(person), email=person.email
                )
                if person.name:
                    first, _, last = person.name.partition(" ")
                    User.objects.filter(pk=user.pk).update(
                        first_name=first[:150], last_name=last[:150]
                    )
            if link is None:
                link = IdentityLink.objects.create(
                    identity_provider=idp, subject=person.subject, user=user, groups=[]
                )
                audit_record(
                    actor=actor,
                    action="sso.link",
                    target=user,
                    after={"identity_provider": idp.slug, "subject": person.subject},
                )
            if not user.is_active:
                # Only someone this provider deprovisioned comes back by signing in again.
                user = governance.user_set_active(actor=actor, user=user, is_active=True)
                link.deprovisioned_at = None
            _groups_record(idp=idp, link=link, groups=groups)
            membership = Membership.objects.filter(user=user, organization=idp.organization).first()
            # A mapping without a team leaves the team an admin gave by hand.
            team = team if team is not None else (membership.team if membership else None)
            if (
                membership is None
                or membership.role != role
                or membership.team_id != (team.pk if team else None)
            ):
                governance.membership_set(
                    actor=actor, user=user, organization=idp.organization, role=role, team=team
                )
            link.last_signin_at = timezone.now()
            link.save()
    if refusal is not None:
        raise refusal
    return User.objects.get(pk=user.pk)
