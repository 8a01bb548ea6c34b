"""Ed25519 keys for checkpoints: the private one signs, the public ones verify.

``TOLLGATE_AUDIT_SIGNING_KEY`` holds the private key as base64 of its 32 raw
bytes or as PEM (PKCS#8); the embedded default makes one and keeps it in the
state directory. A key that signed earlier checkpoints stays trusted after a
rotation when its public half is listed in ``TOLLGATE_AUDIT_TRUSTED_KEYS``
(base64 of 32 raw bytes, comma-separated).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if ("-" in text or "_" in text) else None)


def private_key_parse(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ImproperlyConfigured("TOLLGATE_AUDIT_SIGNING_KEY is a PEM key but not an Ed25519 one")
        return key
    try:
        raw = _b64decode(text)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured(
            "TOLLGATE_AUDIT_SIGNING_KEY must be an Ed25519 private key: PEM, or base64 of 32 bytes "
            "(make one with: python -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())')"
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def public_key_parse(text: str) -> Ed25519PublicKey:
    raw = _b64decode(text)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def signing_key() -> Ed25519PrivateKey | None:
    text = settings.AUDIT_SIGNING_KEY
    return private_key_parse(text) if text else None


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """Public keys whose checkpoints verify, by their base64 text."""
    keys: dict[str, Ed25519PublicKey] = {}
    own = signing_key()
    if own is not None:
        keys[public_key_text(own.public_key())] = own.public_key()
    for text in settings.AUDIT_TRUSTED_KEYS:
        keys[public_key_text(public_key_parse(text))] = public_key_parse(text)
    return keys


def signature_valid(public: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        public.verify(_b64decode(signature_b64), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
