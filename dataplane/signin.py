"""Claude Code's sign-in through the gateway: the bearer it carries, and the
sign-in endpoints it calls at the gateway's URL (../shared/design/CLAUDE-CODE-SIGNIN.md).

The bearer is a short-lived HS256 JWT the control plane mints at the end of the
device flow (devicelogin/): ``sub`` the user, ``kid`` the virtual key that
device signed in as, by its prefix (created at approval, on the user's team,
so budgets, limits, allowlists and attribution are exactly a key's), ``sid``
the device's sign-in. The data plane checks the signature with a key derived
from the pepper both planes hold, then finds the key in the snapshot: no
database call, and disabling that key (signing the device out, deactivating
the user) refuses the bearer on every worker within a second, not at expiry.

A signature check costs ~80 µs in PyJWT here: each worker remembers the
tokens it has verified (until their expiry, bounded), so that is paid once
per token per worker, not per request.

Everything else the client calls for sign-in (device authorization, token,
revocation, managed settings) needs the database: the data plane passes it
to the control plane. Discovery it answers itself, with URLs of its own
origin, since the client accepts same-origin endpoints only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import TYPE_CHECKING, Any

import jwt
import orjson

from dataplane.errors import GatewayError
from dataplane.http import ClientGone, Receive, Scope, Send, read_body, send_response

if TYPE_CHECKING:
    from dataplane.app import Gateway

log = logging.getLogger("tollgate.gateway")

ISSUER = "tollgate"
ACCESS_TTL_SECONDS = 3600
_CACHE_MAX = 10_000


def signing_key(pepper: bytes) -> bytes:
    return hmac.new(pepper, b"tollgate sign-in bearer v1", hashlib.sha256).digest()


def looks_like_bearer(token: str) -> bool:
    """A JWT (base64url of '{"'), never a virtual key (``tg-…``)."""
    return token.startswith("eyJ") and token.count(".") == 2


def bearer_issue(
    pepper: bytes, *, user_id: int, key_prefix: str, session: str, ttl: int = ACCESS_TTL_SECONDS, now: float | None = None
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {"iss": ISSUER, "sub": str(user_id), "kid": key_prefix, "sid": session, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, signing_key(pepper), algorithm="HS256")


def bearer_claims(pepper: bytes, token: str, *, verify_exp: bool = True) -> dict[str, Any] | None:
    """The claims of a bearer this deployment minted, or None (forged, malformed, expired)."""
    try:
        claims = jwt.decode(
            token,
            signing_key(pepper),
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "kid", "sid"], "verify_exp": verify_exp},
        )
    except jwt.InvalidTokenError:
        return None
    return claims if isinstance(claims.get("kid"), str) else None


class Bearers:
    """One worker's verified bearers: token -> (key prefix, expiry)."""

    def __init__(self, pepper: bytes) -> None:
        self.pepper = pepper
        self._seen: dict[str, tuple[str, float]] = {}

    def key_prefix(self, token: str, now: float) -> tuple[str | None, str]:
        """The key a bearer stands for, or None and why ("expired" or "invalid")."""
        hit = self._seen.get(token)
        if hit is not None:
            if hit[1] > now:
                return hit[0], ""
            del self._seen[token]
            return None, "expired"
        claims = bearer_claims(self.pepper, token, verify_exp=False)
        if claims is None:
            return None, "invalid"
        if claims["exp"] <= now:
            return None, "expired"
        if len(self._seen) >= _CACHE_MAX:
            self._seen.clear()
        self._seen[token] = (claims["kid"], float(claims["exp"]))
        return claims["kid"], ""


def discovery(origin: str) -> dict[str, Any]:
    """RFC 8414 metadata, every endpoint on the gateway's own origin."""
    return {
        "issuer": origin,
        "device_authorization_endpoint": f"{origin}/oauth/device_authorization",
        "token_endpoint": f"{origin}/oauth/token",
        "revocation_endpoint": f"{origin}/oauth/revoke",
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
    }


