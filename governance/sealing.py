"""Secrets at rest: provider credentials are stored as Fernet tokens.

MultiFernet decrypts with any configured key and encrypts with the first, so
rotating means prepending a new key to TOLLGATE_ENCRYPTION_KEYS and resealing.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in settings.ENCRYPTION_KEYS])


def seal(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet().encrypt(plaintext.encode()).decode()


def unseal(token: str) -> str:
    if not token:
        return ""
    return _fernet().decrypt(token.encode()).decode()
