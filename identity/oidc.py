"""The console's single sign-on: mozilla-django-oidc's authorization code flow (PKCE,
nonce, state, the ID token's signature checked against the provider's JWKS), with the
provider picked per request, since the library natively knows only one.

``/sso/<slug>/start/`` sends the browser to that provider and files the state under
its slug in the session; ``/sso/callback/`` (one redirect URI for every provider)
finds the provider by the state that comes back, so a code can only ever be
redeemed at the provider that was asked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from governance.sealing import unseal
from identity import services
from identity.claims import SignInRefused, person_from_claims
from identity.discovery import DiscoveryError, ProviderMetadata, provider_metadata
from identity.graph import graph_groups
from identity.models import IdentityProvider

CALLBACK = "sso-callback"
# Clock skew allowed on exp/iat/nbf.
LEEWAY_SECONDS = 60


def _flow_settings(idp: IdentityProvider) -> dict[str, Any]:
    return {
        "OIDC_RP_SCOPES": idp.scopes,
        "OIDC_USE_PKCE": True,
        "OIDC_USE_NONCE": True,
        "OIDC_AUTHENTICATION_CALLBACK_URL": CALLBACK,
        "OIDC_TIMEOUT": import_from_settings("SSO_HTTP_TIMEOUT_SECONDS"),
        "OIDC_CREATE_USER": True,
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_STORE_ID_TOKEN": False,
    }


def enabled_provider(slug: str) -> IdentityProvider | None:
    return (
        IdentityProvider.objects.select_related("organization")
        .filter(slug=slug, enabled=True)
        .first()
    )


class SsoBackend(OIDCAuthenticationBackend):
    """Authenticates only a callback the view has tied to a provider (``request.sso_idp``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.UserModel = get_user_model()
        self.idp: IdentityProvider | None = None
        self.flow: dict[str, Any] = {}

    def get_settings(self, attr: str, *args: Any) -> Any:  # type: ignore[override]
        if attr in self.flow:
            return self.flow[attr]
        return import_from_settings(attr, *args)

    def _configure(self, idp: IdentityProvider, metadata: ProviderMetadata) -> None:
        self.idp = idp
        self.flow = _flow_settings(idp)
        self.OIDC_OP_TOKEN_ENDPOINT = metadata.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = metadata.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = metadata.jwks_uri
        self.OIDC_RP_CLIENT_ID = idp.client_id
        self.OIDC_RP_CLIENT_SECRET = unseal(idp.client_secret_sealed)
        self.OIDC_RP_SIGN_ALGO = metadata.signing_algorithm
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        idp = getattr(request, "sso_idp", None)
        if request is None or idp is None or "nonce" not in kwargs:
            return None
        try:
            self._configure(idp, provider_metadata(idp))
            return super().authenticate(request, **kwargs)
        except SignInRefused as refusal:
            request.sso_refusal = refusal  # type: ignore[attr-defined]
        except DiscoveryError as exc:
            request.sso_refusal = SignInRefused(  # type: ignore[attr-defined]
                "discovery",
                f"{idp.name} cannot be reached right now; try again later.",
                error=str(exc)[:300],
            )
        except requests.RequestException as exc:
            request.sso_refusal = SignInRefused(  # type: ignore[attr-defined]
                "token",
                f"{idp.name} did not accept the sign-in; start again.",
                error=str(exc)[:300],
            )
        except (SuspiciousOperation, jwt.PyJWTError) as exc:
            # A bad signature, nonce, audience, issuer or expiry: never a sign-in.
            request.sso_refusal = SignInRefused(  # type: ignore[attr-defined]
                "id_token",
                f"The sign-in from {idp.name} did not check out; start again.",
                error=str(exc)[:300],
            )
        services.sso_refusal_record(idp=idp, refusal=request.sso_refusal)  # type: ignore[attr-defined]
        return None

    def _verify_jws(self, payload: Any, key: Any) -> dict[str, Any]:
        # The library checks the signature only; an ID token is ours only when it was
        # issued by this provider, for this client, and is still current (OIDC Core §3.1.3.7).
        assert self.idp is not None
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(
                f"ID token signed with {header.get('alg')!r}, expected {self.OIDC_RP_SIGN_ALGO}"
            )
        return jwt.decode(
            payload,
            key,
            algorithms=[self.OIDC_RP_SIGN_ALGO],
            audience=self.OIDC_RP_CLIENT_ID,
            issuer=self.idp.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub"]},
        )

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        assert self.idp is not None
        info = (
            self.get_userinfo(access_token, id_token, payload) if self.OIDC_OP_USER_ENDPOINT else {}
        )
        if info.get("sub", payload.get("sub")) != payload.get("sub"):
            raise SignInRefused(
                "subject_mismatch", f"{self.idp.name} answered for someone else; start again."
            )
        # The ID token's claims win over userinfo's: they are the signed ones.
        person = person_from_claims(idp=self.idp, claims={**info, **payload})
        if person.groups is None:
            audit_detail = {"email": person.email, "subject": person.subject}
            try:
                groups = graph_groups(idp=self.idp, access_token=access_token)
            except SignInRefused as refusal:
                refusal.detail |= audit_detail
                raise
            person = replace(person, groups=groups)
        return services.sso_sign_in(idp=self.idp, person=person)

    def get_user(self, user_id: Any) -> Any:
        # The library's get_user ignores is_active; a deactivated user's session must end.
        return ModelBackend.get_user(self, user_id)


class SsoStartView(OIDCAuthenticationRequestView):
    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)
        self.flow: dict[str, Any] = {}

    def get_settings(self, attr: str, *args: Any) -> Any:  # type: ignore[override]
        if attr in self.flow:
            return self.flow[attr]
        return import_from_settings(attr, *args)

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:  # type: ignore[override]
        idp = enabled_provider(slug)
        if idp is None:
            raise Http404("No such identity provider.")
        try:
            metadata = provider_metadata(idp)
        except DiscoveryError as exc:
            refusal = SignInRefused(
                "discovery",
                f"{idp.name} cannot be reached right now; try again later.",
                error=str(exc)[:300],
            )
            services.sso_refusal_record(idp=idp, refusal=refusal)
            messages.error(request, refusal.message)
            return HttpResponseRedirect(reverse("account_login"))
        self.flow = _flow_settings(idp)
        self.OIDC_OP_AUTH_ENDPOINT = metadata.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = idp.client_id
        response = super().get(request)
        state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
        request.session["oidc_states"][state]["idp"] = idp.slug
        request.session.modified = True
        return response


