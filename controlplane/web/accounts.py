"""Sign-in for people: django-allauth, fitted to Tollgate.

Accounts are made by admins (and, later, by single sign-on), never by
self-service sign-up. A password check goes through ``authenticate()``, hence
ThrottledModelBackend (controlplane/signin.py), which throttles and audits
failures for the console, the API and the admin alike; this adapter only
words the refusal before a password is even looked at, and audits the
sign-ins and second-factor failures allauth sees.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base.forms import AuthenticateForm
from allauth.mfa.models import Authenticator
from django import forms
from django.db import transaction
from django.http import HttpRequest

from audit.services import audit_record
from controlplane.signin import signin_refusal
from governance.sealing import seal, unseal


def _audit(*, actor: Any, action: str, user: Any, after: dict[str, Any] | None = None) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action=action, target=user, after=after)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        super().pre_authenticate(request, **credentials)
        username = credentials.get("username") or ""
        wait = signin_refusal(request=request, username=username) if username else 0
        if wait:
            raise forms.ValidationError(
                f"Too many failed sign-ins. Try again in {max(1, (wait + 59) // 60)} minute(s).",
                code="throttled",
            )

    def login(self, request: HttpRequest, user: Any) -> None:
        super().login(request, user)
        _audit(actor=user, action="auth.signin", user=user, after={"method": "password"})


class MfaAdapter(DefaultMFAAdapter):
    """TOTP secrets at rest are sealed like provider credentials (governance/sealing.py)."""

    def encrypt(self, text: str) -> str:
        return seal(text)

    def decrypt(self, encrypted_text: str) -> str:
        return unseal(encrypted_text)


class MfaAuthenticateForm(AuthenticateForm):
    """The second step of a sign-in; a wrong code is audited like a wrong password."""

    def _emit_authentication_failed(self, authenticator: Authenticator) -> None:
        super()._emit_authentication_failed(authenticator)
        _audit(
            actor="anonymous",
            action="auth.mfa_failed",
            user=self.user,
            after={"username": self.user.get_username(), "authenticator": authenticator.type},
        )
