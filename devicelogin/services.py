"""The device flow (RFC 8628) and its tokens, as Claude Code's `/login` uses them.

1. ``device_start``: the client asks for a code; it gets a device code (its
   secret, 256 bits, single use) and a user code to show the user.
2. ``device_approve``: the user, signed in to the console, confirms the code;
   the sign-in gets a virtual key of its own on the user's team (so every
   budget, limit and allowlist of their chain applies, and signing the device
   out is disabling that key, which the data plane sees within a second).
3. ``token_for_device``: the client's polling ends with a short-lived bearer
   (dataplane/signin.py) and a refresh token.
4. ``token_refresh``: each renewal re-checks the user, their membership and
   the key; a deprovisioned user gets ``invalid_grant`` and must sign in again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from audit.services import audit_record
from dataplane.signin import bearer_claims, bearer_issue
from devicelogin.models import AuthorizationStatus, DeviceAuthorization, DeviceSignin
from governance import access
from governance import services as governance
from governance.keys import key_digest
from governance.models import KeyStatus, Membership, Organization, Role

# RFC 8628 §6.1: a base-20 alphabet without vowels or look-alikes, XXXX-XXXX.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
CODE_SECONDS = 600
POLL_SECONDS = 5
SLOW_DOWN_SECONDS = 5

User = get_user_model()


class GrantError(Exception):
    """An OAuth error answer: ``error`` code, HTTP status, a sentence for the user."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    email: str

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }
        if self.email:
            body["email"] = self.email
        return body


def user_code_normal(raw: str) -> str:
    """``bcdf ghjk``, ``BCDF-GHJK`` and ``BCDFGHJK`` are one code."""
    letters = "".join(c for c in raw.upper() if c.isalnum())
    return f"{letters[:4]}-{letters[4:8]}" if len(letters) == 8 else letters


def _user_code() -> str:
    letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def device_start(*, client_address: str = "", user_agent: str = "") -> tuple[DeviceAuthorization, str]:
    """A new device authorization and its device code (returned once, stored as a digest)."""
    device_code = secrets.token_urlsafe(32)
    now = timezone.now()
    code = _user_code()
    while DeviceAuthorization.objects.filter(user_code=code, status=AuthorizationStatus.PENDING, expires_at__gt=now).exists():
        code = _user_code()
    auth = DeviceAuthorization.objects.create(
        device_code_digest=key_digest(device_code),
        user_code=code,
        expires_at=now + timedelta(seconds=CODE_SECONDS),
        interval=POLL_SECONDS,
        client_address=client_address[:64],
        user_agent=user_agent[:300],
    )
    return auth, device_code


