"""Governance services: the only writers, each leaving its audit row."""

from __future__ import annotations

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import AuditEvent
from dataplane.snapshot import FileSnapshotStore, RedisSnapshotStore, parse, store_from_settings
from governance import services
from governance.keys import key_digest
from governance.models import KeyStatus, Provider, VirtualKey
from governance.sealing import unseal
from governance.snapshot import snapshot_build, snapshot_publish
from governance.tasks import snapshot_republish


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_superuser("alice", "alice@example.com", "alice-password-1")


@pytest.fixture
def acme(alice):
    return services.organization_create(actor=alice, name="Acme")


def test_it_stores_only_a_digest_of_a_new_key(alice, acme):
    key, secret = services.key_create(actor=alice, organization=acme, name="ci")
    assert secret.startswith(key.prefix + "-") and len(secret) > 40
    stored = VirtualKey.objects.get(pk=key.pk)
    assert stored.digest == key_digest(secret)
    assert secret not in orjson.dumps(list(VirtualKey.objects.values())).decode()
    event = AuditEvent.objects.get(action="key.create")
    assert event.actor == alice and event.target_id == str(key.pk)
    assert secret not in orjson.dumps(event.after).decode()


def test_it_seals_provider_credentials(alice):
    provider = services.provider_create(
        actor=alice, name="anthropic", kind="anthropic", base_url="https://api.anthropic.com/", credential="sk-ant-secret-1"
    )
    stored = Provider.objects.get(pk=provider.pk)
    assert "sk-ant-secret-1" not in stored.credential_sealed
    assert unseal(stored.credential_sealed) == "sk-ant-secret-1"
    assert stored.base_url == "https://api.anthropic.com"
    event = AuditEvent.objects.get(action="provider.create")
    assert "sk-ant" not in orjson.dumps([event.before, event.after]).decode()


def test_it_audits_disable_with_before_and_after(alice, acme):
    key, _ = services.key_create(actor=alice, organization=acme, name="ci")
    services.key_disable(actor=alice, key=key)
    key.refresh_from_db()
    assert key.status == KeyStatus.DISABLED
    event = AuditEvent.objects.get(action="key.disable")
    assert event.before["status"] == "active" and event.after["status"] == "disabled"
    assert event.actor_label == "alice"


def test_it_refuses_a_key_for_a_user_outside_the_organization(alice, acme, django_user_model):
    stranger = django_user_model.objects.create_user("mallory")
    with pytest.raises(ValidationError):
        services.key_create(actor=alice, organization=acme, user=stranger, name="nope")
    assert not AuditEvent.objects.filter(action="key.create").exists()


def test_it_publishes_a_snapshot_without_secrets(alice, acme):
    key, secret = services.key_create(actor=alice, organization=acme, name="ci", allowed_models=["claude-*"])
    services.provider_create(
        actor=alice, name="anthropic", kind="anthropic", base_url="https://api.anthropic.com", credential="sk-ant-secret-2"
    )
    # However many changes a transaction makes, it publishes once, on commit.
    pending = [f for _, f, _ in transaction.get_connection().run_on_commit if f is snapshot_publish]
    assert len(pending) == 1
    doc = snapshot_build()
    raw = orjson.dumps(doc).decode()
    assert secret not in raw and "sk-ant-secret-2" not in raw
    parsed = parse(doc | {"version": 1}, unseal)
    entry = parsed.keys[key_digest(secret)]
    assert entry.allows("claude-sonnet-4-6") and not entry.allows("gpt-5")
    assert parsed.anthropic is not None and parsed.anthropic.credential == "sk-ant-secret-2"
    assert parsed.price_for("claude-sonnet-4-6-20260101") is parsed.prices["claude-sonnet-4-6"]


def test_it_republishes_with_a_rising_version(alice, acme):
    first = snapshot_publish()
    assert snapshot_republish() == first + 1
    store = store_from_settings(__import__("django.conf").conf.settings)
    assert isinstance(store, RedisSnapshotStore | FileSnapshotStore)


def test_it_bootstraps_the_first_admin_once(db):
    created = services.admin_bootstrap()
    assert created is not None
    user, password = created
    assert user.is_superuser and user.check_password(password)
    assert services.admin_bootstrap() is None
    assert AuditEvent.objects.get(action="user.bootstrap_admin").actor_label == "system"
