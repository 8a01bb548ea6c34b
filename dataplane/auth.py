"""Authenticate a virtual key against the snapshot: a digest and a dict lookup;
or the bearer of a device signed in through the gateway (signin.py), whose key
the snapshot finds by prefix, held to the same checks."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from dataplane.errors import GatewayError
from dataplane.signin import Bearers, looks_like_bearer
from dataplane.snapshot import KeyEntry, Snapshot

_NO_RETRY: dict[str, Any] = {"retry": False}


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key from ``x-tollgate-key``, ``x-api-key``, ``x-goog-api-key`` (Gemini
    clients) or ``Authorization: Bearer``."""
    raw = headers.get(b"x-tollgate-key") or headers.get(b"x-api-key") or headers.get(b"x-goog-api-key")
    if raw is None:
        auth = headers.get(b"authorization")
        if auth is None:
            return None
        scheme, _, value = auth.partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        raw = value.strip()
    return raw.decode("latin-1") if raw else None


def authenticate(
    headers: dict[bytes, bytes], snapshot: Snapshot, pepper: bytes, bearers: Bearers | None = None
) -> KeyEntry:
    token = presented_key(headers)
    if token is None:
        raise GatewayError(
            401,
            "No Tollgate key was sent. Set ANTHROPIC_AUTH_TOKEN (or x-api-key) to the virtual key "
            "your platform admin gave you.",
            **_NO_RETRY,
        )
    if bearers is not None and looks_like_bearer(token):
        return _signed_in(token, snapshot, bearers)
    digest = hmac.new(pepper, token.encode("latin-1"), hashlib.sha256).hexdigest()
    key = snapshot.keys.get(digest)
    shown = token[:11] + "…" if token.startswith("tg-") else "the key sent"
    if key is None:
        raise GatewayError(
            401,
            f"Tollgate does not recognise {shown}. Check ANTHROPIC_AUTH_TOKEN, or ask your platform "
            "admin for a new key.",
            **_NO_RETRY,
        )
    return _usable(key)


def _signed_in(token: str, snapshot: Snapshot, bearers: Bearers) -> KeyEntry:
    prefix, why = bearers.key_prefix(token, time.time())
    if prefix is None:
        if why == "expired":
            message = "Your Tollgate sign-in has expired. Run /login again."
        else:
            message = "Tollgate does not recognise this sign-in. Run /login again."
        raise GatewayError(401, message, **_NO_RETRY)
    key = snapshot.by_prefix.get(prefix)
    if key is None:
        raise GatewayError(401, "This device was signed out of Tollgate. Run /login again.", **_NO_RETRY)
    if not key.active and key.owner_active:
        raise GatewayError(
            401, "This device was signed out of Tollgate. Run /login again.", key=key, **_NO_RETRY
        )
    return _usable(key)


def _usable(key: KeyEntry) -> KeyEntry:
    if not key.active:
        if not key.owner_active:
            raise GatewayError(
                401,
                f"Tollgate key {key.prefix}… belongs to a deactivated user. Ask your platform admin.",
                key=key,
                **_NO_RETRY,
            )
        raise GatewayError(
            401,
            f"Tollgate key {key.prefix}… is disabled. Ask your platform admin to re-enable it or "
            "issue you a new one.",
            key=key,
            **_NO_RETRY,
        )
    if key.expires_at is not None and key.expires_at <= time.time():
        raise GatewayError(
            401,
            f"Tollgate key {key.prefix}… expired. Ask your platform admin for a new key.",
            key=key,
            **_NO_RETRY,
        )
    return key
