"""The only writers of governance state.

Every function takes a keyword-only ``actor``, writes its audit row in the same
transaction, bumps the configuration revision, and publishes a new data-plane
snapshot once the transaction commits.
"""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from audit.services import audit_record
from governance import access, sealing
from governance.keys import api_token_generate, key_digest, key_generate
from governance.models import (
    OPENAI_COMPATIBLE_PRESETS,
    AlertChannel,
    AlertChannelKind,
    ApiToken,
    Budget,
    BudgetSpend,
    KeyStatus,
    Level,
    McpAuth,
    McpBundle,
    McpServer,
    McpToolPolicy,
    McpTransport,
    Membership,
    Metric,
    ModelPrice,
    Organization,
    Period,
    Provider,
    ProviderCredential,
    ProviderKind,
    RateLimit,
    Role,
    Route,
    RouteTarget,
    Team,
    VirtualKey,
)

User = get_user_model()


def config_changed() -> None:
    """Publish a new data-plane snapshot once the current transaction commits (once per transaction)."""
    from governance.snapshot import snapshot_publish

    pending = transaction.get_connection().run_on_commit
    if not any(func is snapshot_publish for _, func, _ in pending):
        transaction.on_commit(snapshot_publish)


def _organization_state(org: Organization) -> dict[str, Any]:
    return {"name": org.name, "slug": org.slug}


@transaction.atomic
def organization_create(*, actor: Any, name: str, slug: str = "") -> Organization:
    slug = slug or slugify(name)
    if not slug:
        raise ValidationError({"slug": "An organization needs a name or a slug."})
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"An organization with slug '{slug}' already exists."})
    org = Organization.objects.create(name=name, slug=slug)
    audit_record(actor=actor, action="organization.create", target=org, after=_organization_state(org))
    config_changed()
    return org


@transaction.atomic
def team_create(*, actor: Any, organization: Organization, name: str, slug: str = "") -> Team:
    slug = slug or slugify(name)
    if not slug:
        raise ValidationError({"slug": "A team needs a name or a slug."})
    if Team.objects.filter(organization=organization, slug=slug).exists():
        raise ValidationError({"slug": f"Team '{slug}' already exists in {organization.slug}."})
    team = Team.objects.create(organization=organization, name=name, slug=slug)
    audit_record(
        actor=actor,
        action="team.create",
        target=team,
        after={"organization": organization.slug, "name": name, "slug": slug},
    )
    config_changed()
    return team