# Paths the control plane answers, relayed as they are.
CONTROL_PLANE_PATHS = frozenset(
    {"/oauth/device_authorization", "/oauth/token", "/oauth/revoke", "/managed/settings", "/api/oauth/usage"}
)

OTLP_PATHS = frozenset({"/v1/metrics", "/v1/logs", "/v1/traces"})
DISCOVERY_PATH = "/.well-known/oauth-authorization-server"
PATHS = CONTROL_PLANE_PATHS | OTLP_PATHS | {DISCOVERY_PATH}
_MAX_RELAYED_BODY = 64 * 1024
_PASSED_UP = (b"content-type", b"accept", b"authorization", b"if-none-match", b"user-agent")
_PASSED_DOWN = {"content-type", "etag", "cache-control", "retry-after", "www-authenticate"}
_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def _origin(scope: Scope, headers: dict[bytes, bytes]) -> str:
    host = headers.get(b"host", b"").decode("latin-1")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def _oauth_error(error: str, description: str) -> bytes:
    return orjson.dumps({"error": error, "error_description": description})


async def serve(gw: Gateway, scope: Scope, receive: Receive, send: Send, path: str) -> None:
    """The sign-in endpoints Claude Code calls at the gateway's URL."""
    headers = dict(scope["headers"])
    if path == DISCOVERY_PATH:
        await send_response(send, 200, list(_JSON), orjson.dumps(discovery(_origin(scope, headers))))
        return
    if path in OTLP_PATHS:
        await _otlp(gw, scope, receive, send, headers)
        return
    await _relay(gw, scope, receive, send, path, headers)


async def _otlp(gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
    # Claude Code's OpenTelemetry export: accepted from a signed-in device or a
    # key (so the client never retries it), counted, not stored.
    try:
        gw.authenticate(headers)
        await read_body(receive, gw.config.max_body_bytes, headers.get(b"content-length"), gw.config.body_read_timeout)
    except GatewayError as err:
        await send_response(send, err.status, list(_JSON), orjson.dumps({"error": err.message}))
        return
    except ClientGone:
        return
    gw.metrics.inc("tollgate_otlp_exports_total", signal=scope["path"].rsplit("/", 1)[-1])
    ctype = headers.get(b"content-type", b"")
    if ctype.startswith(b"application/x-protobuf"):
        await send_response(send, 200, [(b"content-type", b"application/x-protobuf")], b"")
    else:
        await send_response(send, 200, list(_JSON), b"{}")


async def _relay(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, path: str, headers: dict[bytes, bytes]
) -> None:
    import aiohttp

    try:
        body = await read_body(receive, _MAX_RELAYED_BODY, headers.get(b"content-length"), 30.0)
    except GatewayError as err:
        await send_response(send, err.status, list(_JSON), _oauth_error("invalid_request", err.message))
        return
    except ClientGone:
        return
    up = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items() if k in _PASSED_UP}
    client = scope.get("client")
    if client:
        up["x-forwarded-for"] = str(client[0])
    public = gw.config.control_plane_public_url
    if public and public != gw.config.control_plane_url:
        scheme, _, host = public.partition("://")
        up["host"], up["x-forwarded-proto"] = host.split("/", 1)[0], scheme
    query = scope.get("query_string") or b""
    url = gw.config.control_plane_url + path + ("?" + query.decode("latin-1") if query else "")
    try:
        async with gw.session.request(
            scope["method"], url, data=body or None, headers=up, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:  # fmt: skip
            payload = await response.read()
            out = [(k.lower().encode(), v.encode()) for k, v in response.headers.items() if k.lower() in _PASSED_DOWN]
            await send_response(send, response.status, out, payload)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("sign-in call %s could not reach the control plane: %r", path, exc)
        await send_response(
            send, 503, list(_JSON),
            _oauth_error("temporarily_unavailable", "Tollgate's control plane is unreachable; retry in a moment."),
        )  # fmt: skip
