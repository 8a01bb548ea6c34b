"""Properties of the Responses <-> Anthropic translation.

* Any Claude answer (blocks in any order), rendered as Anthropic SSE and cut
  at random chunk boundaries (1-byte included), translates to a Responses
  stream that a strict parser accepts and whose final response equals the
  non-streamed translation; the chunking never changes a byte of output.
* A Responses request's content reaches Claude complete and in order.
* Codex replays the items it received: Claude gets its own blocks back.

Example counts keep this file at a few seconds; ``deadline=None`` because a
1-byte-chunk stream is slow on purpose.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplane.translation import (
    AnthropicToResponsesStream,
    Usage,
    anthropic_response_to_responses,
    responses_request_to_anthropic,
)
from tests.translation.helpers import run_stream, split_bytes
from tests.translation.test_responses import parse_responses_sse

STREAM_EXAMPLES = 400
REQUEST_EXAMPLES = 400


def props(max_examples: int) -> settings:
    # No example database: nothing is written into the working tree.
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


chars = st.characters(codec="utf-8")
text = st.text(chars, max_size=30)
nonempty_text = st.text(chars, min_size=1, max_size=30)
ident = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
signature = st.from_regex(r"[A-Za-z0-9+/=]{1,24}", fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(chars, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(chars, max_size=8), json_values, max_size=4)
counts = st.integers(0, 2_000_000)


@st.composite
def claude_blocks(draw: st.DrawFn, texts: Any = text, signed: bool = False) -> list[dict[str, Any]]:
    """Content blocks of a Claude answer, in any order (interleaved thinking included)."""
    blocks: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["thinking", "redacted", "text", "text", "tool"]))
        if kind == "thinking":
            sig = draw(signature if signed else (signature | st.just("")))
            blocks.append({"type": "thinking", "thinking": draw(text), "signature": sig})
        elif kind == "redacted":
            blocks.append({"type": "redacted_thinking", "data": draw(signature)})
        elif kind == "text":
            blocks.append({"type": "text", "text": draw(texts)})
        else:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{i}",
                    "name": draw(ident),
                    "input": draw(json_objects),
                }
            )
    return blocks


def _pieces(s: str, rng: random.Random) -> list[str]:
    if len(s) <= 1:
        return [s]
    cuts = sorted(rng.sample(range(1, len(s)), k=min(len(s) - 1, rng.randint(0, 6))))
    bounds = [0, *cuts, len(s)]
    return [s[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _ev(name: str, body: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def render_response(blocks: list[dict[str, Any]], stop: str, usage: Usage) -> dict[str, Any]:
    return {
        "id": "msg_P",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage.to_anthropic(),
    }


def render_stream(
    blocks: list[dict[str, Any]], stop: str, usage: Usage, rng: random.Random
) -> bytes:
    message = render_response([], stop, usage) | {"stop_reason": None}
    message["usage"] = usage.to_anthropic() | {"output_tokens": 1}
    out = [_ev("message_start", {"type": "message_start", "message": message})]
    for index, block in enumerate(blocks):
        if rng.random() < 0.2:
            out.append(_ev("ping", {"type": "ping"}))
        kind = block["type"]
        deltas: list[dict[str, Any]] = []
        if kind == "thinking":
            start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], rng)
            ]
            if block["signature"]:
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "redacted_thinking":
            start = block
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
        out += [
            _ev("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        out.append(_ev("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        _ev(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage.output_tokens},
            },
        )
    )
    out.append(_ev("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def parsed_arguments(response: dict[str, Any]) -> dict[str, Any]:
    """``response`` with function-call arguments parsed: the stream keeps Claude's spacing."""
    output = [
        item | {"arguments": json.loads(item["arguments"])}
        if item["type"] == "function_call"
        else item
        for item in response["output"]
    ]
    return response | {"output": output}


stops = st.sampled_from(["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"])
usages = st.builds(Usage, counts, counts, counts, counts)


@props(STREAM_EXAMPLES)
@given(claude_blocks(), stops, usages, st.randoms(use_true_random=False), st.booleans())
def test_stream_matches_non_stream_at_any_chunking(
    blocks: list[dict[str, Any]],
    stop: str,
    usage: Usage,
    rng: random.Random,
    one_byte: bool,
) -> None:
    upstream = render_stream(blocks, stop, usage, rng)
    whole = run_stream(AnthropicToResponsesStream(created_at=1), [upstream])
    t = AnthropicToResponsesStream(created_at=1)
    split = run_stream(t, split_bytes(upstream, rng, one_byte))
    assert split == whole  # chunk boundaries never change the output
    got = parse_responses_sse(split)
    expected = anthropic_response_to_responses(render_response(blocks, stop, usage), created_at=1)
    assert parsed_arguments(got["response"]) == parsed_arguments(expected)
    assert t.usage == usage and t.stop_reason == stop and t.status == expected["status"]
    assert not t.errored


# --------------------------------------------------------------------------- requests

image_urls = st.builds(lambda p: "https://example.com/" + p, ident) | st.builds(
    lambda d: "data:image/png;base64," + d, st.from_regex(r"[A-Za-z0-9+/]{1,16}", fullmatch=True)
)


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": url.split(",", 1)[1]},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


