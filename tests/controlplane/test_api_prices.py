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


def test_it_seeds_the_prices_checked_on_2026_12_03(db) -> None:
    opus = ModelPrice.objects.get(model="claude-opus-5-5", provider=None)
    assert (opus.input_per_mtok, opus.output_per_mtok, opus.cache_write_per_mtok) == (Decimal(4), Decimal(20), Decimal(5))
    assert (opus.cache_write_1h_per_mtok, opus.cache_read_per_mtok, opus.web_search_per_1k) == (
        Decimal(8), Decimal("0.2"), Decimal(10),
    )
    sonnet = ModelPrice.objects.get(model="claude-sonnet-4-5", provider=None)
    assert sonnet.long_context_threshold == 200_000
    assert (sonnet.long_input_per_mtok, sonnet.long_output_per_mtok, sonnet.long_cache_write_1h_per_mtok) == (
        Decimal(6), Decimal("22.5"), Decimal(12),
    )


def test_it_sets_long_context_one_hour_and_web_search_rates(client_for, alice, committed_snapshot) -> None:
    body = PRICE | {
        "cache_write_per_mtok": "3.75",
        "cache_write_1h_per_mtok": "6",
        "web_search_per_1k": "10",
        "long_context_threshold": 200000,
        "long_input_per_mtok": "6",
        "long_output_per_mtok": "22.5",
    }
    response = client_for(alice).put("/api/v1/prices/acme-model-2/", body, format="json")
    assert response.status_code == 200, response.json()
    shown = response.json()
    assert (shown["cache_write_1h_per_mtok"], shown["long_context_threshold"], shown["provider"]) == ("6.000000", 200000, None)
    row = committed_snapshot()["prices"]["acme-model-2"]
    assert row[4:7] == ["6.000000", "10.000000", 200000]


def test_it_bills_one_hour_writes_at_the_five_minute_rate_unless_told(client_for, alice) -> None:
    client_for(alice).put("/api/v1/prices/acme-model-3/", PRICE | {"cache_write_per_mtok": "3.75"}, format="json")
    assert ModelPrice.objects.get(model="acme-model-3").cache_write_1h_per_mtok == Decimal("3.75")


def test_it_refuses_a_threshold_without_long_context_rates(client_for, alice) -> None:
    response = client_for(alice).put("/api/v1/prices/x/", PRICE | {"long_context_threshold": 1000}, format="json")
    assert response.status_code == 400
    assert "long_context_threshold" in response.json()


def test_it_keeps_a_providers_own_price_beside_the_list_price(client_for, alice, committed_snapshot) -> None:
    from governance import services

    vertex = services.provider_create(
        actor=alice, name="vertex-eu", kind="anthropic", base_url="https://eu.example", credential="k",
        price_multiplier=Decimal("1.1"),
    )
    client = client_for(alice)
    assert client.put("/api/v1/prices/acme-model-4/", PRICE, format="json").status_code == 200
    own = client.put(
        "/api/v1/prices/acme-model-4/", PRICE | {"input_per_mtok": "3.3", "provider": vertex.pk}, format="json"
    )
    assert own.status_code == 200, own.json()
    assert ModelPrice.objects.filter(model="acme-model-4").count() == 2
    doc = committed_snapshot()
    assert doc["prices"]["acme-model-4"][0] == "3.000000"
    assert doc["provider_prices"][str(vertex.pk)]["acme-model-4"][0] == "3.300000"
    assert next(p for p in doc["providers"] if p["id"] == vertex.pk)["price_multiplier"] == "1.1000"
    assert client.delete(f"/api/v1/prices/acme-model-4/?provider={vertex.pk}").status_code == 204
    assert list(ModelPrice.objects.filter(model="acme-model-4").values_list("provider", flat=True)) == [None]
    assert AuditEvent.objects.filter(action="price.delete").count() == 1
