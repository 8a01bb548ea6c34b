"""Google Cloud access tokens from a service-account JSON key, off the event loop.

google-auth signs the JWT assertion and exchanges it at the key's ``token_uri``
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest).
That exchange is blocking HTTP, so it runs in a worker thread
(``asyncio.to_thread``) through google-auth's urllib3 transport, and never more
than one at a time per key: every request that needs a token while one is
being minted awaits the same task (single flight).

A token is refreshed ``margin`` seconds before it expires, in the background,
while requests keep using the current one; a request only waits when there is
no usable token at all (the first request, or after an outage).

Use: ``cache = TokenCache()`` once per process, then
``await cache.for_provider(provider).token()`` per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import urllib3
from google.auth import exceptions as google_exceptions
from google.auth.transport.urllib3 import Request as UrllibRequest
from google.oauth2 import service_account

from dataplane.errors import GatewayError
from dataplane.providers.base import ProviderConfig

log = logging.getLogger("tollgate.gcp_auth")

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# A token this close to its end is not handed out: a request signed with it
# could reach Google after it expired.
_SAFETY = 30.0
# After a failed background refresh, wait this long before trying again, so
# a token endpoint outage is not hammered by every request.
_RETRY_AFTER = 10.0


_TRANSPORT: UrllibRequest | None = None


def _transport() -> UrllibRequest:
    """google-auth's own urllib3 transport on one shared pool (thread-safe; only
    ever used from worker threads)."""
    global _TRANSPORT
    if _TRANSPORT is None:
        _TRANSPORT = UrllibRequest(urllib3.PoolManager(timeout=urllib3.Timeout(connect=10.0, read=30.0)))
    return _TRANSPORT


def parse_service_account(name: str, credential: str) -> dict[str, Any]:
    try:
        info = orjson.loads(credential)
    except orjson.JSONDecodeError:
        info = None
    if not isinstance(info, dict) or info.get("type", "service_account") != "service_account":
        raise GatewayError(
            502,
            f"Provider {name!r}: the credential is not a Google service-account JSON key.",
            error_type="api_error",
            retry=False,
        )
    return info


class ServiceAccountTokens:
    """Access tokens for one service-account key, minted one at a time."""

    def __init__(
        self,
        name: str,
        info: dict[str, Any],
        *,
        margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        transport: Any = None,
    ) -> None:
        self.name = name
        self.project_id: str | None = info.get("project_id")
        try:
            self._credentials = service_account.Credentials.from_service_account_info(
                info, scopes=list(SCOPES)
            )
        except (ValueError, KeyError) as exc:
            raise GatewayError(
                502,
                f"Provider {name!r}: the service-account key cannot be used: {exc}",
                error_type="api_error",
                retry=False,
            ) from exc
        self._margin = margin
        self._clock = clock
        self._transport = transport
        self._token = ""
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._failed_at = float("-inf")
        self._inflight: asyncio.Task[str] | None = None
        self.mints = 0

    async def token(self) -> str:
        now = self._clock()
        if now < self._refresh_at:
            return self._token
        if now < self._expires_at - _SAFETY:
            # Still good for a while: refresh behind the caller's back.
            if now - self._failed_at >= _RETRY_AFTER:
                self._start()
            return self._token
        # Shielded: a caller that goes away must not cancel the refresh the
        # others are waiting on.
        return await asyncio.shield(self._start())

    def _start(self) -> asyncio.Task[str]:
        task = self._inflight
        # A finished task's token may already be stale; one from another event
        # loop (a finished test's) cannot be awaited here.
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.get_running_loop().create_task(self._refresh())
            task.add_done_callback(self._settled)
            self._inflight = task
        return task

    def _settled(self, task: asyncio.Task[str]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("token refresh for provider %r failed: %s", self.name, task.exception())

    async def _refresh(self) -> str:
        try:
            token, lifetime = await asyncio.to_thread(self._mint)
        except google_exceptions.GoogleAuthError as exc:
            self._failed_at = self._clock()
            retryable = bool(getattr(exc, "retryable", False)) or isinstance(
                exc, google_exceptions.TransportError
            )
            raise GatewayError(
                502,
                f"Provider {self.name!r}: could not get a Google access token with the "
                f"service-account key: {exc}",
                error_type="api_error",
                retry=None if retryable else False,
            ) from exc
        now = self._clock()
        self.mints += 1
        self._token = token
        self._expires_at = now + lifetime
        # A short-lived token is refreshed halfway through rather than at once.
        self._refresh_at = now + max(lifetime - self._margin, lifetime / 2)
        return token

    def _mint(self) -> tuple[str, float]:
        """In a worker thread: sign, exchange, and say how long the token lives."""
        credentials = self._credentials
        credentials.refresh(self._transport or _transport())
        expiry = credentials.expiry
        if expiry is None:
            return str(credentials.token), 3600.0
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        return str(credentials.token), max(0.0, (expiry - datetime.now(UTC)).total_seconds())


class TokenCache:
    """One ``ServiceAccountTokens`` per provider id, rebuilt when its key changes."""

    def __init__(
        self,
        *,
        margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        transport: Any = None,
    ) -> None:
        self._margin = margin
        self._clock = clock
        self._transport = transport
        self._entries: dict[int, tuple[str, ServiceAccountTokens]] = {}

    def for_provider(self, provider: ProviderConfig) -> ServiceAccountTokens:
        entry = self._entries.get(provider.id)
        if entry is not None and entry[0] == provider.credential:
            return entry[1]
        info = parse_service_account(provider.name, provider.credential)
        tokens = ServiceAccountTokens(
            provider.name, info, margin=self._margin, clock=self._clock, transport=self._transport
        )
        self._entries[provider.id] = (provider.credential, tokens)
        return tokens
