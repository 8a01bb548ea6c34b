"""Who an ID token says someone is: their stable subject, email and groups, read with the
claim names their provider uses. Pure functions over the verified claims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identity.models import IdentityProvider


class SignInRefused(Exception):
    """A single sign-on that must not go through; ``message`` is for the person, ``reason`` for the audit trail."""

    def __init__(self, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Person:
    subject: str
    email: str
    email_verified: bool
    name: str
    # None when the provider's token held an overage instead of the list.
    groups: tuple[str, ...] | None

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


def groups_overage(claims: dict[str, Any], groups_claim: str) -> bool:
    """Entra ID's sign that the groups did not fit in the token: the claim is named in
    ``_claim_names`` with a source to fetch it from, or (implicit flow) ``hasgroups`` is true."""
    names = claims.get("_claim_names")
    if isinstance(names, dict) and groups_claim in names:
        return True
    return claims.get("hasgroups") in (True, "true")


def person_from_claims(*, idp: IdentityProvider, claims: dict[str, Any]) -> Person:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRefused("no_subject", f"{idp.name} sent no subject for this account.")
    email = claims.get(idp.email_claim)
    if not isinstance(email, str) or "@" not in email:
        raise SignInRefused(
            "no_email",
            f"{idp.name} sent no email address (claim '{idp.email_claim}'); ask your admin to release it.",
            subject=subject,
        )
    groups: tuple[str, ...] | None = ()
    if idp.groups_claim:
        if groups_overage(claims, idp.groups_claim):
            groups = None
        else:
            raw = claims.get(idp.groups_claim) or []
            if isinstance(raw, str):
                raw = [raw]
            groups = tuple(sorted({str(g) for g in raw if isinstance(g, (str, int)) and str(g)}))
    return Person(
        subject=subject,
        email=email.strip().lower(),
        # Providers that do not say (Entra) vouch for the addresses of their own tenant.
        email_verified=claims.get("email_verified") not in (False, "false"),
        name=str(claims.get("name") or ""),
        groups=groups,
    )


def domain_allowed(*, idp: IdentityProvider, person: Person) -> bool:
    return not idp.allowed_domains or person.domain in idp.allowed_domains
