"""Virtual key format and digest.

A key reads ``tg-<8 hex>-<43 url-safe chars>``. The first 11 characters are the
visible prefix (lists, logs); the database and the snapshot hold only
HMAC-SHA256(pepper, key), so neither leaks a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

PREFIX_LEN = 11


def key_generate() -> tuple[str, str]:
    """Return (secret, prefix) for a new key."""
    prefix = "tg-" + secrets.token_hex(4)
    return f"{prefix}-{secrets.token_urlsafe(32)}", prefix


def key_digest(secret: str, pepper: bytes | None = None) -> str:
    return hmac.new(pepper or settings.KEY_PEPPER, secret.encode(), hashlib.sha256).hexdigest()


API_TOKEN_PREFIX_LEN = 14


def api_token_generate() -> tuple[str, str]:
    """Return (secret, prefix) for a new API token: ``tgapi-<8 hex>-<43 chars>``."""
    prefix = "tgapi-" + secrets.token_hex(4)
    return f"{prefix}-{secrets.token_urlsafe(32)}", prefix
