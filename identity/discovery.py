"""An identity provider's endpoints and keys, read from its published OpenID configuration
(https://openid.net/specs/openid-connect-discovery-1_0.html) and cached for a few minutes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import requests
from django.conf import settings
from django.core.cache import cache

from identity.models import IdentityProvider

# Asymmetric only: the ID token's signature is checked against the provider's JWKS,
# never against the client secret (which the provider's own staff also hold).
SIGNING_ALGORITHMS = ("RS256", "ES256", "RS384", "RS512", "ES384", "ES512")


class DiscoveryError(Exception):
    """An identity provider's metadata could not be fetched or does not fit."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    signing_algorithm: str


def _fetch(issuer: str) -> ProviderMetadata:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.SSO_HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        doc = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(f"could not read {url}: {exc}") from exc
    # The issuer in the document must be the one configured, or tokens would be checked
    # against an iss the provider never puts in them (OIDC Discovery §4.3).
    if doc.get("issuer") != issuer:
        raise DiscoveryError(f"{url} names issuer {doc.get('issuer')!r}, not {issuer!r}")
    supported = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithm = next((a for a in SIGNING_ALGORITHMS if a in supported), None)
    missing = [
        k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)
    ]
    if algorithm is None or missing:
        raise DiscoveryError(
            f"{url} lacks {', '.join(missing) or 'an asymmetric ID token signing algorithm'}"
        )
    return ProviderMetadata(
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        userinfo_endpoint=doc.get("userinfo_endpoint") or "",
        signing_algorithm=algorithm,
    )


def provider_metadata(idp: IdentityProvider) -> ProviderMetadata:
    key = f"sso:metadata:{idp.issuer}"
    cached = cache.get(key)
    if cached is not None:
        return ProviderMetadata(**cached)
    metadata = _fetch(idp.issuer)
    cache.set(key, asdict(metadata), settings.SSO_METADATA_CACHE_SECONDS)
    return metadata
