"""Anthropic Messages <-> Bedrock Converse: request, whole answer, and stream."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from dataplane.translation.converse import (
    ConverseStreamToAnthropic,
    anthropic_request_to_converse,
    converse_response_to_anthropic,
)

BASH = {
    "name": "Bash",
    "description": "Run a command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
}


def events_of(data: bytes) -> list[dict[str, Any]]:
    out = []
    for block in data.split(b"\n\n"):
        if not block:
            continue
        head, _, body = block.partition(b"\ndata: ")
        payload = orjson.loads(body)
        assert head == b"event: " + payload["type"].encode()
        out.append(payload)
    return out


def test_it_translates_a_claude_code_request() -> None:
    dropped: list[str] = []
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["END"],
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [BASH, {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {"role": "user", "content": "list /tmp"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Running it."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Bash",
                        "input": {"command": "ls /tmp"},
                    },
                ],
            },
            {"role": "system", "content": "<system-reminder>todo list empty</system-reminder>"},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a\nb"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [{"type": "text", "text": "denied"}],
                    },
                    {"type": "text", "text": ""},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="},
                    },
                ],
            },
            {"role": "user", "content": [{"type": "text", "text": "and then?"}]},
        ],
    }
    out = anthropic_request_to_converse(body, dropped=dropped)
    assert out["system"] == [
        {"text": "You are Claude Code."},
        {"text": "Be careful."},
        {"text": "<system-reminder>todo list empty</system-reminder>"},
    ]
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "list /tmp"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Running it."},
                {
                    "toolUse": {
                        "toolUseId": "toolu_1",
                        "name": "Bash",
                        "input": {"command": "ls /tmp"},
                    }
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "toolu_1", "content": [{"text": "a\nb"}]}},
                {
                    "toolResult": {
                        "toolUseId": "toolu_2",
                        "content": [{"text": "denied"}],
                        "status": "error",
                    }
                },
                {"image": {"format": "png", "source": {"bytes": "iVBORw=="}}},
                {"text": "and then?"},
            ],
        },
    ]
    assert out["inferenceConfig"] == {
        "maxTokens": 4096,
        "temperature": 0.5,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "Bash",
                    "inputSchema": {"json": BASH["input_schema"]},
                    "description": "Run a command",
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }
    for key in ("model", "stream", "max_tokens", "tools", "tool_choice", "thinking"):
        assert key not in out
    assert "tools[1]" in dropped and "top_k" in dropped and "thinking" in dropped
    assert "messages[1].content[0]" in dropped  # the thinking block
    assert "system[1].cache_control" in dropped


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, {"any": {}}),
        ({"type": "tool", "name": "Bash"}, {"tool": {"name": "Bash"}}),
        ({"type": "none"}, None),
    ],
)
def test_it_translates_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    out = anthropic_request_to_converse(
        {
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [BASH],
            "tool_choice": choice,
        }
    )
    assert out["toolConfig"].get("toolChoice") == expected


def test_it_declares_tools_the_history_uses_when_none_are_sent() -> None:
    out = anthropic_request_to_converse(
        {
            "max_tokens": 1,
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": []}],
                },
            ],
        }
    )
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "Read",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ]
    }
    assert out["messages"][2]["content"][0]["toolResult"]["content"] == [{"text": "(no output)"}]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("end_turn", "end_turn"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("guardrail_intervened", "refusal"),
        ("content_filtered", "refusal"),
    ],
)
def test_it_translates_a_whole_answer(reason: str, expected: str) -> None:
    resp = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "I'll run that."},
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_x",
                            "name": "Bash",
                            "input": {"command": "ls"},
                        }
                    },
                ],
            }
        },
        "stopReason": reason,
        "usage": {
            "inputTokens": 10,
            "outputTokens": 5,
            "totalTokens": 45,
            "cacheReadInputTokens": 20,
            "cacheWriteInputTokens": 10,
        },
        "metrics": {"latencyMs": 100},
    }
    doc = converse_response_to_anthropic(resp, model="amazon.nova-pro-v1:0")
    assert doc["id"].startswith("msg_") and doc["type"] == "message" and doc["role"] == "assistant"
    assert doc["model"] == "amazon.nova-pro-v1:0"
    assert doc["content"] == [
        {"type": "text", "text": "I'll run that."},
        {"type": "tool_use", "id": "tooluse_x", "name": "Bash", "input": {"command": "ls"}},
    ]
    # A tool call that ends the turn is a tool_use stop whatever the model says.
    assert doc["stop_reason"] == ("tool_use" if expected == "end_turn" else expected)
    assert doc["usage"] == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 20,
        "cache_creation_input_tokens": 10,
    }


def test_a_tool_use_round_trip_gives_the_same_tool_use_back() -> None:
    resp = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "t9", "name": "Bash", "input": {"command": "pwd"}}}
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1},
    }
    answer = converse_response_to_anthropic(resp, model="m")
    again = anthropic_request_to_converse(
        {
            "max_tokens": 10,
            "tools": [BASH],
            "messages": [
                {"role": "user", "content": "where am I"},
                {"role": "assistant", "content": answer["content"]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t9", "content": "/home"}],
                },
            ],
        }
    )
    assert again["messages"][1] == resp["output"]["message"]
    assert again["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "t9", "content": [{"text": "/home"}]}}
    ]


STREAM = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"delta": {"text": "I'll "}, "contentBlockIndex": 0}),
    ("contentBlockDelta", {"delta": {"text": "run that."}, "contentBlockIndex": 0}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    (
        "contentBlockStart",
        {"start": {"toolUse": {"toolUseId": "tooluse_1", "name": "Bash"}}, "contentBlockIndex": 1},
    ),
    ("contentBlockDelta", {"delta": {"toolUse": {"input": '{"comm'}}, "contentBlockIndex": 1}),
    (
        "contentBlockDelta",
        {"delta": {"toolUse": {"input": 'and": "ls -la"}'}}, "contentBlockIndex": 1},
    ),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "tool_use"}),
    (
        "metadata",
        {
            "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42},
            "metrics": {"latencyMs": 9},
        },
    ),
]


def test_it_translates_a_stream() -> None:
    stream = ConverseStreamToAnthropic(model="us.meta.llama3-3-70b-instruct-v1:0")
    out = b"".join(stream.feed_event(name, payload) for name, payload in STREAM) + stream.close()
    events = events_of(out)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["model"] == "us.meta.llama3-3-70b-instruct-v1:0"
    assert events[5]["content_block"] == {
        "type": "tool_use",
        "id": "tooluse_1",
        "name": "Bash",
        "input": {},
    }
    assert events[5]["index"] == 1
    assert events[9]["delta"]["stop_reason"] == "tool_use"
    assert events[9]["usage"]["input_tokens"] == 30 and events[9]["usage"]["output_tokens"] == 12
    assert stream.finished and stream.stop_reason == "tool_use"
    assert stream.usage.input_tokens == 30 and stream.usage.output_tokens == 12


@pytest.mark.parametrize("seed", range(25))
def test_it_reassembles_a_stream_framed_and_cut_at_random(seed: int) -> None:
    """The wire: event-stream frames cut anywhere, decoded, then translated."""
    from dataplane.providers.eventstream import EventStreamDecoder, encode_message

    wire = b"".join(
        encode_message({":event-type": n, ":message-type": "event"}, orjson.dumps(p))
        for n, p in STREAM
    )
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(wire)), rng.randrange(1, 30)))
    decoder = EventStreamDecoder()
    stream = ConverseStreamToAnthropic(model="m")
    out = bytearray()
    for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        for headers, payload in decoder.feed(wire[a:b]):
            out += stream.feed_event(headers[":event-type"], orjson.loads(payload))
    out += stream.close()
    events = events_of(bytes(out))
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    partial = "".join(
        e["delta"].get("partial_json", "") for e in events if e["type"] == "content_block_delta"
    )
    assert text == "I'll run that."
    assert orjson.loads(partial) == {"command": "ls -la"}
    assert events[-1] == {"type": "message_stop"}


def test_it_finishes_without_metadata_on_close() -> None:
    stream = ConverseStreamToAnthropic(model="m")
    out = b"".join(
        stream.feed_event(n, p)
        for n, p in STREAM[:4] + [("messageStop", {"stopReason": "max_tokens"})]
    )
    assert b"message_stop" not in out  # waiting for the usage
    events = events_of(out + stream.close())
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    assert events[-1]["type"] == "message_stop"
    assert not stream.usage_known


def test_it_owes_nothing_on_close_before_message_stop() -> None:
    stream = ConverseStreamToAnthropic(model="m")
    stream.feed_event(*STREAM[0])
    assert stream.close() == b"" and not stream.stopped


def test_it_streams_reasoning_as_thinking() -> None:
    stream = ConverseStreamToAnthropic(model="m")
    out = b"".join(
        stream.feed_event(n, p)
        for n, p in [
            ("messageStart", {"role": "assistant"}),
            (
                "contentBlockDelta",
                {"delta": {"reasoningContent": {"text": "hmm"}}, "contentBlockIndex": 0},
            ),
            (
                "contentBlockDelta",
                {"delta": {"reasoningContent": {"signature": "sig"}}, "contentBlockIndex": 0},
            ),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("contentBlockDelta", {"delta": {"text": "ok"}, "contentBlockIndex": 1}),
            ("contentBlockStop", {"contentBlockIndex": 1}),
            ("messageStop", {"stopReason": "end_turn"}),
            ("metadata", {"usage": {"inputTokens": 1, "outputTokens": 2}}),
        ]
    )
    events = events_of(out)
    assert events[1]["content_block"]["type"] == "thinking"
    assert events[2]["delta"] == {"type": "thinking_delta", "thinking": "hmm"}
    assert events[3]["delta"] == {"type": "signature_delta", "signature": "sig"}
    assert events[5]["content_block"]["type"] == "text" and events[5]["index"] == 1
    assert stream.stop_reason == "end_turn"
