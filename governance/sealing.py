"""Secrets at rest: provider credentials and other secrets are stored as Fernet tokens.

MultiFernet decrypts with any configured key and encrypts with the first, so
rotating means prepending a new key to TOLLGATE_ENCRYPTION_KEYS, running
``manage.py reseal`` (every sealed value re-encrypted under the new key), then
dropping the old key. Sealed values live in model fields named ``*_sealed``;
reseal finds them by that name.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

SEALED_SUFFIX = "_sealed"


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _current() -> MultiFernet:
    # Keyed by the configured keys, so a changed setting (tests, reseal) takes effect.
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


def seal(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _current().encrypt(plaintext.encode()).decode()


def unseal(token: str) -> str:
    if not token:
        return ""
    return _current().decrypt(token.encode()).decode()


def reseal(token: str) -> str:
    """The same secret encrypted under the first key (any configured key may open it)."""
    if not token:
        return ""
    return _current().rotate(token.encode()).decode()
