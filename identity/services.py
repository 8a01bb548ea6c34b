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
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from audit.services import audit_note, audit_record
from governance import access, sealing
from governance import services as governance
from governance.keys import key_digest
from governance.models import KeyStatus, Membership, Organization, Role, Team, VirtualKey
from identity.claims import Person, SignInRefused, domain_allowed
from identity.models import (
    EVERYONE,
    GroupMapping,
    IdentityLink,
    IdentityProvider,
    ScimGroup,
    ScimToken,
)
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


def _provisioned_user(idp: IdentityProvider, person: Person) -> Any | None:
    """Someone this provider's SCIM client created, signing in for the first time."""
    return (
        User.objects.filter(
            email__iexact=person.email,
            identity_links__identity_provider=idp,
            identity_links__scim=True,
        )
        .distinct()
        .first()
    )


def _deprovision(*, idp: IdentityProvider, link: IdentityLink, actor: str | None = None) -> None:
    """In no mapped group: out of the provider's organization, keys there disabled, and
    with no organization left, deactivated (which stops every key and session they have)."""
    actor = actor or sso_actor(idp)
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


def _groups_record(
    *, idp: IdentityProvider, link: IdentityLink, groups: tuple[str, ...], actor: str | None = None
) -> None:
    if list(groups) != list(link.groups):
        audit_record(
            actor=actor or sso_actor(idp),
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
        user = (
            link.user if link else (_provisioned_user(idp, person) or _existing_user(idp, person))
        )
        if (
            user is not None
            and IdentityLink.objects.filter(
                identity_provider=idp, user=user, suspended=True
            ).exists()
        ):
            raise SignInRefused(
                "suspended",
                f"{idp.name} deactivated this account; ask your admin.",
                email=person.email,
            )
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


# --- SCIM 2.0 provisioning (RFC 7644) ----------------------------------------------
# The provider's SCIM client acts as ``scim:<slug>``; it reaches only the people it
# provisioned or who signed in through its provider.


def scim_actor(idp: IdentityProvider) -> str:
    return f"scim:{idp.slug}"


@transaction.atomic
def scim_token_issue(*, actor: Any, idp: IdentityProvider, name: str = "") -> tuple[ScimToken, str]:
    """A bearer token for the provider's SCIM client; the secret is never retrievable again."""
    _manage_require(actor=actor, organization=idp.organization)
    prefix = "tgscim-" + secrets.token_hex(4)
    secret = f"{prefix}-{secrets.token_urlsafe(32)}"
    token = ScimToken.objects.create(
        identity_provider=idp, name=name, prefix=prefix, digest=key_digest(secret)
    )
    audit_record(
        actor=actor, action="scim_token.issue", target=token, after={"prefix": prefix, "name": name}
    )
    return token, secret


@transaction.atomic
def scim_token_revoke(*, actor: Any, token: ScimToken) -> ScimToken:
    _manage_require(actor=actor, organization=token.identity_provider.organization)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor, action="scim_token.revoke", target=token, after={"prefix": token.prefix}
        )
    return token


def scim_token_for_secret(secret: str) -> ScimToken | None:
    token = (
        ScimToken.objects.select_related("identity_provider__organization")
        .filter(digest=key_digest(secret), revoked_at__isnull=True, identity_provider__enabled=True)
        .first()
    )
    if token is not None and (
        token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60
    ):
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def _scim_groups_of(idp: IdentityProvider, user: Any) -> tuple[str, ...]:
    # Mappings name a group as the provider's tokens do: Okta by name, Entra by object id.
    names: set[str] = set()
    for display_name, external_id in ScimGroup.objects.filter(
        identity_provider=idp, members=user
    ).values_list("display_name", "external_id"):
        names.update(n for n in (display_name, external_id) if n)
    return tuple(sorted(names))