class SsoCallbackView(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:  # type: ignore[override]
        entry = request.session.get("oidc_states", {}).get(request.GET.get("state", ""))
        idp = enabled_provider(entry.get("idp", "")) if isinstance(entry, dict) else None
        if idp is None:
            refusal = SignInRefused(
                "state", "This sign-in expired or was already used; start again."
            )
            services.sso_refusal_record(idp=None, refusal=refusal)
            request.sso_refusal = refusal  # type: ignore[attr-defined]
            self.request = request
            return self.login_failure()
        request.sso_idp = idp  # type: ignore[attr-defined]
        if request.GET.get("error"):
            refusal = SignInRefused(
                "provider_error",
                f"{idp.name} did not sign you in: {request.GET.get('error_description') or request.GET['error']}",
                error=request.GET["error"][:100],
            )
            services.sso_refusal_record(idp=idp, refusal=refusal)
            request.sso_refusal = refusal  # type: ignore[attr-defined]
        try:
            return super().get(request)
        except SuspiciousOperation:
            return self.login_failure()

    def login_failure(self) -> HttpResponse:
        refusal = getattr(self.request, "sso_refusal", None)
        messages.error(
            self.request,
            refusal.message if refusal else "Single sign-on did not complete; start again.",
        )
        return HttpResponseRedirect(reverse("account_login"))

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        services.sso_signin_record(idp=self.request.sso_idp, user=self.user)  # type: ignore[attr-defined]
        return response