def pending_authorization(user_code: str) -> DeviceAuthorization | None:
    return (
        DeviceAuthorization.objects.filter(
            user_code=user_code_normal(user_code), status=AuthorizationStatus.PENDING, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")
        .first()
    )


def signin_organizations(user: Any) -> list[Membership]:
    """Where ``user`` may sign a device in: their memberships with a role that uses models."""
    return list(
        Membership.objects.filter(user=user, role__in=(Role.ADMIN, Role.DEVELOPER))
        .select_related("organization", "team")
        .order_by("organization__name")
    )


@transaction.atomic
def device_approve(*, user: Any, user_code: str, organization: Organization | None = None) -> DeviceSignin:
    auth = pending_authorization(user_code)
    if auth is None:
        raise ValidationError({"user_code": "That code is unknown or has expired. Run /login again for a new one."})
    auth = DeviceAuthorization.objects.select_for_update().get(pk=auth.pk)
    if auth.status != AuthorizationStatus.PENDING:
        raise ValidationError({"user_code": "That code has been used already."})
    memberships = signin_organizations(user)
    if organization is not None:
        memberships = [m for m in memberships if m.organization_id == organization.pk]
    if not memberships:
        raise PermissionDenied(
            "You have no organization where you may use models (a developer or admin role). Ask your platform admin."
        )
    membership = memberships[0]
    now = timezone.now()
    key, _secret = governance.key_create(
        actor=user,
        organization=membership.organization,
        name=f"Claude Code sign-in {now:%Y-%m-%d %H:%M} UTC"[:200],
        team=membership.team,
        user=user,
    )
    signin = DeviceSignin.objects.create(
        uid=secrets.token_hex(16),
        user=user,
        organization=membership.organization,
        key=key,
        client_address=auth.client_address,
        user_agent=auth.user_agent,
    )
    auth.status, auth.user, auth.signin = AuthorizationStatus.APPROVED, user, signin
    auth.save(update_fields=["status", "user", "signin"])
    audit_record(actor=user, action="signin.device.approve", target=signin, after=_signin_state(signin))
    return signin


@transaction.atomic
def device_deny(*, user: Any, user_code: str) -> None:
    auth = pending_authorization(user_code)
    if auth is None:
        raise ValidationError({"user_code": "That code is unknown or has expired."})
    auth.status, auth.user = AuthorizationStatus.DENIED, user
    auth.save(update_fields=["status", "user"])
    audit_record(actor=user, action="signin.device.deny", target=auth, after={"user_code": auth.user_code})


def _issue(signin: DeviceSignin, now: Any) -> Tokens:
    refresh = "tgr-" + secrets.token_urlsafe(32)
    signin.refresh_digest = key_digest(refresh)
    signin.refresh_expires_at = now + timedelta(days=settings.SIGNIN_REFRESH_DAYS)
    signin.refreshed_at = now
    signin.save(update_fields=["refresh_digest", "refresh_expires_at", "refreshed_at"])
    ttl = settings.SIGNIN_ACCESS_SECONDS
    access = bearer_issue(
        settings.KEY_PEPPER, user_id=signin.user_id, key_prefix=signin.key.prefix, session=signin.uid, ttl=ttl,
        now=now.timestamp(),
    )  # fmt: skip
    return Tokens(access, refresh, ttl, signin.user.email or "")


def token_for_device(*, device_code: str) -> Tokens:
    """The device grant's answer to one poll (RFC 8628 §3.5). A refusal still
    records the poll (its time, a slower interval), so it commits too."""
    answer = _locked_retry(lambda: _poll(device_code))
    if isinstance(answer, GrantError):
        raise answer
    return answer


def _locked_retry(step: Any) -> Any:
    """Run ``step`` in a transaction; SQLite answers a write that overlaps another
    (the user's confirmation and the client's poll) with "locked" at once rather
    than waiting, so that is tried again a few times before it is an error."""
    for delay in (0.05, 0.1, 0.2, 0.4):
        try:
            with transaction.atomic():
                return step()
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(delay)
    with transaction.atomic():
        return step()


def _poll(device_code: str) -> Tokens | GrantError:
    # The row alone is locked and read: a poll that waited for the approval's lock
    # sees the approved row, but rows joined to it would come from before (PostgreSQL
    # re-reads only the locked row), so the sign-in is loaded after, by its id.
    auth = DeviceAuthorization.objects.select_for_update().filter(device_code_digest=key_digest(device_code)).first()
    if auth is None:
        return GrantError("invalid_grant", "Unknown device code.")
    now = timezone.now()
    if auth.status == AuthorizationStatus.ISSUED:
        return GrantError("invalid_grant", "This device code has been used already.")
    if auth.expires_at <= now:
        return GrantError("expired_token", "The code expired before it was confirmed. Run /login again.")
    if auth.status == AuthorizationStatus.DENIED:
        return GrantError("access_denied", "The sign-in was denied in the browser.")
    if auth.status == AuthorizationStatus.PENDING:
        polled, auth.last_polled_at = auth.last_polled_at, now
        if polled is not None and (now - polled).total_seconds() < auth.interval:
            auth.interval += SLOW_DOWN_SECONDS
            auth.save(update_fields=["last_polled_at", "interval"])
            return GrantError("slow_down", f"Poll every {auth.interval} s.")
        auth.save(update_fields=["last_polled_at"])
        return GrantError("authorization_pending", "Waiting for the user to confirm the code.")
    signin = DeviceSignin.objects.select_related("key", "user").get(pk=auth.signin_id)
    auth.status = AuthorizationStatus.ISSUED
    auth.save(update_fields=["status"])
    tokens = _issue(signin, now)
    audit_record(actor=signin.user, action="signin.device.token", target=signin, after=_signin_state(signin))
    return tokens


def _refusal(signin: DeviceSignin, now: Any) -> str:
    if signin.revoked_at is not None:
        return "This device was signed out."
    if signin.refresh_expires_at is None or signin.refresh_expires_at <= now:
        return "The sign-in expired."
    if not signin.user.is_active:
        return "Your account is deactivated."
    if signin.key.status != KeyStatus.ACTIVE:
        return "This device's access was disabled."
    if not Membership.objects.filter(user=signin.user, organization=signin.organization).exists():
        return "You are no longer a member of the organization."
    return ""


def token_refresh(*, refresh_token: str) -> Tokens:
    """A renewal, or ``invalid_grant``; a deprovisioned user's sign-in is ended
    for good on the way (committed, though the answer is a refusal)."""
    answer = _locked_retry(lambda: _renew(refresh_token))
    if isinstance(answer, GrantError):
        raise answer
    return answer


def _renew(refresh_token: str) -> Tokens | GrantError:
    signin = (
        DeviceSignin.objects.select_for_update()
        .filter(refresh_digest=key_digest(refresh_token))
        .select_related("user", "key")
        .first()
    )
    if signin is None or not refresh_token:
        return GrantError("invalid_grant", "Unknown refresh token; run /login again.", status=401)
    now = timezone.now()
    why = _refusal(signin, now)
    if why:
        if signin.revoked_at is None and not signin.user.is_active:
            _revoke(signin, actor=None, why="deprovisioned")
        return GrantError("invalid_grant", f"{why} Run /login again.", status=401)
    return _issue(signin, now)


def _revoke(signin: DeviceSignin, *, actor: Any, why: str) -> None:
    before = _signin_state(signin)
    signin.revoked_at = timezone.now()
    signin.refresh_digest = ""
    signin.save(update_fields=["revoked_at", "refresh_digest"])
    if signin.key.status == KeyStatus.ACTIVE:
        # Disabling the key is what cuts the bearer on every worker (the snapshot).
        governance.key_disable(actor=actor, key=signin.key)
    audit_record(actor=actor, action="signin.device.revoke", target=signin, before=before, after={"why": why})


@transaction.atomic
def token_revoke(*, token: str) -> None:
    """RFC 7009: sign the device out, by its refresh token or its bearer; unknown tokens are no error."""
    signin = None
    if token.startswith("tgr-"):
        signin = DeviceSignin.objects.filter(refresh_digest=key_digest(token)).select_related("user", "key").first()
    else:
        claims = bearer_claims(settings.KEY_PEPPER, token, verify_exp=False)
        if claims is not None:
            signin = DeviceSignin.objects.filter(uid=claims["sid"]).select_related("user", "key").first()
    if signin is not None and signin.revoked_at is None:
        signin = DeviceSignin.objects.select_for_update().select_related("user", "key").get(pk=signin.pk)
        _revoke(signin, actor=signin.user, why="signed out")


@transaction.atomic
def signin_revoke(*, actor: Any, signin: DeviceSignin) -> None:
    """Sign a device out from the console: its owner, or an admin of its organization."""
    signin = DeviceSignin.objects.select_for_update().select_related("user", "key", "organization").get(pk=signin.pk)
    if actor.pk != signin.user_id and not access.actor_manages(actor=actor, organization=signin.organization):
        raise PermissionDenied("Only the device's owner or an admin of its organization may sign it out.")
    if signin.revoked_at is None:
        _revoke(signin, actor=actor, why="signed out in the console")


def signin_for_bearer(token: str) -> DeviceSignin | None:
    """The live sign-in a bearer belongs to (for the control plane's own bearer endpoints)."""
    claims = bearer_claims(settings.KEY_PEPPER, token)
    if claims is None:
        return None
    signin = DeviceSignin.objects.filter(uid=claims["sid"]).select_related("user", "key", "organization").first()
    if signin is None or signin.revoked_at is not None or signin.key.status != KeyStatus.ACTIVE:
        return None
    return signin if signin.user.is_active else None


def _signin_state(signin: DeviceSignin) -> dict[str, Any]:
    return {
        "user": signin.user.get_username(),
        "organization": signin.organization.slug if signin.organization_id else None,
        "key": signin.key.prefix,
        "client_address": signin.client_address,
    }
