"""Micro-benchmark of the Anthropic <-> OpenAI translation (dataplane/translation).

    .venv/bin/python bench/translation.py

Prints microseconds per translated request/response and per streamed chunk
(best of several timeit repeats), so the hot-path cost of a translated route
is known. Pure CPU: no sockets, no files.
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dataplane.translation import (  # noqa: E402
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "file_path": {"type": "string", "description": "Absolute path"},
        "offset": {"type": "integer"},
        "limit": {"type": "integer"},
    },
    "required": ["file_path"],
}

# A Claude Code-shaped request: system blocks, 12 tools, a tool round trip.
ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {
            "type": "text",
            "text": "You are Claude Code. " * 40,
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "text", "text": "Environment: linux, git repo. " * 10},
    ],
    "tools": [
        {"name": f"Tool{i}", "description": "Does a thing. " * 20, "input_schema": SCHEMA}
        for i in range(12)
    ],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Fix the failing test in src/app.py " * 5}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me read the file."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "Tool0",
                    "input": {"file_path": "/src/app.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "def f():\n    return 1\n" * 100,
                },
                {"type": "text", "text": "<system-reminder>keep going</system-reminder>"},
            ],
        },
    ],
    "metadata": {"user_id": "user-1"},
}
ANTHROPIC_REQUEST_BYTES = orjson.dumps(ANTHROPIC_REQUEST)
OPENAI_REQUEST = anthropic_request_to_openai(ANTHROPIC_REQUEST)
OPENAI_REQUEST_BYTES = orjson.dumps(OPENAI_REQUEST)

OPENAI_RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "I'll edit it. " * 20,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "Tool1", "arguments": '{"file_path": "/a"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 5000,
        "completion_tokens": 80,
        "prompt_tokens_details": {"cached_tokens": 4000},
    },
}
OPENAI_RESPONSE_BYTES = orjson.dumps(OPENAI_RESPONSE)
ANTHROPIC_RESPONSE_BYTES = orjson.dumps(openai_response_to_anthropic(OPENAI_RESPONSE))


def openai_chunk(delta: dict[str, Any]) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


OPENAI_TEXT_CHUNK = openai_chunk({"content": "Hello, wor"})
OPENAI_TOOL_CHUNK = openai_chunk(
    {"tool_calls": [{"index": 0, "function": {"arguments": '"path": "/a'}}]}
)
ANTHROPIC_TEXT_EVENT = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hello, wor"}}\n\n'
)
ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":10,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)


def best_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    rows: list[tuple[str, float]] = []

    rows.append(
        (
            f"request  Anthropic->OpenAI ({len(ANTHROPIC_REQUEST_BYTES)} B, loads+translate+dumps)",
            best_us(
                lambda: orjson.dumps(
                    anthropic_request_to_openai(orjson.loads(ANTHROPIC_REQUEST_BYTES))
                ),
                2000,
            ),
        )
    )
    rows.append(
        (
            "request  Anthropic->OpenAI (translate only)",
            best_us(lambda: anthropic_request_to_openai(ANTHROPIC_REQUEST), 5000),
        )
    )
    rows.append(
        (
            f"request  OpenAI->Anthropic ({len(OPENAI_REQUEST_BYTES)} B, loads+translate+dumps)",
            best_us(
                lambda: orjson.dumps(
                    openai_request_to_anthropic(orjson.loads(OPENAI_REQUEST_BYTES))
                ),
                2000,
            ),
        )
    )
    rows.append(
        (
            "response OpenAI->Anthropic (loads+translate+dumps)",
            best_us(
                lambda: orjson.dumps(
                    openai_response_to_anthropic(orjson.loads(OPENAI_RESPONSE_BYTES))
                ),
                20000,
            ),
        )
    )
    rows.append(
        (
            "response Anthropic->OpenAI (loads+translate+dumps)",
            best_us(
                lambda: orjson.dumps(
                    anthropic_response_to_openai(orjson.loads(ANTHROPIC_RESPONSE_BYTES))
                ),
                20000,
            ),
        )
    )

    o2a = OpenAIToAnthropicStream()
    o2a.feed(OPENAI_TEXT_CHUNK)
    rows.append(
        (
            "stream   OpenAI->Anthropic, text chunk",
            best_us(lambda: o2a.feed(OPENAI_TEXT_CHUNK), 50000),
        )
    )
    o2a_tool = OpenAIToAnthropicStream()
    o2a_tool.feed(
        openai_chunk(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]}
        )
    )
    rows.append(
        (
            "stream   OpenAI->Anthropic, tool-args chunk",
            best_us(lambda: o2a_tool.feed(OPENAI_TOOL_CHUNK), 50000),
        )
    )
    half = len(OPENAI_TEXT_CHUNK) // 2
    a, b = OPENAI_TEXT_CHUNK[:half], OPENAI_TEXT_CHUNK[half:]
    rows.append(
        (
            "stream   OpenAI->Anthropic, text chunk split in two",
            best_us(lambda: (o2a.feed(a), o2a.feed(b)), 50000),
        )
    )

    a2o = AnthropicToOpenAIStream(include_usage=True)
    a2o.feed(ANTHROPIC_START)
    rows.append(
        (
            "stream   Anthropic->OpenAI, text_delta event",
            best_us(lambda: a2o.feed(ANTHROPIC_TEXT_EVENT), 50000),
        )
    )

    width = max(len(name) for name, _ in rows)
    for name, us in rows:
        print(f"{name:<{width}}  {us:8.2f} µs")


if __name__ == "__main__":
    main()
