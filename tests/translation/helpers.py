"""Reference parsers and upstream renderers for the translation tests.

The parsers are deliberately strict: they assert the protocol invariants a
client relies on (one message_start, blocks opened and closed in order with
sequential indices, no ``[DONE]`` in an Anthropic stream, the usage chunk
before ``[DONE]`` …), so every property test also checks the known peer bugs.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from dataplane.translation import Usage

# --------------------------------------------------------------------------- model output


@dataclass
class Output:
    """A model's answer, independent of protocol."""

    thinking: str = ""
    texts: list[str] = field(default_factory=list)
    tools: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # id, name, input
    stop: str = "end_turn"  # Anthropic stop_reason
    usage: Usage = field(default_factory=Usage)


def _pieces(text: str, rng: random.Random) -> list[str]:
    """``text`` cut into 1..n random pieces (pieces of a str: whole characters)."""
    if len(text) <= 1:
        return [text]
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(0, 6))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def split_bytes(data: bytes, rng: random.Random, one_byte: bool = False) -> list[bytes]:
    if one_byte:
        return [data[i : i + 1] for i in range(len(data))]
    out: list[bytes] = []
    i = 0
    while i < len(data):
        n = rng.choice((1, 2, 3, 5, 8, 13, 40, 200, 5000))
        out.append(data[i : i + n])
        i += n
    return out


_OPENAI_FINISH = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def openai_usage(u: Usage) -> dict[str, Any]:
    prompt = u.input_tokens + u.cache_read_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_input_tokens},
    }


def render_openai_response(o: Output) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(o.texts) or None}
    if o.thinking:
        message["reasoning_content"] = o.thinking
    if o.tools:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, n, a in o.tools
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": _OPENAI_FINISH[o.stop]}],
        "usage": openai_usage(o.usage),
    }


def render_openai_stream(o: Output, rng: random.Random) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""})]
    if o.thinking:
        out += [chunk({"reasoning_content": p}) for p in _pieces(o.thinking, rng)]
    text = "".join(o.texts)
    if text:
        out += [chunk({"content": p}) for p in _pieces(text, rng)]
    for i, (tid, name, args) in enumerate(o.tools):
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": tid,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        for p in _pieces(json.dumps(args), rng):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}))
    out.append(chunk({}, _OPENAI_FINISH[o.stop]))
    usage = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": openai_usage(o.usage),
    }
    out.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def _anthropic_blocks(o: Output) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if o.thinking:
        blocks.append({"type": "thinking", "thinking": o.thinking, "signature": "sig"})
    blocks += [{"type": "text", "text": t} for t in o.texts]
    blocks += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in o.tools]
    return blocks


def render_anthropic_response(o: Output) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": _anthropic_blocks(o),
        "stop_reason": o.stop,
        "stop_sequence": None,
        "usage": o.usage.to_anthropic(),
    }


def _ev(name: str, body: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def render_anthropic_stream(o: Output, rng: random.Random) -> bytes:
    start_usage = o.usage.to_anthropic() | {"output_tokens": 1}
    out = [
        _ev(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        _ev("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(_anthropic_blocks(o)):
        kind = block["type"]
        if kind == "thinking":
            start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], rng)
            ]
            deltas.append({"type": "signature_delta", "signature": "sig"})
        elif kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], rng)]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [
                {"type": "input_json_delta", "partial_json": p}
                for p in _pieces(json.dumps(block["input"]), rng)
            ]
        out.append(
            _ev(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for d in deltas:
            out.append(
                _ev(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": d},
                )
            )
        out.append(_ev("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        _ev(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": o.stop, "stop_sequence": None},
                "usage": {"output_tokens": o.usage.output_tokens},
            },
        )
    )
    out.append(_ev("message_stop", {"type": "message_stop"}))
    return b"".join(out)


# --------------------------------------------------------------------------- strict parsers


