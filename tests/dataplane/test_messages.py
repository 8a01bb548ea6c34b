"""The Anthropic Messages API through the gateway, driven by the official SDK."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import pytest

BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
        "required": ["command"],
    },
}


def client(gateway, secret: str, prefix: str = "/anthropic") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url + prefix, api_key=secret, max_retries=0)


def expected_cost(model_prices: tuple[str, str, str, str], i: int, o: int, cw: int = 0, cr: int = 0) -> Decimal:
    pin, pout, pcw, pcr = (Decimal(p) / Decimal(1_000_000) for p in model_prices)
    return i * pin + o * pout + cw * pcw + cr * pcr


SONNET = ("3", "15", "3.75", "0.30")


def test_it_relays_a_message_and_logs_its_cost(gateway, world, ledger, anthropic_upstream):
    reply = client(gateway, world.secret).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert reply.content[0].text.startswith("Hello from the fake Anthropic API")
    seen = anthropic_upstream.messages_received()[-1]
    # The provider sees its own credential, never the virtual key.
    assert seen.headers["x-api-key"] == anthropic_upstream.api_key
    assert world.secret not in str(seen.headers)

    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 200
    assert row.stream is False
    assert row.model_requested == "claude-sonnet-4-6"
    assert (row.input_tokens, row.output_tokens) == (reply.usage.input_tokens, reply.usage.output_tokens)
    assert row.cost_usd == expected_cost(SONNET, row.input_tokens, row.output_tokens)
    assert row.unpriced is False
    assert (row.key_id, row.user_id, row.team_id, row.organization_id) == (
        world.key.id, world.charlie.id, world.payments.id, world.acme.id,
    )
    assert row.provider_id == world.provider.id
    assert row.latency_ms > 0 and row.overhead_ms >= 0


def test_it_streams_and_logs_usage_from_the_stream(gateway, world, ledger):
    with client(gateway, world.secret, prefix="").messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Say hello"}],
        extra_headers={"X-Claude-Code-Session-Id": "session-1234"},
    ) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert text == "Hello from the fake Anthropic API. How can I help?"
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.stream is True and row.status == 200
    assert row.input_tokens == final.usage.input_tokens
    assert row.output_tokens == final.usage.output_tokens
    assert (row.cache_write_tokens, row.cache_read_tokens) == (1000, 2000)
    assert row.cost_usd == expected_cost(SONNET, row.input_tokens, row.output_tokens, 1000, 2000)
    assert row.session_id == "session-1234"
    assert row.ttfb_ms is not None and 0 < row.ttfb_ms <= row.latency_ms


@pytest.mark.parametrize("stream", [False, True])
def test_it_carries_a_tool_use_round_trip(gateway, world, ledger, stream):
    sdk = client(gateway, world.secret)
    first_messages = [{"role": "user", "content": "Please [[bash: echo tollgate-ok]]"}]
    if stream:
        with sdk.messages.stream(model="claude-sonnet-4-6", max_tokens=300, tools=[BASH_TOOL], messages=first_messages) as s:
            first = s.get_final_message()
    else:
        first = sdk.messages.create(model="claude-sonnet-4-6", max_tokens=300, tools=[BASH_TOOL], messages=first_messages)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    # Streamed arguments arrive as input_json_delta fragments; the SDK must reassemble them whole.
    assert call.input["command"] == "echo tollgate-ok"

    second = sdk.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=300,
        tools=[BASH_TOOL],
        messages=first_messages
        + [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "tollgate-ok"}]},
        ],
    )
    assert second.content[0].text == "The tool said: tollgate-ok"
    rows = ledger(2, key_prefix=world.key.prefix)
    assert len(rows) == 2 and all(r.output_tokens > 0 and r.cost_usd > 0 for r in rows)


def test_it_passes_thinking_betas_cache_control_and_unknown_fields_untouched(gateway, world, anthropic_upstream):
    sdk = client(gateway, world.secret)
    with sdk.beta.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=2048,
        betas=["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"],
        thinking={"type": "enabled", "budget_tokens": 1024},
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}],
        extra_body={"tollgate_test_unknown_field": {"nested": [1, 2, 3]}},
        extra_query={"beta": "true"},
        extra_headers={"anthropic-version": "2099-01-01"},
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].signature == "sig-fake-0123456789"

    seen = anthropic_upstream.messages_received()[-1]
    assert seen.query == "beta=true"
    assert seen.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    assert seen.headers["anthropic-version"] == "2099-01-01"
    assert seen.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert seen.body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert seen.body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert seen.body["tollgate_test_unknown_field"] == {"nested": [1, 2, 3]}


def test_it_forwards_the_body_byte_for_byte(gateway, world, anthropic_upstream):
    import httpx

    raw = b'{"model":"claude-sonnet-4-6","max_tokens":10,   "messages":[{"role":"user","content":"x"}],"z_unknown":1.50}'
    response = httpx.post(
        f"{gateway.url}/v1/messages",
        content=raw,
        headers={"x-api-key": world.secret, "content-type": "application/json", "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200
    assert anthropic_upstream.messages_received()[-1].raw == raw


def test_it_counts_tokens_for_free(gateway, world, ledger):
    result = client(gateway, world.secret).messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "How many tokens is this?"}]
    )
    assert result.input_tokens > 0
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.endpoint == "count_tokens" and row.status == 200
    assert row.cost_usd == 0 and row.unpriced is False


def test_it_lists_only_the_models_a_key_may_use(gateway, world, publish):
    everything = [m.id for m in client(gateway, world.secret).models.list()]
    assert "claude-opus-4-5-20251101" in everything and len(everything) == 3

    _, sonnet_only = world.new_key("sonnet only", allowed_models=["claude-sonnet-*"])
    publish()
    assert [m.id for m in client(gateway, sonnet_only).models.list()] == ["claude-sonnet-4-5-20250929"]


def test_it_serves_an_unpriced_model_and_flags_it(gateway, world, ledger):
    reply = client(gateway, world.secret).messages.create(
        model="claude-from-the-future-9", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.unpriced is True
    assert row.input_tokens > 0 and row.cost_usd == 0
