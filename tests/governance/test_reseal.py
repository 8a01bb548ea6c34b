"""``manage.py reseal`` moves every sealed secret to the first encryption key."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command

from audit.models import AuditEvent
from governance import services
from governance.models import McpServer, Provider, ProviderCredential
from governance.sealing import unseal

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def sealed_under_old(db, settings, django_user_model):
    settings.ENCRYPTION_KEYS = [OLD]
    alice = django_user_model.objects.create_superuser("alice", "alice@example.com", "alice-password-1")
    provider = services.provider_create(
        actor=alice, name="anthropic", kind="anthropic", base_url="https://api.anthropic.com", credential="sk-ant-1"
    )
    services.provider_credential_add(actor=alice, provider=provider, name="second", credential="sk-ant-2")
    services.provider_create(actor=alice, name="empty", kind="anthropic", credential="")
    services.mcp_server_create(
        actor=alice, name="tracker", transport="http", url="https://mcp.example.com/mcp",
        headers={"Authorization": "Bearer mcp-secret-1"},
    )
    return provider


def _tokens() -> list[str]:
    rows = [p.credential_sealed for p in Provider.objects.order_by("pk")]
    rows += [c.credential_sealed for c in ProviderCredential.objects.order_by("pk")]
    rows += [m.secrets_sealed for m in McpServer.objects.order_by("pk")]
    return rows


def test_it_reseals_every_secret_so_the_old_key_can_go(sealed_under_old, settings) -> None:
    before = _tokens()
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    out = io.StringIO()
    call_command("reseal", stdout=out)
    assert "Resealed 3 value(s)" in out.getvalue(), out.getvalue()
    after = _tokens()
    assert all(a != b for a, b in zip(after, before, strict=True) if b)
    assert after[1] == ""  # nothing to seal stays empty

    settings.ENCRYPTION_KEYS = [NEW]
    assert unseal(Provider.objects.get(name="anthropic").credential_sealed) == "sk-ant-1"
    assert unseal(ProviderCredential.objects.get().credential_sealed) == "sk-ant-2"
    events = AuditEvent.objects.filter(action="secret.reseal")
    assert sorted(e.target_type for e in events) == ["governance.mcpserver", "governance.provider", "governance.providercredential"]
    assert all(e.actor_label == "reseal" for e in events)


def test_it_covers_mcp_server_secrets(sealed_under_old, settings) -> None:
    assert McpServer.objects.get().secrets_sealed  # the headers are sealed
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    call_command("reseal", stdout=io.StringIO())
    settings.ENCRYPTION_KEYS = [NEW]
    assert "mcp-secret-1" in unseal(McpServer.objects.get().secrets_sealed)


def test_it_cannot_open_old_secrets_with_only_the_new_key_unless_resealed(sealed_under_old, settings) -> None:
    settings.ENCRYPTION_KEYS = [NEW]
    with pytest.raises(InvalidToken):
        unseal(Provider.objects.get(name="anthropic").credential_sealed)
