"""Password sign-in, throttled per account and per client address, failures audited.

Every password check (the console sign-in, which the admin uses too, and
``/api/v1/auth/token/``) goes through ``authenticate()``, hence through
``ThrottledModelBackend``: once an account or an address has failed ``SIGNIN_MAX_FAILURES_*`` times within
``SIGNIN_WINDOW_SECONDS``, further attempts are refused without checking the
password, until the window ends. Counters live in the Django cache (Redis when
REDIS_URL is set, so every control-plane process shares them).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest

from audit.services import audit_record

User = get_user_model()


def _client_address(request: HttpRequest | None) -> str:
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or "unknown"


def _counters(request: HttpRequest | None, username: str) -> list[tuple[str, int]]:
    # Hashed: the cache never holds usernames or addresses in the clear.
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    address = hashlib.sha256(_client_address(request).encode()).hexdigest()[:32]
    return [
        (f"signin:account:{account}", settings.SIGNIN_MAX_FAILURES_PER_ACCOUNT),
        (f"signin:address:{address}", settings.SIGNIN_MAX_FAILURES_PER_ADDRESS),
    ]


def signin_retry_after(*, request: HttpRequest | None, username: str) -> int:
    """Seconds until ``username`` may try a password again from here; 0 if now."""
    now = time.time()
    wait = 0.0
    for key, limit in _counters(request, username):
        if (cache.get(key) or 0) >= limit:
            wait = max(wait, float(cache.get(f"{key}:until") or now + 1) - now)
    return max(0, int(wait + 0.999))


def signin_refusal(*, request: HttpRequest | None, username: str) -> int:
    """As signin_retry_after, and audit the refusal (once per window, so a flood
    cannot flood the audit log). For whoever checks before asking for a password."""
    wait = signin_retry_after(request=request, username=username)
    if wait and cache.add(f"{_counters(request, username)[0][0]}:audited", 1, settings.SIGNIN_WINDOW_SECONDS):
        _audit(username=username, user=User.objects.filter(username=username).first(), throttled=True)
    return wait


def _failure_count(key: str) -> None:
    window = settings.SIGNIN_WINDOW_SECONDS
    # The window starts at the first failure; add() is a no-op when it runs already.
    cache.add(f"{key}:until", time.time() + window, window)
    cache.add(key, 0, window)
    try:
        cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, window)


def _audit(*, username: str, user: Any, throttled: bool) -> None:
    with transaction.atomic():
        audit_record(
            actor="anonymous",
            action="auth.signin_throttled" if throttled else "auth.signin_failed",
            # An unknown name still gets a row, labelled with the name tried.
            target=user if user is not None else User(username=username[:150]),
            after={"username": username[:150], "known_user": user is not None},
        )


def signin_failed(*, request: HttpRequest | None, username: str) -> None:
    for key, _ in _counters(request, username):
        _failure_count(key)
    _audit(username=username, user=User.objects.filter(username=username).first(), throttled=False)


def signin_succeeded(*, request: HttpRequest | None, username: str) -> None:
    # Only the account's count resets: an address guessing many accounts stays counted.
    account_key = _counters(request, username)[0][0]
    cache.delete_many([account_key, f"{account_key}:until"])


class ThrottledModelBackend(ModelBackend):
    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        if signin_refusal(request=request, username=username):
            # PermissionDenied stops authenticate() trying any other backend.
            raise PermissionDenied("Too many failed sign-ins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            signin_failed(request=request, username=username)
        else:
            signin_succeeded(request=request, username=username)
        return user
