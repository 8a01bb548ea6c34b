"""Providers, routes and prices: credentials write-only, the route explainer answers as the
data plane routes, prices edit without losing their other rates."""

from __future__ import annotations

from decimal import Decimal

from django.test import Client

from governance import services
from governance.models import ModelPrice, Provider
from governance.sealing import unseal


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _setup(acme, alice, charlie):
    payments = services.team_create(actor=None, organization=acme, name="Payments")
    services.membership_set(
        actor=None, user=charlie, organization=acme, role="developer", team=payments
    )
    direct = services.provider_create(
        actor=alice,
        name="anthropic",
        kind="anthropic",
        base_url="https://api.anthropic.com",
        credential="sk-ant-secret-1",
    )
    bedrock = services.provider_create(
        actor=alice,
        name="bedrock",
        kind="bedrock",
        base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
        credential='{"access_key_id": "AKIA", "secret_access_key": "x"}',
    )
    services.route_set(
        actor=alice, team=payments, organization=acme, model_pattern="claude-sonnet-*",
        targets=[{"provider": bedrock, "model": "us.anthropic.claude-sonnet-4-5-v1:0", "weight": 3, "tier": 0},
                 {"provider": direct, "model": "", "weight": 1, "tier": 0},
                 {"provider": direct, "model": "claude-haiku-4-5", "weight": 1, "tier": 1}],
    )  # fmt: skip
    key, _ = services.key_create(
        actor=None, organization=acme, name="charlie laptop", user=charlie, team=payments
    )
    narrow, _ = services.key_create(
        actor=None,
        organization=acme,
        name="haiku only",
        user=charlie,
        team=payments,
        allowed_models=["claude-haiku-*"],
    )
    return key, narrow


def test_it_explains_where_a_keys_request_goes(acme, alice, charlie) -> None:
    key, narrow = _setup(acme, alice, charlie)
    browser = _browser(alice)
    page = browser.get(
        "/providers/", {"key": key.pk, "model": "claude-sonnet-4-5"}
    ).content.decode()
    explained = page[
        page.index('class="explained"') : page.index(
            '<section class="card">', page.index('class="explained"')
        )
    ]
    assert "team Payments" in explained
    assert (
        '<strong>bedrock</strong> as <span class="mono">us.anthropic.claude-sonnet-4-5-v1:0</span> (75 % of the traffic)'
        in explained
    )
    assert (
        '<strong>anthropic</strong> as <span class="mono">claude-sonnet-4-5</span> (25 % of the traffic)'
        in explained
    )
    assert (
        'if those fail: <strong>anthropic</strong> as <span class="mono">claude-haiku-4-5</span>'
        in explained
    )
    other = browser.get("/providers/", {"key": key.pk, "model": "claude-opus-4-1"}).content.decode()
    assert "no route matches: the first Anthropic provider" in other
    refused = browser.get(
        "/providers/", {"key": narrow.pk, "model": "claude-sonnet-4-5"}
    ).content.decode()
    assert "is <strong>refused</strong>: the model is outside the key&#x27;s allowlist" in refused


def test_it_never_shows_a_credential_and_replaces_it(acme, alice, charlie) -> None:
    _setup(acme, alice, charlie)
    browser = _browser(alice)
    assert "sk-ant-secret-1" not in browser.get("/providers/").content.decode()
    provider = Provider.objects.get(name="anthropic")
    assert (
        browser.post(
            f"/providers/{provider.pk}/credential/", {"credential": "sk-ant-secret-2"}
        ).status_code
        == 302
    )
    provider.refresh_from_db()
    assert unseal(provider.credential_sealed) == "sk-ant-secret-2"
    assert "sk-ant-secret-2" not in browser.get("/providers/").content.decode()


def test_it_edits_a_price_and_keeps_its_other_rates(alice) -> None:
    price = services.price_set(
        actor=alice, model="claude-test-1", input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15"),
        long_context_threshold=200_000, long_input_per_mtok=Decimal("6"),
    )  # fmt: skip
    form = {
        "input_per_mtok": "2.5",
        "output_per_mtok": "12",
        "cache_write_per_mtok": "3.125",
        "cache_read_per_mtok": "0.25",
    }
    assert _browser(alice).post(f"/providers/prices/{price.pk}/", form).status_code == 302
    price = ModelPrice.objects.get(pk=price.pk)
    assert (price.input_per_mtok, price.output_per_mtok, price.cache_read_per_mtok) == (
        Decimal("2.5"),
        Decimal("12"),
        Decimal("0.25"),
    )
    assert (price.long_context_threshold, price.long_input_per_mtok) == (200_000, Decimal("6"))


def test_it_is_for_platform_admins_only(acme, alice, bob, charlie) -> None:
    _setup(acme, alice, charlie)
    price = ModelPrice.objects.first()
    browser = _browser(bob)
    assert browser.get("/providers/").status_code == 403
    assert (
        browser.post(f"/providers/prices/{price.pk}/", {"input_per_mtok": "0"}).status_code == 403
    )
    provider = Provider.objects.get(name="anthropic")
    assert (
        browser.post(f"/providers/{provider.pk}/credential/", {"credential": "mine"}).status_code
        == 403
    )
