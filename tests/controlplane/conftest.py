"""Personas and API clients for the control-plane tests.

alice is a platform admin (superuser); in the organization acme, bob is an
admin, charlie a developer and dave a viewer; eve is an admin of globex and
knows nothing of acme.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.test import APIClient

from dataplane.snapshot import RedisSnapshotStore, store_from_settings
from governance import services
from governance.models import Organization, Role

User = get_user_model()
PASSWORD = "a long test password"


@pytest.fixture(autouse=True)
def _state_in_tmp(settings: Any, tmp_path: Path) -> None:
    # SNAPSHOT_FILE and SPOOL_DIR are derived from DATA_DIR at import time, so each is moved too.
    settings.DATA_DIR = tmp_path
    settings.SNAPSHOT_FILE = tmp_path / "snapshot.json"
    settings.SPOOL_DIR = tmp_path / "spool"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Sign-in throttling counts in the cache: each test gets its own keys (and,
    # on Redis, this run's prefix, so the shared server is never cleared).
    settings.CACHES = {
        "default": {
            **django_settings.CACHES["default"],
            "KEY_PREFIX": f"{django_settings.REDIS_PREFIX}cache-{uuid.uuid4().hex[:8]}",
        }
    }


@pytest.fixture
def acme(db: None) -> Organization:
    return services.organization_create(actor=None, name="Acme", slug="acme")


@pytest.fixture
def globex(db: None) -> Organization:
    return services.organization_create(actor=None, name="Globex", slug="globex")


@pytest.fixture
def alice(db: None) -> Any:
    return User.objects.create_superuser("alice", "alice@example.com", PASSWORD)


def _member(org: Organization, username: str, role: str) -> Any:
    return services.user_create(
        actor=None,
        username=username,
        email=f"{username}@example.com",
        password=PASSWORD,
        organization=org,
        role=role,
    )


@pytest.fixture
def bob(acme: Organization) -> Any:
    return _member(acme, "bob", Role.ADMIN)


@pytest.fixture
def charlie(acme: Organization) -> Any:
    return _member(acme, "charlie", Role.DEVELOPER)


@pytest.fixture
def dave(acme: Organization) -> Any:
    return _member(acme, "dave", Role.VIEWER)


@pytest.fixture
def eve(globex: Organization) -> Any:
    return _member(globex, "eve", Role.ADMIN)


@pytest.fixture
def client_for(db: None) -> Callable[[Any], APIClient]:
    """An API client that authenticates as ``user`` with a real token, as automation does."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        token, secret = services.api_token_issue(actor=user)
        # A token in use: its last-use stamp (written at most once a minute) is
        # fresh, so the query counts of list endpoints stay the same.
        services.api_token_used(token=token)
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
        return client

    return make


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def committed_snapshot(db: None) -> Callable[[], dict[str, Any]]:
    """Run what committing the test's transaction would run, then read the published snapshot.

    Persona fixtures already leave a publish pending, and config_changed()
    queues one publish per transaction, so capturing only the callbacks added
    by the code under test would see none.
    """

    def run() -> dict[str, Any]:
        for _, callback, _ in list(transaction.get_connection().run_on_commit):
            callback()
        store = store_from_settings(django_settings)
        if isinstance(store, RedisSnapshotStore):
            import redis

            client = redis.Redis.from_url(store.url)
            try:
                raw = client.get(store.doc_key)
            finally:
                client.close()
            assert raw is not None
            return orjson.loads(raw)
        doc = store.read()
        assert doc is not None
        return doc

    return run
