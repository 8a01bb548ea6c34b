from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from governance.models import ModelPrice

PRICE = {"input_per_mtok": "3", "output_per_mtok": "15", "cache_read_per_mtok": "0.3"}


def test_it_lists_prices_to_any_signed_in_user(client_for, dave) -> None:
    response = client_for(dave).get("/api/v1/prices/?limit=500")
    assert response.status_code == 200
    # The shipped defaults are seeded by a migration.
    assert response.json()["count"] == ModelPrice.objects.count() > 0


def test_it_lets_a_platform_admin_set_a_price(client_for, alice, committed_snapshot) -> None:
    response = client_for(alice).put("/api/v1/prices/acme-model-1.5/", PRICE, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["output_per_mtok"] == "15.000000"
    price = ModelPrice.objects.get(model="acme-model-1.5")
    assert (price.input_per_mtok, price.cache_write_per_mtok) == (Decimal(3), Decimal(0))
    event = AuditEvent.objects.get(action="price.set")
    assert (event.actor, event.before) == (alice, None)
    assert committed_snapshot()["prices"]["acme-model-1.5"][:2] == ["3.000000", "15.000000"]


def test_it_takes_model_names_with_slashes(client_for, alice) -> None:
    response = client_for(alice).put("/api/v1/prices/openai/gpt-4o/", PRICE, format="json")
    assert response.status_code == 200
    assert ModelPrice.objects.filter(model="openai/gpt-4o").exists()


def test_it_rejects_a_negative_price(client_for, alice) -> None:
    response = client_for(alice).put(
        "/api/v1/prices/x/", PRICE | {"input_per_mtok": "-1"}, format="json"
    )
    assert response.status_code == 400
    assert not ModelPrice.objects.filter(model="x").exists()


@pytest.mark.parametrize("persona", ["bob", "charlie"])
def test_it_keeps_price_changes_to_platform_admins(client_for, persona, request) -> None:
    client = client_for(request.getfixturevalue(persona))
    assert client.put("/api/v1/prices/x/", PRICE, format="json").status_code == 403
    assert not AuditEvent.objects.filter(action="price.set").exists()


def test_it_lists_prices_in_constant_queries(client_for, dave, django_assert_num_queries) -> None:
    client = client_for(dave)
    # token, count, page
    with django_assert_num_queries(3):
        client.get("/api/v1/prices/?limit=500")
