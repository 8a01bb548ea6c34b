"""Personas for the audit tests: alice is a platform admin, acme the organization she changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from governance import services
from governance.models import Organization


@pytest.fixture
def alice(db: None) -> Any:
    return get_user_model().objects.create_superuser("alice", "alice@example.com", "alice-password-1")


@pytest.fixture
def acme(alice: Any) -> Organization:
    return services.organization_create(actor=alice, name="Acme", slug="acme")


@pytest.fixture
def history(alice: Any, acme: Organization) -> list[Any]:
    """Six events: the organization, two teams, a key, its disabling and re-enabling."""
    from audit.models import AuditEvent

    services.team_create(actor=alice, organization=acme, name="Payments")
    services.team_create(actor=alice, organization=acme, name="Search")
    key, _ = services.key_create(actor=alice, organization=acme, name="ci")
    services.key_disable(actor=alice, key=key)
    services.key_enable(actor=alice, key=key)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    return events