def parse_anthropic_sse(data: bytes) -> dict[str, Any]:
    """Assemble an Anthropic SSE stream into a Message, asserting the protocol."""
    assert b"[DONE]" not in data, "[DONE] leaked into an Anthropic stream"
    assert data.endswith(b"\n\n")
    events = data[:-2].split(b"\n\n")
    message: dict[str, Any] | None = None
    open_index: int | None = None
    partial: dict[int, list[str]] = {}
    stopped = False
    deltas = 0
    for raw in events:
        lines = raw.split(b"\n")
        assert (
            len(lines) == 2 and lines[0].startswith(b"event: ") and lines[1].startswith(b"data: ")
        ), raw
        name = lines[0][7:].decode()
        body = orjson.loads(lines[1][6:])
        assert body["type"] == name
        assert not stopped, "event after message_stop"
        if name == "ping":
            continue
        if name == "error":
            raise AssertionError(f"error event: {body}")
        if name == "message_start":
            assert message is None, "duplicate message_start"
            message = body["message"]
            assert message["content"] == []
            continue
        assert message is not None, f"{name} before message_start"
        content = message["content"]
        if name == "content_block_start":
            assert open_index is None, "block started while another is open"
            assert body["index"] == len(content), "block index not sequential"
            block = dict(body["content_block"])
            if block["type"] == "tool_use":
                partial[body["index"]] = []
            content.append(block)
            open_index = body["index"]
        elif name == "content_block_delta":
            assert body["index"] == open_index, "delta for a block that is not open"
            block = content[open_index]
            d = body["delta"]
            if d["type"] == "text_delta":
                assert block["type"] == "text"
                block["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                assert block["type"] == "thinking"
                block["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                block["signature"] = d["signature"]
            elif d["type"] == "input_json_delta":
                assert block["type"] == "tool_use"
                partial[open_index].append(d["partial_json"])
            else:
                raise AssertionError(d)
        elif name == "content_block_stop":
            assert body["index"] == open_index, "stop for a block that is not open"
            if open_index in partial:
                raw_json = "".join(partial[open_index])
                content[open_index]["input"] = json.loads(raw_json) if raw_json else {}
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta with a block still open"
            deltas += 1
            message["stop_reason"] = body["delta"]["stop_reason"]
            message["stop_sequence"] = body["delta"].get("stop_sequence")
            message["usage"] = {**message["usage"], **body["usage"]}
        elif name == "message_stop":
            assert deltas >= 1, "message_stop without message_delta"
            stopped = True
        else:
            raise AssertionError(name)
    assert stopped, "no message_stop"
    assert message is not None
    return message


def parse_openai_sse(data: bytes, include_usage: bool) -> dict[str, Any]:
    """Assemble a chat.completion.chunk stream into a chat.completion, asserting the protocol."""
    events = data[:-2].split(b"\n\n")
    assert events[-1] == b"data: [DONE]", "stream must end with [DONE]"
    ids = set()
    content: list[str] = []
    reasoning: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage = None
    for raw in events[:-1]:
        assert raw.startswith(b"data: ") and b"\n" not in raw, raw
        body = orjson.loads(raw[6:])
        assert "error" not in body, body
        assert body["object"] == "chat.completion.chunk"
        ids.add(body["id"])
        if not body["choices"]:
            assert include_usage and usage is None and finish is not None
            usage = body["usage"]
            continue
        assert usage is None, "choices after the usage chunk"
        if include_usage:
            assert body["usage"] is None
        choice = body["choices"][0]
        assert finish is None, "chunk after finish_reason"
        delta = choice["delta"]
        if delta.get("content"):
            content.append(delta["content"])
        if delta.get("reasoning_content"):
            reasoning.append(delta["reasoning_content"])
        for call in delta.get("tool_calls") or ():
            slot = tools.get(call["index"])
            if slot is None:
                assert call["index"] == len(tools), "tool index not sequential"
                slot = tools[call["index"]] = {
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "args": [],
                }
            slot["args"].append(call["function"].get("arguments", ""))
        finish = choice["finish_reason"]
    assert len(ids) == 1
    assert finish is not None
    if include_usage:
        assert usage is not None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if tools:
        message["tool_calls"] = [
            {"id": t["id"], "name": t["name"], "input": json.loads("".join(t["args"]) or "{}")}
            for _, t in sorted(tools.items())
        ]
    return {"message": message, "finish_reason": finish, "usage": usage}


def run_stream(translator: Any, pieces: list[bytes]) -> bytes:
    out = [translator.feed(p) for p in pieces]
    out.append(translator.close())
    return b"".join(out)
