"""Cost that matches the invoice: each usage field a provider reports, priced
at the shipped default rates (migration 0011) to the nano-dollar, and kept in
the request log."""

from __future__ import annotations

from decimal import Decimal

import httpx
import orjson
import pytest

from governance import services

MTOK = Decimal(1_000_000)


def usd_per_mtok(value: str) -> Decimal:
    return Decimal(value) / MTOK


def send(gateway, secret: str, model: str = "claude-sonnet-4-5", stream: bool = False) -> httpx.Response:
    body = {"model": model, "max_tokens": 1000, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(
        f"{gateway.url}/anthropic/v1/messages",
        content=orjson.dumps(body),
        headers={"x-api-key": secret, "content-type": "application/json"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return response


def plain(**usage: object) -> dict[str, object]:
    return {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0} | usage


@pytest.mark.parametrize("stream", [False, True])
def test_it_bills_input_and_output_tokens(gateway, world, ledger, anthropic_upstream, stream):
    anthropic_upstream.usage_next(plain(input_tokens=1234, output_tokens=567))
    send(gateway, world.secret, stream=stream)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    # Sonnet 4.5: $3 in, $15 out per million.
    assert row.cost_usd == Decimal("0.012207") == 1234 * usd_per_mtok("3") + 567 * usd_per_mtok("15")
    assert (row.input_tokens, row.output_tokens, row.long_context) == (1234, 567, False)


@pytest.mark.parametrize("stream", [False, True])
def test_it_bills_five_minute_and_one_hour_cache_writes_at_their_own_rates(gateway, world, ledger, anthropic_upstream, stream):
    anthropic_upstream.usage_next(
        plain(
            input_tokens=10,
            output_tokens=20,
            cache_creation_input_tokens=4000,
            cache_creation={"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 3000},
        )
    )
    send(gateway, world.secret, stream=stream)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    # $3.75 per million for 5 minutes, $6 for an hour.
    expected = 10 * usd_per_mtok("3") + 20 * usd_per_mtok("15") + 1000 * usd_per_mtok("3.75") + 3000 * usd_per_mtok("6")
    assert row.cost_usd == expected == Decimal("0.02208")
    assert (row.cache_write_tokens, row.cache_write_1h_tokens) == (4000, 3000)


def test_it_bills_a_write_reported_only_by_its_split(gateway, world, ledger, anthropic_upstream):
    usage = plain(input_tokens=0, output_tokens=1, cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 5000})
    usage.pop("cache_creation_input_tokens")
    anthropic_upstream.usage_next(usage)
    send(gateway, world.secret)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.cost_usd == Decimal("0.030015")
    assert (row.cache_write_tokens, row.cache_write_1h_tokens) == (5000, 5000)


def test_it_bills_cache_reads(gateway, world, ledger, anthropic_upstream):
    anthropic_upstream.usage_next(plain(input_tokens=3, output_tokens=100, cache_read_input_tokens=87_654))
    send(gateway, world.secret, stream=True)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.cost_usd == 3 * usd_per_mtok("3") + 100 * usd_per_mtok("15") + 87_654 * usd_per_mtok("0.30")
    assert row.cost_usd == Decimal("0.0278052") and row.cache_read_tokens == 87_654


@pytest.mark.parametrize("stream", [False, True])
def test_it_bills_web_searches_per_call(gateway, world, ledger, anthropic_upstream, stream):
    anthropic_upstream.usage_next(plain(input_tokens=2000, output_tokens=300, server_tool_use={"web_search_requests": 3}))
    send(gateway, world.secret, stream=stream)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    # $10 per 1,000 searches.
    assert row.cost_usd == 2000 * usd_per_mtok("3") + 300 * usd_per_mtok("15") + 3 * Decimal("0.01") == Decimal("0.0405")
    assert row.web_search_requests == 3


def test_it_bills_a_prompt_over_the_threshold_at_the_long_context_tier(gateway, world, ledger, anthropic_upstream):
    # 150k input + 60k cache reads + 1k written: 211k prompt tokens, over Sonnet 4.5's 200k.
    anthropic_upstream.usage_next(
        plain(
            input_tokens=150_000,
            output_tokens=1000,
            cache_read_input_tokens=60_000,
            cache_creation_input_tokens=1000,
            cache_creation={"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600},
        )
    )
    send(gateway, world.secret, stream=True)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    expected = (
        150_000 * usd_per_mtok("6")
        + 1000 * usd_per_mtok("22.50")
        + 60_000 * usd_per_mtok("0.60")
        + 400 * usd_per_mtok("7.50")
        + 600 * usd_per_mtok("12")
    )
    assert row.cost_usd == expected == Decimal("0.9687")
    assert row.long_context is True


def test_it_keeps_a_prompt_of_exactly_the_threshold_at_the_standard_tier(gateway, world, ledger, anthropic_upstream):
    anthropic_upstream.usage_next(plain(input_tokens=140_000, output_tokens=1000, cache_read_input_tokens=60_000))
    send(gateway, world.secret)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.cost_usd == 140_000 * usd_per_mtok("3") + 1000 * usd_per_mtok("15") + 60_000 * usd_per_mtok("0.30")
    assert row.long_context is False


def test_it_prices_haiku_5_5_by_prompt_length(gateway, world, ledger, anthropic_upstream):
    anthropic_upstream.usage_next(plain(input_tokens=100_000, output_tokens=10))
    anthropic_upstream.usage_next(plain(input_tokens=100_001, output_tokens=10))
    send(gateway, world.secret, model="claude-haiku-5-5")
    send(gateway, world.secret, model="claude-haiku-5-5")
    short, long = ledger(2, key_prefix=world.key.prefix)
    assert short.cost_usd == 100_000 * usd_per_mtok("0.10") + 10 * usd_per_mtok("0.50") == Decimal("0.010005")
    assert long.cost_usd == 100_001 * usd_per_mtok("0.50") + 10 * usd_per_mtok("2.50") == Decimal("0.0500255")


def test_it_prices_opus_5_5_at_its_published_rates(gateway, world, ledger, anthropic_upstream):
    anthropic_upstream.usage_next(
        plain(
            input_tokens=100,
            output_tokens=1000,
            cache_read_input_tokens=50_000,
            cache_creation_input_tokens=2000,
            cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 2000},
        )
    )
    send(gateway, world.secret, model="claude-opus-5-5", stream=True)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    # $4 in, $20 out, $8 for an hour's write, $0.20 to read.
    assert row.cost_usd == Decimal("0.0464")


def _regional(world, **kwargs):
    provider = services.provider_create(
        actor=world.alice, name="anthropic-regional", kind="anthropic", base_url=world.provider.base_url,
        credential="sk-ant-fake-provider-key", **kwargs,
    )
    services.route_set(actor=world.alice, model_pattern="claude-sonnet-4-5*", targets=[{"provider": provider}])
    return provider


def test_it_applies_a_provider_multiplier_to_list_prices(gateway, world, ledger, anthropic_upstream, publish):
    provider = _regional(world, price_multiplier=Decimal("1.1"))
    publish()
    anthropic_upstream.usage_next(
        plain(
            input_tokens=1000,
            output_tokens=1000,
            cache_read_input_tokens=10_000,
            cache_creation_input_tokens=1000,
            cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000},
            server_tool_use={"web_search_requests": 1},
        )
    )
    send(gateway, world.secret, model="claude-sonnet-4-5-20250929")
    (row,) = ledger(1, key_prefix=world.key.prefix)
    listed = Decimal("0.003") + Decimal("0.015") + Decimal("0.003") + Decimal("0.006") + Decimal("0.01")
    assert row.provider_id == provider.id
    assert row.cost_usd == listed * Decimal("1.1") == Decimal("0.0407")


def test_it_prefers_a_providers_own_price_for_a_model(gateway, world, ledger, anthropic_upstream, publish):
    provider = _regional(world, price_multiplier=Decimal("1.1"))
    services.price_set(
        actor=world.alice, model="claude-sonnet-4-5", provider=provider,
        input_per_mtok=Decimal("3.30"), output_per_mtok=Decimal("16.50"), cache_read_per_mtok=Decimal("0.33"),
    )
    publish()
    anthropic_upstream.usage_next(plain(input_tokens=1000, output_tokens=1000, cache_read_input_tokens=10_000))
    anthropic_upstream.usage_next(plain(input_tokens=1000, output_tokens=1000))
    send(gateway, world.secret, model="claude-sonnet-4-5")
    # Haiku is not routed to the regional provider: list price.
    send(gateway, world.secret, model="claude-haiku-4-5")
    sonnet, haiku = ledger(2, key_prefix=world.key.prefix)
    assert sonnet.cost_usd == Decimal("0.0033") + Decimal("0.0165") + Decimal("0.0033")
    assert haiku.provider_id == world.provider.id and haiku.cost_usd == Decimal("0.001") + Decimal("0.005")


def test_it_reserves_at_the_rates_of_the_provider_that_will_bill(gateway, world, ledger, publish):
    """A budget that covers the list-price reservation but not the regional one refuses:
    the reservation is priced as the routed provider bills, not at list price."""
    from dataplane.limits import reservation_nano
    from dataplane.snapshot import Price

    _regional(world, price_multiplier=Decimal("2"))
    body = orjson.dumps({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})
    listed = Decimal(reservation_nano(len(body), 100, Price(*(Decimal(p) / 1_000_000 for p in ("3", "15", "3.75", "0.30"))))) / 10**9
    services.budget_set(actor=world.alice, level="key", organization=world.acme, key=world.key, amount_usd=listed * Decimal("1.5"), period="monthly")
    publish()
    response = httpx.post(f"{gateway.url}/v1/messages", content=body, timeout=10,
                          headers={"x-api-key": world.secret, "content-type": "application/json"})
    assert response.status_code == 402, response.text
    assert "less than this request may cost" in response.json()["error"]["message"]