@st.composite
def user_content(draw: st.DrawFn) -> tuple[Any, list[dict[str, Any]]]:
    """Message content (a string or parts) and the blocks Claude should get."""
    if draw(st.booleans()):
        s = draw(nonempty_text)
        return s, [{"type": "text", "text": s}]
    parts: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 3)) == 0:
            url = draw(image_urls)
            parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
            blocks.append(_image_block(url))
        else:
            s = draw(nonempty_text)
            parts.append({"type": "input_text", "text": s})
            blocks.append({"type": "text", "text": s})
    return parts, blocks


@st.composite
def responses_requests(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """A Codex-style request, the system texts and the messages Claude should get."""
    system: list[str] = []
    items: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []

    def maybe_system() -> None:
        if draw(st.integers(0, 5)) == 0:
            s = draw(nonempty_text)
            system.append(s)
            role = draw(st.sampled_from(["system", "developer"]))
            items.append({"type": "message", "role": role, "content": s})

    body: dict[str, Any] = {"model": draw(ident)}
    instructions = draw(st.none() | nonempty_text)
    if instructions is not None:
        body["instructions"] = instructions
        system.append(instructions)
    pending: list[str] = []  # call ids awaiting their output
    for turn in range(draw(st.integers(1, 4))):
        # user turn: the outputs of the previous calls, then the user's messages
        blocks: list[dict[str, Any]] = []
        for call_id in pending:
            maybe_system()
            if draw(st.booleans()):
                output: Any = draw(text)
                result: Any = output
            else:
                output, result = draw(user_content())
                if isinstance(output, str):
                    output = [{"type": "input_text", "text": output}]
            items.append({"type": "function_call_output", "call_id": call_id, "output": output})
            blocks.append({"type": "tool_result", "tool_use_id": call_id, "content": result})
        for _ in range(draw(st.integers(0 if pending else 1, 2))):
            maybe_system()
            content, user_blocks = draw(user_content())
            message: dict[str, Any] = {"role": "user", "content": content}
            if draw(st.booleans()):
                message["type"] = "message"
            items.append(message)
            blocks += user_blocks
        if messages and messages[-1]["role"] == "user":
            messages[-1]["content"] += blocks  # no assistant turn between: one user turn
        else:
            messages.append({"role": "user", "content": blocks})
        pending = []
        # assistant turn
        blocks = []
        if draw(st.booleans()):
            if draw(st.integers(0, 4)) == 0:
                data = draw(signature)
                items.append(
                    {
                        "type": "reasoning",
                        "summary": [],
                        "encrypted_content": "redacted_thinking:" + data,
                    }
                )
                blocks.append({"type": "redacted_thinking", "data": data})
            else:
                thought, sig = draw(text), draw(signature)
                summary = [{"type": "summary_text", "text": thought}] if thought else []
                items.append(
                    {
                        "type": "reasoning",
                        "id": f"rs_{turn}",
                        "summary": summary,
                        "encrypted_content": sig,
                    }
                )
                blocks.append({"type": "thinking", "thinking": thought, "signature": sig})
        if draw(st.booleans()):
            said = draw(st.lists(nonempty_text, min_size=1, max_size=2))
            parts = [{"type": "output_text", "text": s, "annotations": []} for s in said]
            items.append({"type": "message", "role": "assistant", "content": parts})
            blocks += [{"type": "text", "text": s} for s in said]
        for k in range(draw(st.integers(0, 2))):
            call_id, args = f"call_{turn}_{k}", draw(json_objects)
            items.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": draw(ident),
                    "arguments": orjson.dumps(args).decode(),
                }
            )
            blocks.append(
                {"type": "tool_use", "id": call_id, "name": items[-1]["name"], "input": args}
            )
            pending.append(call_id)
        if blocks:
            messages.append({"role": "assistant", "content": blocks})
    if pending:
        items += [{"type": "function_call_output", "call_id": c, "output": "ok"} for c in pending]
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": c, "content": "ok"} for c in pending
                ],
            }
        )
    maybe_system()
    body["input"] = items
    return body, system, messages


@props(REQUEST_EXAMPLES)
@given(responses_requests())
def test_request_content_reaches_claude_in_order(
    case: tuple[dict[str, Any], list[str], list[dict[str, Any]]],
) -> None:
    body, system, messages = case
    dropped: list[str] = []
    out = responses_request_to_anthropic(json.loads(json.dumps(body)), dropped=dropped)
    assert dropped == []
    assert out["messages"] == messages
    if not system:
        assert "system" not in out
    elif len(system) == 1:
        assert out["system"] == system[0]
    else:
        assert out["system"] == [{"type": "text", "text": s} for s in system]
    roles = [m["role"] for m in out["messages"]]
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), "turns must alternate"
    for m in out["messages"]:
        kinds = [b["type"] for b in m["content"]]
        assert m["content"], "no empty turn"
        # tool results lead their user turn
        assert kinds == sorted(kinds, key=lambda k: k != "tool_result")


@props(REQUEST_EXAMPLES)
@given(claude_blocks(texts=nonempty_text, signed=True), stops, nonempty_text)
def test_replayed_output_gives_claude_its_own_blocks(
    blocks: list[dict[str, Any]], stop: str, question: str
) -> None:
    response = anthropic_response_to_responses(render_response(blocks, stop, Usage()), created_at=1)
    # Codex stores the items it received and sends them back as input.
    replay = json.loads(json.dumps([{"role": "user", "content": question}, *response["output"]]))
    out = responses_request_to_anthropic({"model": "m", "input": replay})
    expected: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": question}]}
    ]
    if blocks:
        expected.append({"role": "assistant", "content": blocks})
    assert out["messages"] == expected