@transaction.atomic
def user_create(
    *,
    actor: Any,
    username: str,
    email: str = "",
    password: str | None = None,
    organization: Organization | None = None,
    role: str = Role.DEVELOPER,
    team: Team | None = None,
) -> Any:
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"User '{username}' already exists."})
    user = User(username=username, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    audit_record(actor=actor, action="user.create", target=user, after={"username": username, "email": email})
    if organization is not None:
        membership_set(actor=actor, user=user, organization=organization, role=role, team=team)
    return user


@transaction.atomic
def user_set_active(*, actor: Any, user: Any, is_active: bool) -> Any:
    """Deactivate (or reactivate) a user: they can no longer sign in, and every
    one of their keys is refused on the data plane with the next snapshot.

    A platform admin may change anyone; an organization admin only users who
    belong to no organization they do not manage, and no platform admin.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if getattr(actor, "pk", None) is not None:
        if actor.pk == user.pk:
            raise PermissionDenied("You cannot deactivate yourself.")
        if not actor.is_superuser:
            org_ids = set(Membership.objects.filter(user=user).values_list("organization_id", flat=True))
            managed = set(
                Membership.objects.filter(user=actor, role=Role.ADMIN, organization_id__in=org_ids).values_list(
                    "organization_id", flat=True
                )
            )
            if user.is_superuser or not org_ids or managed != org_ids:
                raise PermissionDenied("Only a platform admin, or an admin of each of their organizations, may do that.")
    before = {"is_active": user.is_active}
    user.is_active = is_active
    user.save(update_fields=["is_active"])
    action = "user.activate" if is_active else "user.deactivate"
    audit_record(actor=actor, action=action, target=user, before=before, after={"is_active": is_active})
    config_changed()
    return user


@transaction.atomic
def membership_set(
    *, actor: Any, user: Any, organization: Organization, role: str, team: Team | None = None
) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'; use one of {', '.join(Role.values)}."})
    if team is not None and team.organization_id != organization.pk:
        raise ValidationError({"team": "The team belongs to another organization."})
    membership = Membership.objects.filter(user=user, organization=organization).first()
    before = (
        {"role": membership.role, "team": membership.team.slug if membership.team else None}
        if membership
        else None
    )
    if membership is None:
        membership = Membership(user=user, organization=organization)
    membership.role = role
    membership.team = team
    membership.save()
    audit_record(
        actor=actor,
        action="membership.set",
        target=membership,
        before=before,
        after={"role": role, "team": team.slug if team else None},
    )
    config_changed()
    return membership


def _provider_state(provider: Provider) -> dict[str, Any]:
    # The credential itself never enters the audit trail; only whether it changed.
    return {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "settings": provider.settings,
        "is_active": provider.is_active,
        "price_multiplier": str(provider.price_multiplier),
    }


def _price_multiplier(value: Decimal) -> Decimal:
    value = Decimal(value)
    if not Decimal("0.01") <= value <= Decimal(10):
        raise ValidationError({"price_multiplier": "A price multiplier is between 0.01 and 10 (1.1 for a 10% premium)."})
    return value


@transaction.atomic
def provider_create(
    *,
    actor: Any,
    name: str,
    kind: str,
    base_url: str = "",
    credential: str,
    is_active: bool = True,
    settings: dict[str, Any] | None = None,
    price_multiplier: Decimal = Decimal(1),
) -> Provider:
    if kind not in ProviderKind.values:
        raise ValidationError({"kind": f"Unknown provider kind '{kind}'; use one of {', '.join(ProviderKind.values)}."})
    if Provider.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A provider named '{name}' already exists."})
    settings = dict(settings or {})
    if kind == ProviderKind.OPENAI_COMPATIBLE and not base_url:
        preset = settings.get("preset", "")
        if preset not in OPENAI_COMPATIBLE_PRESETS:
            raise ValidationError({"base_url": f"Give a base URL or a preset: {', '.join(OPENAI_COMPATIBLE_PRESETS)}."})
        base_url = OPENAI_COMPATIBLE_PRESETS[preset]
    if not base_url and kind in (ProviderKind.ANTHROPIC, ProviderKind.OPENAI, ProviderKind.GEMINI):
        base_url = {
            "anthropic": "https://api.anthropic.com",
            "openai": "https://api.openai.com/v1",
            "gemini": "https://generativelanguage.googleapis.com",
        }[kind]
    if kind == ProviderKind.AZURE_OPENAI and not base_url:
        raise ValidationError({"base_url": "Azure OpenAI needs the resource URL, e.g. https://acme.openai.azure.com."})
    provider = Provider.objects.create(
        name=name,
        kind=kind,
        base_url=base_url.rstrip("/"),
        credential_sealed=sealing.seal(credential),
        settings=settings,
        is_active=is_active,
        price_multiplier=_price_multiplier(price_multiplier),
    )
    audit_record(actor=actor, action="provider.create", target=provider, after=_provider_state(provider))
    config_changed()
    return provider


@transaction.atomic
def provider_update(
    *,
    actor: Any,
    provider: Provider,
    base_url: str | None = None,
    credential: str | None = None,
    is_active: bool | None = None,
    settings: dict[str, Any] | None = None,
    price_multiplier: Decimal | None = None,
) -> Provider:
    before = _provider_state(provider)
    if settings is not None:
        provider.settings = dict(settings)
    if price_multiplier is not None:
        provider.price_multiplier = _price_multiplier(price_multiplier)
    if base_url is not None:
        provider.base_url = base_url.rstrip("/")
    if is_active is not None:
        provider.is_active = is_active
    if credential is not None:
        provider.credential_sealed = sealing.seal(credential)
    provider.save()
    after = _provider_state(provider) | {"credential_changed": credential is not None}
    audit_record(actor=actor, action="provider.update", target=provider, before=before, after=after)
    config_changed()
    return provider


def _key_state(key: VirtualKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "status": key.status,
        "organization": key.organization_id,
        "team": key.team_id,
        "user": key.user_id,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "allowed_models": list(key.allowed_models),
        "admin_allowed_models": list(key.admin_allowed_models),
        "admin_expires_at": key.admin_expires_at.isoformat() if key.admin_expires_at else None,
        "disabled_by_admin": key.disabled_by_admin,
    }


def _validate_patterns(patterns: list[str]) -> list[str]:
    cleaned = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValidationError({"allowed_models": "Each allowed model is a non-empty string."})
        fnmatch.translate(pattern)
        cleaned.append(pattern.strip())
    return cleaned


def _patterns_covered(patterns: list[str], ceiling: list[str]) -> bool:
    """Whether every model ``patterns`` allow is one ``ceiling`` allows (empty: every model).

    Decided conservatively, without enumerating models: a pattern is covered by
    an equal one, by ``*``, by a literal prefix ending in ``*`` that it starts
    with, or (having no wildcards itself) by any pattern it matches.
    """
    if not ceiling:
        return True
    if not patterns:
        return False

    def covered(pattern: str, by: str) -> bool:
        if pattern == by or by == "*":
            return True
        if not _GLOB.search(pattern):
            return fnmatch.fnmatchcase(pattern, by)
        stem = by[:-1]
        return by.endswith("*") and not _GLOB.search(stem) and pattern.startswith(stem)

    return all(any(covered(p, c) for c in ceiling) for p in patterns)


_GLOB = re.compile(r"[*?\[]")


def key_team_check(*, organization: Organization, team: Team | None, user: Any) -> None:
    """A key's team is its owner's: team budgets and allowlists must not be escapable
    by naming another team or none (unless the organization allows team-less keys)."""
    if team is not None and team.organization_id != organization.pk:
        raise ValidationError({"team": "The team belongs to another organization."})
    if user is None:
        return
    membership = Membership.objects.filter(user=user, organization=organization).select_related("team").first()
    if membership is None:
        raise ValidationError({"user": f"{user} is not a member of {organization.slug}."})
    if team is not None and membership.team_id != team.pk:
        raise ValidationError({"team": f"{user} is not in team {team.slug}; a key belongs to its owner's team."})
    if team is None and membership.team is not None and not organization.allow_teamless_keys:
        raise ValidationError(
            {
                "team": f"{user} is in team {membership.team.slug}, so their keys belong to it; "
                "an admin may allow team-less keys for the organization."
            }
        )


@transaction.atomic
def key_create(
    *,
    actor: Any,
    organization: Organization,
    name: str,
    team: Team | None = None,
    user: Any = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[VirtualKey, str]:
    """Create a key; return it with its secret, which is never retrievable again.

    Admins make keys for any member or for no one; a developer only for
    themselves. What an admin sets here (allowlist, expiry) binds the owner.
    """
    role = access.actor_role(actor=actor, organization=organization)
    manager = role == Role.ADMIN
    if not manager and (role != Role.DEVELOPER or user is None or user.pk != actor.pk):
        raise PermissionDenied("A developer may create keys only for themselves; viewers none.")
    key_team_check(organization=organization, team=team, user=user)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    patterns = _validate_patterns(allowed_models or [])
    secret, prefix = key_generate()
    key = VirtualKey.objects.create(
        organization=organization,
        team=team,
        user=user,
        name=name,
        prefix=prefix,
        digest=key_digest(secret),
        allowed_models=patterns,
        admin_allowed_models=patterns if manager else [],
        expires_at=expires_at,
        admin_expires_at=expires_at if manager else None,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit_record(actor=actor, action="key.create", target=key, after=_key_state(key))
    config_changed()
    return key, secret


@transaction.atomic
def key_disable(*, actor: Any, key: VirtualKey) -> VirtualKey:
    return _key_set_status(actor=actor, key=key, status=KeyStatus.DISABLED, action="key.disable")


@transaction.atomic
def key_enable(*, actor: Any, key: VirtualKey) -> VirtualKey:
    return _key_set_status(actor=actor, key=key, status=KeyStatus.ACTIVE, action="key.enable")


def _key_set_status(*, actor: Any, key: VirtualKey, status: str, action: str) -> VirtualKey:
    key = VirtualKey.objects.select_for_update().select_related("organization").get(pk=key.pk)
    manager = access.key_change_require(actor=actor, key=key)
    if status == KeyStatus.ACTIVE and key.disabled_by_admin and not manager:
        raise PermissionDenied("An admin disabled this key; only an admin can enable it again.")
    before = _key_state(key)
    key.status = status
    # An owner disabling a key an admin already disabled must not lift the admin's hold.
    key.disabled_by_admin = status == KeyStatus.DISABLED and (manager or key.disabled_by_admin)
    key.save(update_fields=["status", "disabled_by_admin"])
    audit_record(actor=actor, action=action, target=key, before=before, after=_key_state(key))
    config_changed()
    return key


@transaction.atomic
def key_expiry_set(*, actor: Any, key: VirtualKey, expires_at: datetime | None) -> VirtualKey:
    """Change when a key expires (None: never). An owner may only bring forward an
    expiry an admin set, never drop or postpone it."""
    key = VirtualKey.objects.select_for_update().select_related("organization").get(pk=key.pk)
    manager = access.key_change_require(actor=actor, key=key)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if not manager and key.admin_expires_at is not None and (expires_at is None or expires_at > key.admin_expires_at):
        raise PermissionDenied(
            f"An admin set this key to expire at {key.admin_expires_at.isoformat()}; you may only bring that forward."
        )
    before = _key_state(key)
    key.expires_at = expires_at
    if manager:
        key.admin_expires_at = expires_at
    key.save(update_fields=["expires_at", "admin_expires_at"])
    audit_record(actor=actor, action="key.expiry", target=key, before=before, after=_key_state(key))
    config_changed()
    return key


PRICE_RATES = (
    "input_per_mtok",
    "output_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "cache_read_per_mtok",
    "web_search_per_1k",
    "long_input_per_mtok",
    "long_output_per_mtok",
    "long_cache_write_per_mtok",
    "long_cache_write_1h_per_mtok",
    "long_cache_read_per_mtok",
)


def _price_state(price: ModelPrice) -> dict[str, Any]:
    state: dict[str, Any] = {name: str(getattr(price, name)) for name in PRICE_RATES}
    state["long_context_threshold"] = price.long_context_threshold
    state["provider"] = price.provider_id
    return state


@transaction.atomic
def price_set(
    *,
    actor: Any,
    model: str,
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    cache_write_per_mtok: Decimal = Decimal(0),
    cache_write_1h_per_mtok: Decimal | None = None,
    cache_read_per_mtok: Decimal = Decimal(0),
    web_search_per_1k: Decimal = Decimal(0),
    long_context_threshold: int = 0,
    long_input_per_mtok: Decimal = Decimal(0),
    long_output_per_mtok: Decimal = Decimal(0),
    long_cache_write_per_mtok: Decimal = Decimal(0),
    long_cache_write_1h_per_mtok: Decimal | None = None,
    long_cache_read_per_mtok: Decimal = Decimal(0),
    provider: Provider | None = None,
) -> ModelPrice:
    """Set a model's list price, or (with ``provider``) what that provider bills for it.

    Without a 1-hour cache write rate, 1-hour writes cost the 5-minute rate.
    """
    if cache_write_1h_per_mtok is None:
        cache_write_1h_per_mtok = cache_write_per_mtok
    if long_cache_write_1h_per_mtok is None:
        long_cache_write_1h_per_mtok = long_cache_write_per_mtok
    values = {
        "input_per_mtok": input_per_mtok,
        "output_per_mtok": output_per_mtok,
        "cache_write_per_mtok": cache_write_per_mtok,
        "cache_write_1h_per_mtok": cache_write_1h_per_mtok,
        "cache_read_per_mtok": cache_read_per_mtok,
        "web_search_per_1k": web_search_per_1k,
        "long_input_per_mtok": long_input_per_mtok,
        "long_output_per_mtok": long_output_per_mtok,
        "long_cache_write_per_mtok": long_cache_write_per_mtok,
        "long_cache_write_1h_per_mtok": long_cache_write_1h_per_mtok,
        "long_cache_read_per_mtok": long_cache_read_per_mtok,
    }
    if any(Decimal(v) < 0 for v in values.values()) or long_context_threshold < 0:
        raise ValidationError({"price": "Prices cannot be negative."})
    if long_context_threshold and not (long_input_per_mtok or long_output_per_mtok):
        raise ValidationError({"long_context_threshold": "A long-context threshold needs the long-context rates."})
    price = ModelPrice.objects.filter(model=model, provider=provider).first()
    before = _price_state(price) if price else None
    if price is None:
        price = ModelPrice(model=model, provider=provider)
    for name, value in values.items():
        setattr(price, name, Decimal(value))
    price.long_context_threshold = long_context_threshold
    price.updated_at = timezone.now()
    price.save()
    audit_record(actor=actor, action="price.set", target=price, before=before, after=_price_state(price))
    config_changed()
    return price


@transaction.atomic
def price_delete(*, actor: Any, price: ModelPrice) -> None:
    """Remove a provider's own price for a model, or a model's list price."""
    before = _price_state(price)
    audit_record(actor=actor, action="price.delete", target=price, before=before)
    price.delete()
    config_changed()


@transaction.atomic
def admin_bootstrap(*, username: str = "admin", email: str = "", password: str = "") -> tuple[Any, str] | None:
    """Create the first platform admin on a fresh install; None if any admin exists.

    Without a password one is generated; either way it is returned once, to be
    shown to whoever started the server.
    """
    if User.objects.filter(is_superuser=True).exists():
        return None
    import secrets

    password = password or secrets.token_urlsafe(15)
    user = User.objects.create_superuser(username=username, email=email, password=password)
    audit_record(actor="system", action="user.bootstrap_admin", target=user, after={"username": username})
    return user, password


# --- budgets, rate limits, allowlists, rotation ---------------------------------


def _policy_target(
    *, level: str, organization: Organization, team: Team | None, user: Any, key: VirtualKey | None
) -> dict[str, Any]:
    """Validate that exactly the fields of ``level`` are set and belong to the organization."""
    if level not in Level.values:
        raise ValidationError({"level": f"Unknown level '{level}'; use one of {', '.join(Level.values)}."})
    given = {"team": team, "user": user, "key": key}
    wanted = {Level.TEAM: "team", Level.USER: "user", Level.KEY: "key"}.get(Level(level))
    for name, value in given.items():
        if name == wanted and value is None:
            raise ValidationError({name: f"A {level}-level policy needs a {name}."})
        if name != wanted and value is not None:
            raise ValidationError({name: f"A {level}-level policy takes no {name}."})
    if team is not None and team.organization_id != organization.pk:
        raise ValidationError({"team": "The team belongs to another organization."})
    if key is not None and key.organization_id != organization.pk:
        raise ValidationError({"key": "The key belongs to another organization."})
    if user is not None and not Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError({"user": f"{user} is not a member of {organization.slug}."})
    return {"level": level, "organization": organization, "team": team, "user": user, "key": key}


def _manage_require(*, actor: Any, organization: Organization) -> None:
    # Budgets and rate limits are restrictions: only an admin sets or lifts them.
    if not access.actor_manages(actor=actor, organization=organization):
        raise PermissionDenied("Only an admin of this organization may change its policies.")


def _budget_state(budget: Budget) -> dict[str, Any]:
    return {
        "level": budget.level,
        "target": str(budget.target),
        "amount_usd": str(budget.amount_usd),
        "period": budget.period,
        "rolling": budget.rolling,
        "anchor": budget.anchor.isoformat(),
        "alert_thresholds": list(budget.alert_thresholds or []),
    }


@transaction.atomic
def budget_set(
    *,
    actor: Any,
    level: str,
    organization: Organization,
    amount_usd: Decimal,
    period: str,
    team: Team | None = None,
    user: Any = None,
    key: VirtualKey | None = None,
    rolling: bool = False,
    alert_thresholds: list[int] | None = None,
) -> Budget:
    """Create or change the budget of one level for one period.

    ``alert_thresholds``: percentages of the amount at which the organization's
    alert channels are warned (None keeps them; a new budget gets 75, 90, 100)."""
    _manage_require(actor=actor, organization=organization)
    if alert_thresholds is not None:
        if any(not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= 1000 for t in alert_thresholds):
            raise ValidationError({"alert_thresholds": "Thresholds are whole percentages from 1 to 1000."})
        alert_thresholds = sorted(set(alert_thresholds))
    target = _policy_target(level=level, organization=organization, team=team, user=user, key=key)
    if period not in Period.values:
        raise ValidationError({"period": f"Unknown period '{period}'; use one of {', '.join(Period.values)}."})
    amount = Decimal(amount_usd)
    if amount < 0:
        raise ValidationError({"amount_usd": "A budget cannot be negative."})
    budget = Budget.objects.select_for_update().filter(**target, period=period).first()
    before = _budget_state(budget) if budget else None
    if budget is None:
        budget = Budget(**target, period=period)
    if budget.rolling != rolling:
        budget.anchor = timezone.now()
    budget.amount_usd = amount
    budget.rolling = rolling
    if alert_thresholds is not None:
        budget.alert_thresholds = alert_thresholds
    budget.save()
    audit_record(actor=actor, action="budget.set", target=budget, before=before, after=_budget_state(budget))
    config_changed()
    return budget


@transaction.atomic
def budget_delete(*, actor: Any, budget: Budget) -> None:
    _manage_require(actor=actor, organization=budget.organization)
    before = _budget_state(budget)
    audit_record(actor=actor, action="budget.delete", target=budget, before=before)
    budget.delete()
    config_changed()


def _alert_channel_state(channel: AlertChannel) -> dict[str, Any]:
    # The URL and signing secret are credentials: never in the audit trail.
    return {"name": channel.name, "kind": channel.kind, "email": channel.email, "is_active": channel.is_active}


@transaction.atomic
def alert_channel_create(
    *, actor: Any, organization: Organization, name: str, kind: str, url: str = "", email: str = ""
) -> tuple[AlertChannel, str]:
    """Add a place budget warnings go; returns the channel and, for a webhook,
    the secret its signatures are made with (shown once)."""
    import secrets as random_secrets

    _manage_require(actor=actor, organization=organization)
    if kind not in AlertChannelKind.values:
        raise ValidationError({"kind": f"Unknown channel kind '{kind}'; use one of {', '.join(AlertChannelKind.values)}."})
    if AlertChannel.objects.filter(organization=organization, name=name).exists():
        raise ValidationError({"name": f"The organization already has an alert channel named '{name}'."})
    if kind == AlertChannelKind.EMAIL:
        if not email or url:
            raise ValidationError({"email": "An email channel takes an address and no URL."})
    elif not url.startswith(("https://", "http://")) or email:
        raise ValidationError({"url": f"A {kind} channel takes an http(s) URL and no address."})
    secret = random_secrets.token_urlsafe(32) if kind == AlertChannelKind.WEBHOOK else ""
    channel = AlertChannel.objects.create(
        organization=organization,
        name=name,
        kind=kind,
        url_sealed=sealing.seal(url),
        email=email,
        secret_sealed=sealing.seal(secret),
    )
    audit_record(actor=actor, action="alert_channel.create", target=channel, after=_alert_channel_state(channel))
    return channel, secret


@transaction.atomic
def alert_channel_delete(*, actor: Any, channel: AlertChannel) -> None:
    _manage_require(actor=actor, organization=channel.organization)
    audit_record(actor=actor, action="alert_channel.delete", target=channel, before=_alert_channel_state(channel))
    channel.delete()


def _limit_state(limit: RateLimit) -> dict[str, Any]:
    return {
        "level": limit.level,
        "target": str(limit.target),
        "metric": limit.metric,
        "limit": limit.limit,
        "window_seconds": limit.window_seconds,
        "model_pattern": limit.model_pattern,
        "provider": limit.provider_id,
    }


@transaction.atomic
def rate_limit_set(
    *,
    actor: Any,
    level: str,
    organization: Organization,
    metric: str,
    limit: int,
    window_seconds: int,
    team: Team | None = None,
    user: Any = None,
    key: VirtualKey | None = None,
    model_pattern: str = "",
    provider: Provider | None = None,
) -> RateLimit:
    """Create or change a rate limit; one per (level target, metric, window, model, provider)."""
    _manage_require(actor=actor, organization=organization)
    target = _policy_target(level=level, organization=organization, team=team, user=user, key=key)
    if metric not in Metric.values:
        raise ValidationError({"metric": f"Unknown metric '{metric}'; use requests or tokens."})
    if int(limit) < 0:
        raise ValidationError({"limit": "A limit cannot be negative."})
    if not 1 <= int(window_seconds) <= 31 * 86400:
        raise ValidationError({"window_seconds": "The window must be between 1 second and 31 days."})
    if model_pattern:
        _validate_patterns([model_pattern])
    rate = (
        RateLimit.objects.select_for_update()
        .filter(**target, metric=metric, window_seconds=window_seconds, model_pattern=model_pattern, provider=provider)
        .first()
    )
    before = _limit_state(rate) if rate else None
    if rate is None:
        rate = RateLimit(**target, metric=metric, window_seconds=window_seconds, model_pattern=model_pattern, provider=provider)
    rate.limit = int(limit)
    rate.save()
    audit_record(actor=actor, action="rate_limit.set", target=rate, before=before, after=_limit_state(rate))
    config_changed()
    return rate


@transaction.atomic
def rate_limit_delete(*, actor: Any, rate_limit: RateLimit) -> None:
    _manage_require(actor=actor, organization=rate_limit.organization)
    audit_record(actor=actor, action="rate_limit.delete", target=rate_limit, before=_limit_state(rate_limit))
    rate_limit.delete()
    config_changed()


@transaction.atomic
def allowed_models_set(*, actor: Any, target: Organization | Team | VirtualKey, patterns: list[str]) -> Any:
    """Set the model allowlist of an organization, a team or a key (empty: every model).

    Only admins set an organization's or a team's. On a key, what an admin sets
    is also its owner's ceiling: the owner may narrow within it, never widen.
    """
    patterns = _validate_patterns(patterns)
    extra: list[str] = []
    if isinstance(target, VirtualKey):
        target = VirtualKey.objects.select_for_update().select_related("organization").get(pk=target.pk)
        if access.key_change_require(actor=actor, key=target):
            target.admin_allowed_models = patterns
            extra = ["admin_allowed_models"]
        elif not _patterns_covered(patterns, list(target.admin_allowed_models)):
            raise PermissionDenied(
                "An admin limited this key to " + ", ".join(target.admin_allowed_models)
                + "; you may narrow that list, not widen it."
            )
    else:
        organization = target if isinstance(target, Organization) else target.organization
        if not access.actor_manages(actor=actor, organization=organization):
            raise PermissionDenied("Only an admin of this organization may do that.")
    before = {"allowed_models": list(target.allowed_models)}
    target.allowed_models = patterns
    target.save(update_fields=["allowed_models", *extra])
    action = f"{target._meta.model_name.replace('virtualkey', 'key')}.allowed_models"
    audit_record(actor=actor, action=action, target=target, before=before, after={"allowed_models": target.allowed_models})
    config_changed()
    return target


@transaction.atomic
def organization_update(*, actor: Any, organization: Organization, allow_teamless_keys: bool) -> Organization:
    """Change an organization's settings: for now, whether team members may hold team-less keys."""
    if not access.actor_manages(actor=actor, organization=organization):
        raise PermissionDenied("Only an admin of this organization may do that.")
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    before = {"allow_teamless_keys": organization.allow_teamless_keys}
    organization.allow_teamless_keys = allow_teamless_keys
    organization.save(update_fields=["allow_teamless_keys"])
    audit_record(
        actor=actor, action="organization.update", target=organization, before=before,
        after={"allow_teamless_keys": allow_teamless_keys},
    )
    return organization


@transaction.atomic
def key_rotate(*, actor: Any, key: VirtualKey, grace_seconds: int = 0) -> tuple[VirtualKey, str]:
    """Give a key a new secret; the old one keeps working for ``grace_seconds``."""
    if not 0 <= grace_seconds <= 30 * 86400:
        raise ValidationError({"grace_seconds": "The grace period must be between 0 and 30 days."})
    key = VirtualKey.objects.select_for_update().select_related("organization").get(pk=key.pk)
    access.key_change_require(actor=actor, key=key)
    before = _key_state(key)
    secret, _ = key_generate()
    # The visible prefix stays: it names the key, not the secret's generation.
    secret = key.prefix + secret[len(key.prefix) :]
    if grace_seconds:
        key.previous_digest = key.digest
        key.previous_valid_until = timezone.now() + timedelta(seconds=grace_seconds)
    else:
        key.previous_digest = ""
        key.previous_valid_until = None
    key.digest = key_digest(secret)
    key.save(update_fields=["digest", "previous_digest", "previous_valid_until"])
    after = _key_state(key) | {"rotated": True, "grace_seconds": grace_seconds}
    audit_record(actor=actor, action="key.rotate", target=key, before=before, after=after)
    config_changed()
    return key, secret


def budget_spend_persist(*, read_spent: Any) -> int:
    """Copy each budget's current-period spend from the counter store into
    BudgetSpend, never lowering a figure already persisted for that period.

    ``read_spent(budget, period_start) -> Decimal | None`` reads the counter;
    None means the store has nothing for it (say, just after a flush).
    """
    from datetime import UTC
    from datetime import datetime as dt

    from dataplane.limits import period_bounds

    now = timezone.now().timestamp()
    stored = 0
    for budget in Budget.objects.all():
        start, _ = period_bounds(budget.period, budget.rolling, budget.anchor.timestamp(), now)
        spent = read_spent(budget, start)
        if spent is None:
            continue
        period_start = dt.fromtimestamp(start, tz=UTC)
        with transaction.atomic():
            row = BudgetSpend.objects.select_for_update().filter(budget=budget, period_start=period_start).first()
            if row is None:
                BudgetSpend.objects.create(budget=budget, period_start=period_start, spent_usd=spent)
            elif spent > row.spent_usd:
                row.spent_usd = spent
                row.persisted_at = timezone.now()
                row.save(update_fields=["spent_usd", "persisted_at"])
        stored += 1
    return stored


# --- routing ------------------------------------------------------------------


def _route_state(route: Route) -> dict[str, Any]:
    return {
        "scope": str(route.key or route.team or route.organization or "gateway"),
        "model_pattern": route.model_pattern,
        "targets": [
            {"provider": t.provider.name, "model": t.model, "weight": t.weight, "tier": t.tier}
            for t in route.targets.select_related("provider").order_by("tier", "id")
        ],
    }


@transaction.atomic
def route_set(
    *,
    actor: Any,
    model_pattern: str,
    targets: list[dict[str, Any]],
    organization: Organization | None = None,
    team: Team | None = None,
    key: VirtualKey | None = None,
) -> Route:
    """Create or replace the route for ``model_pattern`` at one scope.

    ``targets``: dicts of ``provider`` (a Provider), ``model`` (the id the
    provider knows; blank keeps the requested one), ``weight`` and ``tier``.
    """
    model_pattern = model_pattern.strip()
    if not model_pattern:
        raise ValidationError({"model_pattern": "A route needs a model pattern, such as 'claude-opus-*'."})
    if team is not None and key is not None:
        raise ValidationError({"key": "A route belongs to a team or to a key, not both."})
    if team is not None and (organization is None or team.organization_id != organization.pk):
        raise ValidationError({"team": "A team route needs the team's organization."})
    if key is not None and (organization is None or key.organization_id != organization.pk):
        raise ValidationError({"key": "A key route needs the key's organization."})
    if not targets:
        raise ValidationError({"targets": "A route needs at least one target."})
    for target in targets:
        if not isinstance(target.get("provider"), Provider):
            raise ValidationError({"targets": "Each target names a provider."})
        if int(target.get("weight", 1)) < 1:
            raise ValidationError({"targets": "Weights are positive integers."})
    scope = {"organization": organization, "team": team, "key": key}
    route = Route.objects.select_for_update().filter(**scope, model_pattern=model_pattern).first()
    before = _route_state(route) if route else None
    if route is None:
        route = Route.objects.create(**scope, model_pattern=model_pattern)
    route.targets.all().delete()
    RouteTarget.objects.bulk_create(
        RouteTarget(
            route=route,
            provider=t["provider"],
            model=t.get("model", ""),
            weight=int(t.get("weight", 1)),
            tier=int(t.get("tier", 0)),
        )
        for t in targets
    )
    audit_record(actor=actor, action="route.set", target=route, before=before, after=_route_state(route))
    config_changed()
    return route


@transaction.atomic
def route_delete(*, actor: Any, route: Route) -> None:
    audit_record(actor=actor, action="route.delete", target=route, before=_route_state(route))
    route.delete()
    config_changed()


@transaction.atomic
def provider_credential_add(*, actor: Any, provider: Provider, name: str, credential: str, weight: int = 1) -> ProviderCredential:
    """Add a credential the provider's traffic is spread over, by weight."""
    if int(weight) < 1:
        raise ValidationError({"weight": "Weights are positive integers."})
    if not credential:
        raise ValidationError({"credential": "A credential cannot be empty."})
    if ProviderCredential.objects.filter(provider=provider, name=name).exists():
        raise ValidationError({"name": f"Provider '{provider.name}' already has a credential named '{name}'."})
    extra = ProviderCredential.objects.create(
        provider=provider, name=name, credential_sealed=sealing.seal(credential), weight=int(weight)
    )
    audit_record(
        actor=actor, action="provider.credential_add", target=provider, after={"credential": name, "weight": int(weight)}
    )
    config_changed()
    return extra


@transaction.atomic
def provider_credential_remove(*, actor: Any, credential: ProviderCredential) -> None:
    audit_record(
        actor=actor,
        action="provider.credential_remove",
        target=credential.provider,
        before={"credential": credential.name, "weight": credential.weight},
    )
    credential.delete()
    config_changed()


@transaction.atomic
def secrets_reseal(*, actor: Any) -> dict[str, int]:
    """Re-encrypt every sealed secret under the first encryption key, so the
    older keys can be dropped. Returns how many values each model held.

    Every ``*_sealed`` field of every installed model is covered, so a new
    kind of secret cannot be forgotten here.
    """
    from django.apps import apps

    counts: dict[str, int] = {}
    for model in apps.get_models():
        fields = [f.name for f in model._meta.concrete_fields if f.name.endswith(sealing.SEALED_SUFFIX)]
        if not fields:
            continue
        label = model._meta.label
        counts[label] = 0
        for row in model.objects.select_for_update().order_by("pk"):
            changed = {name: sealing.reseal(getattr(row, name)) for name in fields if getattr(row, name)}
            if not changed:
                continue
            model.objects.filter(pk=row.pk).update(**changed)
            counts[label] += len(changed)
            audit_record(actor=actor, action="secret.reseal", target=row, after={"fields": sorted(changed)})
    counts.update(_mfa_secrets_reseal(actor=actor))
    # The snapshot carries sealed credentials: workers get the new tokens too.
    config_changed()
    return counts


def _mfa_secrets_reseal(*, actor: Any) -> dict[str, int]:
    """Sign-in's second factors: allauth keeps a TOTP secret and a recovery-code
    seed in a JSON field, sealed by the console's MFA adapter."""
    from allauth.mfa.models import Authenticator

    resealed = 0
    for authenticator in Authenticator.objects.select_for_update().order_by("pk"):
        data = dict(authenticator.data)
        changed = sorted(k for k in ("secret", "seed") if data.get(k))
        if not changed:
            continue
        data.update({k: sealing.reseal(data[k]) for k in changed})
        Authenticator.objects.filter(pk=authenticator.pk).update(data=data)
        resealed += len(changed)
        audit_record(actor=actor, action="secret.reseal", target=authenticator, after={"fields": changed})
    return {Authenticator._meta.label: resealed}


@transaction.atomic
def api_token_issue(*, actor: Any, name: str = "", lifetime: timedelta | None = None) -> tuple[ApiToken, str]:
    """A new API token for ``actor`` (who proved who they are); return it with its
    secret, which is never retrievable again. Each token expires."""
    from django.conf import settings

    lifetime = lifetime or timedelta(days=settings.API_TOKEN_DAYS)
    if not timedelta(minutes=5) <= lifetime <= timedelta(days=settings.API_TOKEN_MAX_DAYS):
        raise ValidationError({"expires_in_days": f"A token lives between 5 minutes and {settings.API_TOKEN_MAX_DAYS} days."})
    secret, prefix = api_token_generate()
    token = ApiToken.objects.create(
        user=actor, name=name, prefix=prefix, digest=key_digest(secret), expires_at=timezone.now() + lifetime
    )
    audit_record(
        actor=actor,
        action="auth.api_token_issue",
        target=token,
        after={"prefix": prefix, "name": name, "expires_at": token.expires_at.isoformat()},
    )
    return token, secret


@transaction.atomic
def api_token_revoke(*, actor: Any, token: ApiToken) -> ApiToken:
    """Stop a token at once. Its owner or a platform admin may."""
    token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if getattr(actor, "pk", None) is not None and not actor.is_superuser and token.user_id != actor.pk:
        raise PermissionDenied("You may revoke only your own tokens.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="auth.api_token_revoke", target=token, after={"prefix": token.prefix})
    return token


def api_token_used(*, token: ApiToken) -> None:
    """Note when a token was last used, at most once a minute, and put that use on
    the audit trail at the same pace (one row per token-minute, not per request)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            audit_record(
                actor=token.user,
                action="auth.api_token_use",
                target=token,
                after={"prefix": token.prefix, "first_use": token.last_used_at is None},
            )
        token.last_used_at = now


# --- MCP gateway: servers, tool policies, bundles --------------------------------

_MCP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]|_(?!_))*[a-z0-9]$|^[a-z0-9]$")
_MCP_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!/-]+$")


def _mcp_server_state(server: McpServer) -> dict[str, Any]:
    # Secrets never enter the audit trail: only the names of the headers and
    # environment variables, so a reviewer sees what changed.
    secrets = mcp_server_secrets(server)
    return {
        "name": server.name,
        "transport": server.transport,
        "url": server.url,
        "auth": server.auth,
        "token_url": server.token_url,
        "client_id": server.client_id,
        "scope": server.scope,
        "command": list(server.command),
        "cwd": server.cwd,
        "header_names": sorted(secrets.get("headers", {})),
        "env_names": sorted(secrets.get("env", {})),
        "timeout_seconds": server.timeout_seconds,
        "is_active": server.is_active,
    }


def mcp_server_secrets(server: McpServer) -> dict[str, Any]:
    """The server's sealed secrets, opened (for validation and the audit's header names)."""
    return json.loads(sealing.unseal(server.secrets_sealed) or "{}")


def _mcp_string_map(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError({field: "Give an object of string names to string values."})
    return dict(value)


def mcp_server_validate(server: McpServer, secrets: dict[str, Any]) -> None:
    """Raise a ValidationError naming the field when ``server`` with ``secrets`` cannot work."""
    if not _MCP_NAME.match(server.name or ""):
        raise ValidationError(
            {"name": "Use lower-case letters, digits, '-' and single '_' (tools are named <server>__<tool>)."}
        )
    if server.transport not in McpTransport.values:
        raise ValidationError({"transport": f"Use one of {', '.join(McpTransport.values)}."})
    if server.auth not in McpAuth.values:
        raise ValidationError({"auth": f"Use one of {', '.join(McpAuth.values)}."})
    if server.transport == McpTransport.HTTP:
        if not server.url.startswith(("http://", "https://")):
            raise ValidationError({"url": "A streamable HTTP server needs its http(s) URL."})
        if server.command:
            raise ValidationError({"command": "Only a stdio server has a command."})
        if server.auth == McpAuth.HEADERS and not secrets.get("headers"):
            raise ValidationError({"headers": "Static-header auth needs at least one header."})
        if server.auth == McpAuth.OAUTH_CLIENT_CREDENTIALS and not (
            server.token_url and server.client_id and secrets.get("client_secret")
        ):
            raise ValidationError(
                {"token_url": "OAuth client credentials need a token URL, a client id and a client secret."}
            )
    else:
        command = server.command
        if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
            raise ValidationError({"command": "A stdio server needs its command as a list of arguments."})
        if server.url:
            raise ValidationError({"url": "A stdio server has no URL."})
        if server.auth != McpAuth.NONE:
            raise ValidationError({"auth": "A stdio server takes its credentials from its environment."})
    if not 1 <= server.timeout_seconds <= 3600:
        raise ValidationError({"timeout_seconds": "Between 1 second and an hour."})


@transaction.atomic
def mcp_server_create(
    *,
    actor: Any,
    name: str,
    transport: str,
    url: str = "",
    description: str = "",
    auth: str = McpAuth.NONE,
    headers: dict[str, str] | None = None,
    token_url: str = "",
    client_id: str = "",
    client_secret: str = "",
    scope: str = "",
    command: list[str] | None = None,
    cwd: str = "",
    env: dict[str, str] | None = None,
    timeout_seconds: int = 60,
    is_active: bool = True,
) -> McpServer:
    """Register an MCP server. Its tools appear on /mcp for every key allowed them."""
    if McpServer.objects.filter(name=name).exists():
        raise ValidationError({"name": f"An MCP server named '{name}' already exists."})
    secrets: dict[str, Any] = {}
    if headers:
        secrets["headers"] = _mcp_string_map(headers, "headers")
    if client_secret:
        secrets["client_secret"] = client_secret
    if env:
        secrets["env"] = _mcp_string_map(env, "env")
    server = McpServer(
        name=name,
        description=description,
        transport=transport,
        url=url.rstrip("/") if url else "",
        auth=auth,
        token_url=token_url,
        client_id=client_id,
        scope=scope,
        command=list(command or []),
        cwd=cwd,
        secrets_sealed=sealing.seal(json.dumps(secrets)) if secrets else "",
        timeout_seconds=int(timeout_seconds),
        is_active=is_active,
    )
    mcp_server_validate(server, secrets)
    server.save()
    audit_record(actor=actor, action="mcp_server.create", target=server, after=_mcp_server_state(server))
    config_changed()
    return server



@transaction.atomic
def mcp_server_update(
    *,
    actor: Any,
    server: McpServer,
    url: str | None = None,
    description: str | None = None,
    auth: str | None = None,
    headers: dict[str, str] | None = None,
    token_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    scope: str | None = None,
    command: list[str] | None = None,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    timeout_seconds: int | None = None,
    is_active: bool | None = None,
) -> McpServer:
    """Change an MCP server; a secret given replaces the stored one, one left out is kept."""
    before = _mcp_server_state(server)
    secrets = mcp_server_secrets(server)
    for field, value in (
        ("url", url),
        ("description", description),
        ("auth", auth),
        ("token_url", token_url),
        ("client_id", client_id),
        ("scope", scope),
        ("cwd", cwd),
    ):
        if value is not None:
            setattr(server, field, value)
    if command is not None:
        server.command = list(command)
    if timeout_seconds is not None:
        server.timeout_seconds = int(timeout_seconds)
    if is_active is not None:
        server.is_active = is_active
    changed = []
    if headers is not None:
        secrets["headers"] = _mcp_string_map(headers, "headers")
        changed.append("headers")
    if client_secret is not None:
        secrets["client_secret"] = client_secret
        changed.append("client_secret")
    if env is not None:
        secrets["env"] = _mcp_string_map(env, "env")
        changed.append("env")
    mcp_server_validate(server, secrets)
    server.secrets_sealed = sealing.seal(json.dumps(secrets)) if secrets else ""
    server.save()
    after = _mcp_server_state(server) | {"secrets_changed": changed}
    audit_record(actor=actor, action="mcp_server.update", target=server, before=before, after=after)
    config_changed()
    return server


@transaction.atomic
def mcp_server_delete(*, actor: Any, server: McpServer) -> None:
    audit_record(actor=actor, action="mcp_server.delete", target=server, before=_mcp_server_state(server))
    server.delete()
    config_changed()


def _mcp_patterns(patterns: Any, field: str) -> list[str]:
    if not isinstance(patterns, list):
        raise ValidationError({field: "Give a list of tool patterns such as 'files__read_*' or 'github'."})
    cleaned = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not _MCP_PATTERN.match(pattern.strip()):
            raise ValidationError(
                {field: f"'{pattern}' is not a tool pattern: use globs over <server>__<tool> names, such as 'files__read_*'."}
            )
        cleaned.append(pattern.strip())
    return cleaned


def _mcp_policy_state(policy: McpToolPolicy) -> dict[str, Any]:
    return {"level": policy.level, "target": str(policy.target), "allowed": policy.allowed, "denied": policy.denied}


@transaction.atomic
def mcp_tool_policy_set(
    *,
    actor: Any,
    level: str,
    organization: Organization,
    allowed: list[str],
    denied: list[str] | None = None,
    team: Team | None = None,
    user: Any = None,
    key: VirtualKey | None = None,
) -> McpToolPolicy:
    """Set which MCP tools one level of the chain may use (one policy per target)."""
    _manage_require(actor=actor, organization=organization)
    target = _policy_target(level=level, organization=organization, team=team, user=user, key=key)
    policy = McpToolPolicy.objects.select_for_update().filter(**target).first()
    before = _mcp_policy_state(policy) if policy else None
    if policy is None:
        policy = McpToolPolicy(**target)
    policy.allowed = _mcp_patterns(allowed, "allowed")
    policy.denied = _mcp_patterns(denied or [], "denied")
    policy.save()
    audit_record(actor=actor, action="mcp_policy.set", target=policy, before=before, after=_mcp_policy_state(policy))
    config_changed()
    return policy


@transaction.atomic
def mcp_tool_policy_delete(*, actor: Any, policy: McpToolPolicy) -> None:
    _manage_require(actor=actor, organization=policy.organization)
    audit_record(actor=actor, action="mcp_policy.delete", target=policy, before=_mcp_policy_state(policy))
    policy.delete()
    config_changed()


@transaction.atomic
def mcp_bundle_set(*, actor: Any, name: str, tools: list[str], description: str = "") -> McpBundle:
    """Create or change the tool bundle served at /mcp/<name>."""
    if not re.match(r"^[a-z0-9][a-z0-9-]*$", name or ""):
        raise ValidationError({"name": "Use lower-case letters, digits and '-'."})
    patterns = _mcp_patterns(tools, "tools")
    if not patterns:
        raise ValidationError({"tools": "A bundle names at least one tool pattern."})
    bundle = McpBundle.objects.select_for_update().filter(name=name).first()
    before = {"tools": bundle.tools, "description": bundle.description} if bundle else None
    if bundle is None:
        bundle = McpBundle(name=name)
    bundle.tools = patterns
    bundle.description = description
    bundle.save()
    audit_record(
        actor=actor, action="mcp_bundle.set", target=bundle, before=before,
        after={"tools": bundle.tools, "description": bundle.description},
    )
    config_changed()
    return bundle


@transaction.atomic
def mcp_bundle_delete(*, actor: Any, bundle: McpBundle) -> None:
    audit_record(actor=actor, action="mcp_bundle.delete", target=bundle, before={"tools": bundle.tools})
    bundle.delete()
    config_changed()
