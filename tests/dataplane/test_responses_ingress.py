"""OpenAI Responses API (Codex CLI's) through the gateway to Claude, driven by the openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

TOOLS = [
    {
        "type": "function",
        "name": "Bash",
        "description": "Run a shell command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    }
]


def client(gateway, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/openai/v1", api_key=secret, max_retries=0)


def test_it_serves_a_codex_turn_from_claude(gateway, world, publish, ledger, anthropic_upstream):
    sdk = client(gateway, world.secret)
    first_input = [{"role": "user", "content": [{"type": "input_text", "text": "Please [[bash: echo from-codex]]"}]}]
    events = list(sdk.responses.create(
        model="anthropic/claude-sonnet-4-6", instructions="You are Codex.", input=first_input, tools=TOOLS, stream=True,
    ))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    completed = events[-1].response
    call = next(item for item in completed.output if item.type == "function_call")
    assert call.name == "Bash" and json.loads(call.arguments) == {"command": "echo from-codex", "description": "Run the requested command"}
    assert completed.usage.input_tokens > 0 and completed.usage.output_tokens > 0
    sent = anthropic_upstream.messages_received()[-1].body
    assert sent["system"] == "You are Codex." and sent["model"] == "claude-sonnet-4-6"

    reply = sdk.responses.create(
        model="anthropic/claude-sonnet-4-6",
        input=first_input
        + [
            {"type": "function_call", "call_id": call.call_id, "name": "Bash", "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "from-codex"},
        ],
        tools=TOOLS,
    )
    assert reply.output_text == "The tool said: from-codex"
    rows = ledger(2, key_prefix=world.key.prefix)
    assert [r.endpoint for r in rows] == ["responses"] * 2
    assert all(r.status == 200 and r.cost_usd > 0 for r in rows)


def test_it_refuses_server_side_state_in_openai_shape(gateway, world, publish):
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway, world.secret).responses.create(
            model="anthropic/claude-sonnet-4-6", input="hi", previous_response_id="resp_123",
        )
    assert "previous_response_id" in refused.value.body["message"]


def test_it_ends_a_broken_stream_in_the_responses_shape(gateway, world, publish, ledger, anthropic_upstream):
    """The provider's connection breaks mid-answer: a Codex caller reads the
    Responses API's own ``error`` event (the SDK raises it), not Anthropic's."""
    anthropic_upstream.cut_next_stream()
    stream = client(gateway, world.secret).responses.create(
        model="anthropic/claude-sonnet-4-6", input="hi", stream=True,
    )
    kinds = []
    with pytest.raises(openai.APIError) as broken:
        for event in stream:
            kinds.append(event.type)
    assert kinds[0] == "response.created"
    assert "broke mid-stream" in broken.value.message
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.error_type == "upstream_stream_error"