def _scim_apply(*, idp: IdentityProvider, link: IdentityLink) -> None:
    """What the person's SCIM groups now grant, as a sign-in would apply it."""
    if link.suspended:
        return
    actor = scim_actor(idp)
    user = User.objects.get(pk=link.user_id)
    groups = _scim_groups_of(idp, user)
    _groups_record(idp=idp, link=link, groups=groups, actor=actor)
    link.save(update_fields=["groups"])
    mapped = _mapped(idp, groups)
    membership = Membership.objects.filter(user=user, organization=idp.organization).first()
    if mapped is None:
        if membership is not None:
            link.deprovisioned_at = None
            _deprovision(idp=idp, link=link, actor=actor)
        return
    role, team = mapped
    if not user.is_active and link.deprovisioned_at is not None:
        governance.user_set_active(actor=actor, user=user, is_active=True)
        link.deprovisioned_at = None
        link.save(update_fields=["deprovisioned_at"])
    team = team if team is not None else (membership.team if membership else None)
    if (
        membership is None
        or membership.role != role
        or membership.team_id != (team.pk if team else None)
    ):
        governance.membership_set(
            actor=actor, user=user, organization=idp.organization, role=role, team=team
        )


def scim_links(idp: IdentityProvider) -> Any:
    return IdentityLink.objects.filter(identity_provider=idp, scim=True).select_related("user")


@transaction.atomic
def scim_user_create(
    *,
    idp: IdentityProvider,
    user_name: str,
    email: str,
    external_id: str = "",
    name: str = "",
    active: bool = True,
) -> IdentityLink:
    email = (email or user_name).strip().lower()
    if "@" not in email:
        raise ValidationError({"userName": "Give an email address as userName or in emails."})
    if scim_links(idp).filter(user__email__iexact=email).exists():
        raise ValidationError(
            {"userName": ValidationError(f"{email} is provisioned already.", code="uniqueness")}
        )
    person = Person(subject="", email=email, email_verified=True, name=name, groups=())
    if not domain_allowed(idp=idp, person=person):
        raise ValidationError(
            {"userName": f"{email} is outside the domains {idp.name} may provision."}
        )
    actor = scim_actor(idp)
    user = _existing_user(idp, person)
    if user is None:
        user = governance.user_create(actor=actor, username=_username_for(person), email=email)
    if name:
        first, _, last = name.partition(" ")
        User.objects.filter(pk=user.pk).update(first_name=first[:150], last_name=last[:150])
    link = IdentityLink.objects.create(
        identity_provider=idp,
        subject=f"scim:{external_id or user_name}"[:255],
        user=user,
        scim=True,
    )
    audit_record(
        actor=actor,
        action="scim.user_create",
        target=user,
        after={"email": email, "external_id": external_id},
    )
    if not active:
        scim_user_set_active(idp=idp, link=link, active=False)
    return link


@transaction.atomic
def scim_user_update(
    *, idp: IdentityProvider, link: IdentityLink, email: str | None = None, name: str | None = None
) -> IdentityLink:
    user = link.user
    before = {"email": user.email, "name": user.get_full_name()}
    if email is not None and email.strip().lower() != user.email:
        user.email = email.strip().lower()
    if name is not None:
        first, _, last = name.partition(" ")
        user.first_name, user.last_name = first[:150], last[:150]
    user.save(update_fields=["email", "first_name", "last_name"])
    after = {"email": user.email, "name": user.get_full_name()}
    if after != before:
        audit_record(
            actor=scim_actor(idp),
            action="scim.user_update",
            target=user,
            before=before,
            after=after,
        )
    return link


@transaction.atomic
def scim_user_set_active(
    *, idp: IdentityProvider, link: IdentityLink, active: bool
) -> IdentityLink:
    """Deactivated by the provider: no sign-in through it, their keys in the organization
    disabled (the data plane refuses them within a second), out of the organization, and
    with no organization left the account itself deactivated. Reactivated: the groups
    apply again; keys stay disabled until an admin enables them."""
    link = IdentityLink.objects.select_for_update().select_related("user").get(pk=link.pk)
    if link.suspended == (not active):
        return link
    actor = scim_actor(idp)
    link.suspended = not active
    link.save(update_fields=["suspended"])
    audit_record(
        actor=actor,
        action="scim.user_activate" if active else "scim.user_deactivate",
        target=link.user,
        after={"identity_provider": idp.slug},
    )
    if not active:
        link.deprovisioned_at = None
        _deprovision(idp=idp, link=link, actor=actor)
    else:
        if not link.user.is_active and link.deprovisioned_at is not None:
            governance.user_set_active(actor=actor, user=link.user, is_active=True)
            link.deprovisioned_at = None
            link.save(update_fields=["deprovisioned_at"])
        _scim_apply(idp=idp, link=link)
    return link


