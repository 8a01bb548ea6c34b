"""OpenAI Chat Completions through the gateway, driven by the official openai SDK."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from governance import services

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "Bash",
            "description": "Run a shell command",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
        },
    }
]


def client(gateway, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=secret, max_retries=0)


@pytest.fixture
def compat(world, openai_upstream):
    return services.provider_create(
        actor=world.alice, name="compat", kind="openai_compatible", base_url=openai_upstream.url + "/v1",
        credential=openai_upstream.api_key,
    )


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-6", "compat/gpt-5"])
def test_it_streams_chat_completions_with_tool_calls(gateway, world, compat, publish, ledger, model, anthropic_upstream, openai_upstream):
    publish()
    sdk = client(gateway, world.secret)
    messages = [{"role": "user", "content": "Please [[bash: echo via-openai]]"}]
    stream = sdk.chat.completions.create(model=model, messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True})
    calls: dict[int, dict] = {}
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] = call.id or entry["id"]
                if call.function:
                    entry["name"] = call.function.name or entry["name"]
                    entry["arguments"] += call.function.arguments or ""
    assert finish == "tool_calls"
    (call,) = calls.values()
    assert call["name"] == "Bash" and json.loads(call["arguments"])["command"] == "echo via-openai"
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0

    reply = sdk.chat.completions.create(
        model=model,
        tools=TOOLS,
        messages=messages
        + [
            {"role": "assistant", "tool_calls": [{"id": call["id"], "type": "function", "function": {"name": "Bash", "arguments": call["arguments"]}}]},
            {"role": "tool", "tool_call_id": call["id"], "content": "via-openai"},
        ],
    )
    assert reply.choices[0].message.content == "The tool said: via-openai"
    assert reply.choices[0].finish_reason == "stop"
    rows = ledger(2, key_prefix=world.key.prefix)
    assert [r.endpoint for r in rows] == ["chat_completions"] * 2
    bare = model.split("/", 1)[1]
    assert all(r.model_served == bare and r.status == 200 and r.cost_usd > 0 and r.output_tokens > 0 for r in rows)
    upstream = anthropic_upstream.messages_received() if model.startswith("anthropic/") else openai_upstream.received
    assert len(upstream) == 2 and upstream[0].body["model"] == bare


def test_it_leaves_out_the_usage_chunk_nobody_asked_for(gateway, world, compat, publish):
    publish()
    chunks = list(client(gateway, world.secret).chat.completions.create(
        model="compat/gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True,
    ))
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello from the fake OpenAI API")


def test_it_answers_errors_in_openai_shape(gateway, world, publish):
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        client(gateway, "tg-00000000-nope").chat.completions.create(model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}])
    assert unauthorized.value.status_code == 401
    assert unauthorized.value.body["type"] == "authentication_error"
    assert "does not recognise" in unauthorized.value.body["message"]

    services.budget_set(actor=world.alice, level="key", organization=world.acme, key=world.key, amount_usd=Decimal("0.000001"), period="daily")
    publish()
    with pytest.raises(openai.APIStatusError) as refused:
        client(gateway, world.secret).chat.completions.create(model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}])
    assert refused.value.status_code == 402
    assert refused.value.body["type"] == "insufficient_quota"
    assert refused.value.body["message"].startswith("This key's daily budget")

    with pytest.raises(openai.BadRequestError) as bad:
        client(gateway, world.secret).chat.completions.create(model="anthropic/claude-sonnet-4-6", messages=[])
    assert "messages" in bad.value.body["message"]


def test_it_lists_provider_model_names_the_key_may_use(gateway, world, compat, publish):
    from governance import services as svc

    svc.allowed_models_set(actor=world.alice, target=world.key, patterns=["claude-sonnet-*", "gpt-5*"])
    publish()
    ids = [m.id for m in client(gateway, world.secret).models.list()]
    assert "anthropic/claude-sonnet-4-6" in ids and "compat/gpt-5" in ids
    assert not any("opus" in i or "gemini" in i for i in ids)


def test_it_cuts_a_stream_past_the_budget_with_an_openai_error(gateway, world, publish, ledger):
    from tests.dataplane.test_budgets import SONNET

    amount = (4096 + 3072) * SONNET.output + Decimal("0.0005")
    services.budget_set(actor=world.alice, level="key", organization=world.acme, key=world.key, amount_usd=amount, period="monthly")
    publish()
    stream = client(gateway, world.secret).chat.completions.create(
        model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "[[words: 30000]]"}], stream=True,
        max_tokens=64000,
    )
    text = []
    with pytest.raises(openai.APIError) as cut:
        for chunk in stream:
            text.extend(c.delta.content or "" for c in chunk.choices)
    assert "This key's monthly budget of $" in cut.value.message and "cannot cover more of this answer" in cut.value.message
    assert "word1 " in "".join(text)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 402 and row.error_type == "budget_exhausted" and row.cost_usd > 0


def test_it_ends_a_broken_stream_in_openais_shape(gateway, world, publish, ledger, anthropic_upstream):
    """The provider's connection breaks mid-answer: the OpenAI SDK raises the
    error chunk it reads, never an Anthropic ``event: error`` it cannot parse."""
    anthropic_upstream.cut_next_stream()
    stream = client(gateway, world.secret).chat.completions.create(
        model="anthropic/claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}], stream=True,
    )
    with pytest.raises(openai.APIError) as broken:
        for _ in stream:
            pass
    assert "broke mid-stream" in broken.value.message
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.error_type == "upstream_stream_error"
