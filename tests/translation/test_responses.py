"""Responses API (Codex CLI) <-> Anthropic Messages: examples and a strict stream parser."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from dataplane.translation import (
    AnthropicToResponsesStream,
    ResponsesUnsupported,
    Usage,
    anthropic_response_to_responses,
    responses_error,
    responses_request_to_anthropic,
    responses_unsupported,
)
from tests.translation.helpers import (
    Output,
    render_anthropic_response,
    render_anthropic_stream,
    run_stream,
    split_bytes,
)

# --------------------------------------------------------------------------- strict parser

_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def parse_responses_sse(data: bytes) -> dict[str, Any]:
    """Assemble a Responses event stream, asserting the protocol a client relies on.

    Returns ``{"response": <the terminal event's response>, "items": <the
    items assembled from the events>, "events": <event types in order>}``.
    """
    assert b"[DONE]" not in data, "[DONE] leaked into a Responses stream"
    assert data.endswith(b"\n\n")
    events: list[str] = []
    created: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    items: list[dict[str, Any]] = []
    item: dict[str, Any] | None = None  # the open item
    pieces: list[str] = []  # deltas of the open part / summary / arguments
    part_open = False
    for seq, raw in enumerate(data[:-2].split(b"\n\n")):
        lines = raw.split(b"\n")
        assert (
            len(lines) == 2 and lines[0].startswith(b"event: ") and lines[1].startswith(b"data: ")
        ), raw
        name = lines[0][7:].decode()
        body = orjson.loads(lines[1][6:])
        assert body["type"] == name
        assert body["sequence_number"] == seq, "sequence_number not consecutive from 0"
        assert final is None, f"{name} after the terminal event"
        events.append(name)
        if name == "response.created":
            assert created is None and seq == 0, "response.created must come first, once"
            created = body["response"]
            assert created["object"] == "response" and created["status"] == "in_progress"
            assert created["output"] == [] and created["usage"] is None
            continue
        assert created is not None, f"{name} before response.created"
        if name == "response.in_progress":
            assert seq == 1 and body["response"] == created
        elif name in _TERMINAL:
            # An upstream error may cut an item short; otherwise all are done.
            assert item is None or name == "response.failed", "terminal event with an item open"
            final = body["response"]
            assert final["id"] == created["id"] and final["model"] == created["model"]
            assert final["created_at"] == created["created_at"]
            assert final["status"] == name.split(".")[1]
            assert final["output"] == items
            if name != "response.failed":
                assert final["error"] is None
                usage = final["usage"]
                assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
                assert (final["incomplete_details"] is None) == (name == "response.completed")
            else:
                assert final["error"]["message"] is not None and final["error"]["code"]
        elif name == "response.output_item.added":
            assert item is None, "item added while another is open"
            assert body["output_index"] == len(items)
            item = body["item"]
            kind = item["type"]
            if kind == "message":
                assert item["status"] == "in_progress" and item["content"] == []
                assert item["role"] == "assistant"
            elif kind == "function_call":
                assert item["status"] == "in_progress" and item["arguments"] == ""
            else:
                assert kind == "reasoning" and item["summary"] == []
            item = json.loads(json.dumps(item))
            pieces = []
            part_open = False
        elif name == "response.output_item.done":
            assert item is not None and not part_open
            assert body["output_index"] == len(items)
            done = body["item"]
            assert done["id"] == item["id"] and done["type"] == item["type"]
            if item["type"] == "function_call":
                assert done["arguments"] == "".join(pieces), "arguments lost in the stream"
                json.loads(done["arguments"])
                item["arguments"] = done["arguments"]
                item["status"] = "completed"
            elif item["type"] == "message":
                item["status"] = "completed"
            else:
                if "encrypted_content" in done:
                    item["encrypted_content"] = done["encrypted_content"]
            assert done == item, (done, item)
            items.append(item)
            item = None
        else:
            assert item is not None, f"{name} outside an item"
            assert body["item_id"] == item["id"] and body["output_index"] == len(items)
            if name == "response.content_part.added":
                assert item["type"] == "message" and not part_open
                assert body["content_index"] == len(item["content"])
                assert body["part"] == {"type": "output_text", "text": "", "annotations": []}
                part_open, pieces = True, []
            elif name == "response.output_text.delta":
                assert part_open and body["content_index"] == len(item["content"])
                pieces.append(body["delta"])
            elif name == "response.output_text.done":
                assert part_open and body["content_index"] == len(item["content"])
                assert body["text"] == "".join(pieces), "text lost in the stream"
            elif name == "response.content_part.done":
                assert part_open and body["content_index"] == len(item["content"])
                assert body["part"]["text"] == "".join(pieces)
                item["content"].append(body["part"])
                part_open = False
            elif name == "response.reasoning_summary_part.added":
                assert item["type"] == "reasoning" and not part_open and not item["summary"]
                assert body["summary_index"] == 0
                part_open, pieces = True, []
            elif name == "response.reasoning_summary_text.delta":
                assert part_open and body["summary_index"] == 0
                pieces.append(body["delta"])
            elif name == "response.reasoning_summary_text.done":
                assert part_open and body["text"] == "".join(pieces)
            elif name == "response.reasoning_summary_part.done":
                assert part_open and body["part"]["text"] == "".join(pieces)
                item["summary"].append(body["part"])
                part_open = False
            elif name == "response.function_call_arguments.delta":
                assert item["type"] == "function_call"
                pieces.append(body["delta"])
            elif name == "response.function_call_arguments.done":
                assert item["type"] == "function_call"
                assert body["arguments"] == "".join(pieces), "arguments lost in the stream"
            else:
                raise AssertionError(name)
    assert created is not None and final is not None, "no terminal event"
    assert events.count("response.created") == 1
    assert sum(e in _TERMINAL for e in events) == 1
    return {"response": final, "items": items, "events": events}


def ev(name: str, body: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def message_start(usage: dict[str, Any] | None = None) -> bytes:
    return ev(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_abc",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [],
                "stop_reason": None,
                "usage": usage or {"input_tokens": 10, "output_tokens": 1},
            },
        },
    )


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return ev(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return ev(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def block_stop(index: int) -> bytes:
    return ev("content_block_stop", {"type": "content_block_stop", "index": index})


def message_end(stop: str = "end_turn", output_tokens: int = 5) -> bytes:
    return ev(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    ) + ev("message_stop", {"type": "message_stop"})


def translate(data: bytes, one_byte: bool = False) -> tuple[AnthropicToResponsesStream, bytes]:
    t = AnthropicToResponsesStream(created_at=1)
    return t, run_stream(t, split_bytes(data, random.Random(0), one_byte))


# --------------------------------------------------------------------------- requests


def test_instructions_and_system_developer_messages_become_system() -> None:
    body = {
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": "Sandbox: read-only."},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"role": "system", "content": [{"type": "input_text", "text": "Be brief."}]},
            {"type": "message", "role": "user", "content": "again"},
        ],
    }
    out = responses_request_to_anthropic(body, model="claude-sonnet-4-5")
    assert out["model"] == "claude-sonnet-4-5"
    assert out["system"] == [
        {"type": "text", "text": "You are Codex."},
        {"type": "text", "text": "Sandbox: read-only."},
        {"type": "text", "text": "Be brief."},
    ]
    # Both user messages form one user turn.
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}],
        }
    ]
    assert out["max_tokens"] == 4096


def test_string_input_and_single_system() -> None:
    out = responses_request_to_anthropic(
        {"model": "m", "instructions": "sys", "input": "Hello", "max_output_tokens": 77}
    )
    assert out == {
        "model": "m",
        "system": "sys",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "max_tokens": 77,
    }


def test_content_parts_images_files_and_refusals() -> None:
    dropped: list[str] = []
    body = {
        "model": "m",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/jpeg;base64,QUJD",
                        "detail": "auto",
                    },
                    {"type": "input_image", "image_url": "https://x.test/a.png"},
                    {"type": "input_image", "file_id": "file-1"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,UERG",
                        "filename": "a.pdf",
                    },
                    {"type": "input_file", "file_id": "file-2"},
                    {"type": "input_audio"},
                    {"type": "input_text", "text": ""},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "ok", "annotations": []},
                    {"type": "refusal", "refusal": "no"},
                ],
            },
        ],
    }
    out = responses_request_to_anthropic(body, dropped=dropped)
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "UERG"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": "no"}],
        },
    ]
    assert dropped == [
        "input.content.input_image.file_id",
        "input.content.input_file",
        "input.content.input_audio",
    ]


def test_function_calls_and_outputs_become_tool_use_and_tool_result_turns() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "list files"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "I should run ls."}],
                "encrypted_content": "SIG",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Running."}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_a",
                "name": "shell",
                "arguments": '{"cmd": ["ls"]}',
            },
            {"type": "function_call", "call_id": "call_b", "name": "shell", "arguments": ""},
            {"type": "function_call_output", "call_id": "call_a", "output": "a.txt"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [
                    {"type": "input_text", "text": "b"},
                    {"type": "input_image", "image_url": "https://i/x.png"},
                ],
            },
            {"role": "user", "content": "thanks"},
        ],
    }
    out = responses_request_to_anthropic(body)
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "list files"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "SIG"},
                {"type": "text", "text": "Running."},
                {"type": "tool_use", "id": "call_a", "name": "shell", "input": {"cmd": ["ls"]}},
                {"type": "tool_use", "id": "call_b", "name": "shell", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "a.txt"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_b",
                    "content": [
                        {"type": "text", "text": "b"},
                        {"type": "image", "source": {"type": "url", "url": "https://i/x.png"}},
                    ],
                },
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_tool_results_go_first_in_their_user_turn() -> None:
    body = {
        "model": "m",
        "input": [
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"role": "user", "content": "meanwhile"},
            {"type": "function_call_output", "call_id": "c1", "output": {"ok": True}},
        ],
    }
    out = responses_request_to_anthropic(body)
    assert out["messages"][1]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": '{"ok":true}'},
        {"type": "text", "text": "meanwhile"},
    ]


def test_reasoning_items_without_signature_are_dropped_and_redacted_ones_kept() -> None:
    dropped: list[str] = []
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "q"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "other provider"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "redacted_thinking:DATA"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "a"}],
            },
            {"type": "local_shell_call", "call_id": "x"},
        ],
    }
    out = responses_request_to_anthropic(body, dropped=dropped)
    assert out["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": "DATA"},
        {"type": "text", "text": "a"},
    ]
    assert dropped == ["input.reasoning", "input.local_shell_call"]


def test_tools_tool_choice_and_parallel_calls() -> None:
    dropped: list[str] = []
    body = {
        "model": "m",
        "input": "x",
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Run a command",
                "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
                "strict": False,
            },
            {"type": "function", "name": "noop", "parameters": None},
            {"type": "local_shell"},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "name": "shell"},
        "parallel_tool_calls": False,
    }
    out = responses_request_to_anthropic(body, dropped=dropped)
    assert out["tools"] == [
        {
            "name": "shell",
            "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}},
        },
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out["tool_choice"] == {
        "type": "tool",
        "name": "shell",
        "disable_parallel_tool_use": True,
    }
    assert dropped == ["tools.local_shell", "tools.custom", "tools.web_search"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (None, None),
    ],
)
def test_tool_choice_strings(choice: Any, expected: Any) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "input": "x",
        "tools": [{"type": "function", "name": "f"}],
    }
    if choice is not None:
        body["tool_choice"] = choice
    assert responses_request_to_anthropic(body).get("tool_choice") == expected


def test_tool_choice_without_function_tools_is_left_out() -> None:
    dropped: list[str] = []
    body = {
        "model": "m",
        "input": "x",
        "tools": [{"type": "web_search"}],
        "tool_choice": "required",
    }
    out = responses_request_to_anthropic(body, dropped=dropped)
    assert "tools" not in out and "tool_choice" not in out
    body = {"model": "m", "input": "x", "tool_choice": {"type": "allowed_tools", "tools": []}}
    responses_request_to_anthropic(body, dropped=dropped)
    assert dropped == ["tools.web_search", "tool_choice"]


def test_reasoning_effort_becomes_thinking_and_drops_sampling() -> None:
    dropped: list[str] = []
    body = {
        "model": "m",
        "input": "x",
        "reasoning": {"effort": "medium", "summary": "auto"},
        "temperature": 0.2,
        "top_p": 0.9,
    }
    out = responses_request_to_anthropic(body, dropped=dropped)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert out["max_tokens"] == 8192 + 4096  # no client limit: room to answer after thinking
    assert "temperature" not in out and "top_p" not in out
    assert dropped == ["temperature", "top_p"]

    out = responses_request_to_anthropic({**body, "max_output_tokens": 5000})
    assert out["max_tokens"] == 5000 and out["thinking"]["budget_tokens"] == 4999

    dropped = []
    out = responses_request_to_anthropic({**body, "max_output_tokens": 1000}, dropped=dropped)
    assert "thinking" not in out and "reasoning" in dropped
    assert out["temperature"] == 0.2 and "top_p" not in out  # Claude rejects both together

    out = responses_request_to_anthropic(
        {"model": "m", "input": "x", "reasoning": {"effort": "none"}}
    )
    assert "thinking" not in out


def test_thinking_dropped_when_a_tool_is_forced_or_the_tool_loop_lacks_thinking() -> None:
    tools = [{"type": "function", "name": "f"}]
    dropped: list[str] = []
    body = {
        "model": "m",
        "input": "x",
        "tools": tools,
        "tool_choice": "required",
        "reasoning": {"effort": "high"},
    }
    out = responses_request_to_anthropic(body, dropped=dropped)
    assert "thinking" not in out and dropped == ["reasoning"]

    loop = [
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "done"},
    ]
    body = {"model": "m", "input": loop, "tools": tools, "reasoning": {"effort": "low"}}
    dropped = []
    assert "thinking" not in responses_request_to_anthropic(body, dropped=dropped)
    assert dropped == ["reasoning"]
    signed = [loop[0], {"type": "reasoning", "summary": [], "encrypted_content": "S"}, *loop[1:]]
    out = responses_request_to_anthropic({**body, "input": signed})
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_temperature_clamped_stream_user_and_dropped_fields() -> None:
    dropped: list[str] = []
    body = {
        "model": "m",
        "input": "x",
        "temperature": 1.7,
        "stream": True,
        "user": "u1",
        "store": True,
        "include": ["reasoning.encrypted_content"],
        "text": {"format": {"type": "json_schema", "schema": {}}, "verbosity": "low"},
        "prompt_cache_key": "k",
        "service_tier": "auto",
    }
    out = responses_request_to_anthropic(body, dropped=dropped)
    assert out["temperature"] == 1.0 and out["stream"] is True
    assert out["metadata"] == {"user_id": "u1"}
    assert dropped == ["store", "text.format", "text.verbosity", "prompt_cache_key", "service_tier"]
    dropped = []
    responses_request_to_anthropic(
        {"model": "m", "input": "x", "store": False, "text": {"format": {"type": "text"}}},
        dropped=dropped,
    )
    assert dropped == []


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
    ],
)
def test_stateful_features_are_refused_with_a_clear_message(
    extra: dict[str, Any], word: str
) -> None:
    body = {"model": "m", "input": "x", **extra}
    message = responses_unsupported(body)
    assert message is not None and word in message
    with pytest.raises(ResponsesUnsupported, match=word):
        responses_request_to_anthropic(body)
    error = responses_error(message, param=word)
    assert error == {
        "error": {"message": message, "type": "invalid_request_error", "param": word, "code": None}
    }
    assert responses_unsupported({"model": "m", "input": "x", "previous_response_id": None}) is None


# --------------------------------------------------------------------------- responses


def test_anthropic_response_to_responses() -> None:
    resp = {
        "id": "msg_01XY",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "plan", "signature": "SIG"},
            {"type": "text", "text": "Let me check."},
            {"type": "text", "text": " Really."},
            {"type": "tool_use", "id": "toolu_1", "name": "shell", "input": {"cmd": ["ls"]}},
            {"type": "redacted_thinking", "data": "ENC"},
            {"type": "text", "text": "after"},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 40,
            "output_tokens": 7,
            "cache_read_input_tokens": 60,
            "cache_creation_input_tokens": 5,
        },
    }
    out = anthropic_response_to_responses(resp, created_at=123)
    assert out["id"] == "resp_01XY" and out["object"] == "response" and out["created_at"] == 123
    assert out["model"] == "claude-sonnet-4-5"
    assert out["status"] == "completed" and out["incomplete_details"] is None
    assert out["error"] is None
    assert out["output"] == [
        {
            "id": "rs_01XY_0",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "plan"}],
            "encrypted_content": "SIG",
        },
        {
            "id": "msg_01XY_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Let me check.", "annotations": []},
                {"type": "output_text", "text": " Really.", "annotations": []},
            ],
        },
        {
            "id": "fc_01XY_2",
            "type": "function_call",
            "status": "completed",
            "call_id": "toolu_1",
            "name": "shell",
            "arguments": '{"cmd":["ls"]}',
        },
        {
            "id": "rs_01XY_3",
            "type": "reasoning",
            "summary": [],
            "encrypted_content": "redacted_thinking:ENC",
        },
        {
            "id": "msg_01XY_4",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "after", "annotations": []}],
        },
    ]
    assert out["usage"] == {
        "input_tokens": 105,
        "input_tokens_details": {"cached_tokens": 60},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 112,
    }
    named = anthropic_response_to_responses(resp, model="alias", response_id="resp_given")
    assert named["id"] == "resp_given" and named["model"] == "alias"
    assert named["output"][0]["id"] == "rs_given_0"


@pytest.mark.parametrize(
    ("stop", "status", "reason"),
    [
        ("end_turn", "completed", None),
        ("stop_sequence", "completed", None),
        ("tool_use", "completed", None),
        ("max_tokens", "incomplete", "max_output_tokens"),
        ("model_context_window_exceeded", "incomplete", "max_output_tokens"),
        ("refusal", "incomplete", "content_filter"),
    ],
)
def test_stop_reasons_become_status(stop: str, status: str, reason: str | None) -> None:
    out = anthropic_response_to_responses(
        render_anthropic_response(Output(texts=["a"], stop=stop)), created_at=1
    )
    assert out["status"] == status
    assert out["incomplete_details"] == (None if reason is None else {"reason": reason})
    upstream = render_anthropic_stream(Output(texts=["a"], stop=stop), random.Random(0))
    t, data = translate(upstream)
    got = parse_responses_sse(data)
    assert got["response"] == out
    assert got["events"][-1] == (
        "response.completed" if status == "completed" else "response.incomplete"
    )
    assert t.status == status and t.stop_reason == stop and not t.errored


# --------------------------------------------------------------------------- streams


def test_stream_function_call_arguments_reassemble_exactly_at_any_chunking() -> None:
    args = '{"cmd": ["bash", "-lc", "echo }"], "workdir": "/tmp/é😀"}'
    pieces = [args[:1], args[1:9], args[9:30], args[30:-1], args[-1:]]  # the last "}" alone
    upstream = (
        message_start()
        + block_start(0, {"type": "tool_use", "id": "toolu_9", "name": "shell", "input": {}})
        + block_delta(0, {"type": "input_json_delta", "partial_json": ""})
        + b"".join(block_delta(0, {"type": "input_json_delta", "partial_json": p}) for p in pieces)
        + block_stop(0)
        + message_end("tool_use")
    )
    outputs = set()
    for one_byte in (False, True):
        _, data = translate(upstream, one_byte)
        outputs.add(data)
        got = parse_responses_sse(data)
        call = got["items"][0]
        assert call["arguments"] == args
        assert call["call_id"] == "toolu_9" and call["name"] == "shell"
        assert got["response"]["output"][0]["arguments"] == args
    assert len(outputs) == 1


def test_tool_call_without_input_deltas_still_has_json_arguments() -> None:
    upstream = (
        message_start()
        + block_start(0, {"type": "tool_use", "id": "t", "name": "now", "input": {}})
        + block_stop(0)
        + message_end("tool_use")
    )
    got = parse_responses_sse(translate(upstream)[1])
    assert got["items"][0]["arguments"] == "{}"


def test_text_delta_right_after_thinking_is_not_dropped() -> None:
    # A text block whose start carries text, right after thinking; then a text
    # delta reusing the thinking block's index without a content_block_start.
    upstream = (
        message_start()
        + block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
        + block_delta(0, {"type": "thinking_delta", "thinking": "hmm"})
        + block_delta(0, {"type": "signature_delta", "signature": "S1"})
        + block_delta(0, {"type": "text_delta", "text": "Hello"})
        + block_stop(0)
        + block_start(1, {"type": "text", "text": " world"})
        + block_delta(1, {"type": "text_delta", "text": "!"})
        + block_stop(1)
        + message_end()
    )
    for one_byte in (False, True):
        got = parse_responses_sse(translate(upstream, one_byte)[1])
        assert got["items"][0] == {
            "id": "rs_abc_0",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "hmm"}],
            "encrypted_content": "S1",
        }
        message = got["items"][1]
        assert [p["text"] for p in message["content"]] == ["Hello", " world!"]


def test_stream_usage_status_and_sequence_numbers() -> None:
    upstream = (
        message_start({"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1})
        + ev("ping", {"type": "ping"})
        + block_start(0, {"type": "text", "text": ""})
        + block_delta(0, {"type": "text_delta", "text": "truncat"})
        + block_stop(0)
        + message_end("max_tokens", output_tokens=64)
    )
    t, data = translate(upstream, one_byte=True)
    got = parse_responses_sse(data)  # asserts consecutive sequence numbers
    assert got["events"][:2] == ["response.created", "response.in_progress"]
    assert got["events"][-1] == "response.incomplete"
    response = got["response"]
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"]["input_tokens"] == 100
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 90}
    assert response["usage"]["output_tokens"] == 64
    assert t.usage == Usage(10, 64, 90, 0) and t.finished and not t.errored
    assert t.feed(b"data: {}\n\n") == b""  # nothing after the end


def test_upstream_error_event_becomes_response_failed() -> None:
    upstream = (
        message_start()
        + block_start(0, {"type": "text", "text": ""})
        + block_delta(0, {"type": "text_delta", "text": "par"})
        + ev(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    )
    t, data = translate(upstream)
    got = parse_responses_sse(data)
    assert got["events"][-1] == "response.failed"
    assert got["response"]["status"] == "failed"
    assert got["response"]["error"] == {"code": "server_is_overloaded", "message": "Overloaded"}
    assert t.errored and t.finished and t.status == "failed"


def test_error_before_message_start_still_opens_the_response() -> None:
    upstream = ev(
        "error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
    )
    got = parse_responses_sse(translate(upstream)[1])
    assert got["events"] == ["response.created", "response.in_progress", "response.failed"]
    assert got["response"]["error"]["code"] == "rate_limit_exceeded"


def test_stream_ending_early_fails_but_after_message_delta_completes() -> None:
    start = message_start() + block_start(0, {"type": "text", "text": ""})
    start += block_delta(0, {"type": "text_delta", "text": "x"})
    t, data = translate(start)
    assert parse_responses_sse(data)["events"][-1] == "response.failed" and t.errored
    delta_only = (
        start + block_stop(0) + message_end()[: -len(ev("message_stop", {"type": "message_stop"}))]
    )
    t, data = translate(delta_only)
    got = parse_responses_sse(data)
    assert got["events"][-1] == "response.completed" and not t.errored
    assert got["items"][0]["content"][0]["text"] == "x"


def test_duplicate_message_start_and_given_ids() -> None:
    upstream = message_start() + message_start() + message_end()
    t = AnthropicToResponsesStream(model="alias", response_id="resp_fixed", created_at=5)
    got = parse_responses_sse(run_stream(t, [upstream]))
    assert got["events"].count("response.created") == 1
    assert got["response"]["id"] == "resp_fixed" and got["response"]["model"] == "alias"
    assert got["response"]["output"] == [] and got["response"]["created_at"] == 5