@transaction.atomic
def scim_user_delete(*, idp: IdentityProvider, link: IdentityLink) -> None:
    scim_user_set_active(idp=idp, link=link, active=False)
    for group in ScimGroup.objects.filter(identity_provider=idp, members=link.user):
        group.members.remove(link.user)
    audit_record(
        actor=scim_actor(idp),
        action="scim.user_delete",
        target=link.user,
        after={"identity_provider": idp.slug},
    )
    link.delete()


def _scim_member_links(idp: IdentityProvider, ids: list[str]) -> list[IdentityLink]:
    wanted = [int(i) for i in ids if str(i).isdigit()]
    links = list(scim_links(idp).filter(pk__in=wanted))
    if len(links) != len(set(wanted)) or len(wanted) != len(ids):
        raise ValidationError({"members": "A member is not a user this provider provisioned."})
    return links


def _group_state(group: ScimGroup) -> dict[str, Any]:
    return {"display_name": group.display_name, "external_id": group.external_id}


@transaction.atomic
def scim_group_create(
    *, idp: IdentityProvider, display_name: str, external_id: str = "", member_ids: list[str] = ()
) -> ScimGroup:
    if not display_name.strip():
        raise ValidationError({"displayName": "A group needs a displayName."})
    if ScimGroup.objects.filter(identity_provider=idp, display_name=display_name.strip()).exists():
        raise ValidationError(
            {
                "displayName": ValidationError(
                    f"Group {display_name} exists already.", code="uniqueness"
                )
            }
        )
    links = _scim_member_links(idp, list(member_ids))
    group = ScimGroup.objects.create(
        identity_provider=idp, display_name=display_name.strip(), external_id=external_id
    )
    group.members.set([link.user for link in links])
    audit_record(
        actor=scim_actor(idp), action="scim.group_create", target=group, after=_group_state(group)
    )
    for link in links:
        _scim_apply(idp=idp, link=link)
    return group


@transaction.atomic
def scim_group_update(
    *,
    idp: IdentityProvider,
    group: ScimGroup,
    display_name: str | None = None,
    add: list[str] = (),
    remove: list[str] = (),
    replace: list[str] | None = None,
) -> ScimGroup:
    before = _group_state(group)
    if display_name is not None and display_name.strip():
        group.display_name = display_name.strip()
        group.save(update_fields=["display_name"])
    old = {link.pk: link for link in scim_links(idp).filter(user__in=group.members.all())}
    if replace is not None:
        group.members.set([link.user for link in _scim_member_links(idp, replace)])
    if add:
        group.members.add(*[link.user for link in _scim_member_links(idp, list(add))])
    if remove:
        group.members.remove(
            *[
                link.user
                for link in scim_links(idp).filter(
                    pk__in=[int(i) for i in remove if str(i).isdigit()]
                )
            ]
        )
    new = {link.pk: link for link in scim_links(idp).filter(user__in=group.members.all())}
    audit_record(
        actor=scim_actor(idp),
        action="scim.group_update",
        target=group,
        before=before | {"members": sorted(old)},
        after=_group_state(group) | {"members": sorted(new)},
    )
    # A renamed group changes what maps for everyone in it, not only who moved.
    for link in (old | new).values():
        _scim_apply(idp=idp, link=link)
    return group


@transaction.atomic
def scim_group_delete(*, idp: IdentityProvider, group: ScimGroup) -> None:
    former = list(scim_links(idp).filter(user__in=group.members.all()))
    audit_record(
        actor=scim_actor(idp), action="scim.group_delete", target=group, before=_group_state(group)
    )
    group.delete()
    for link in former:
        _scim_apply(idp=idp, link=link)
