"""Property tests: request round trips and stream == non-stream, at any chunking.

Example counts are sized so the whole directory runs well under a minute on
two cores; ``deadline=None`` because a 1-byte-chunk stream is slow on purpose.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplane.translation import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    Usage,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
)
from tests.translation.helpers import (
    Output,
    parse_anthropic_sse,
    parse_openai_sse,
    render_anthropic_response,
    render_anthropic_stream,
    render_openai_response,
    render_openai_stream,
    run_stream,
    split_bytes,
)

STREAM_EXAMPLES = 1000
REQUEST_EXAMPLES = 1000


def props(max_examples: int) -> settings:
    # No example database: nothing is written into the working tree.
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Any Unicode scalar (multibyte UTF-8 included), no surrogates.
chars = st.characters(codec="utf-8")
text = st.text(chars, max_size=30)
nonempty_text = st.text(chars, min_size=1, max_size=30)
ident = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)

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
def tool_calls(draw: st.DrawFn, max_size: int = 3) -> list[tuple[str, str, dict[str, Any]]]:
    ids = draw(st.lists(ident, max_size=max_size, unique=True))
    return [(i, draw(ident), draw(json_objects)) for i in ids]


@st.composite
def openai_outputs(draw: st.DrawFn) -> Output:
    tools = draw(tool_calls())
    stops = ["end_turn", "max_tokens"] + (["tool_use"] if tools else [])
    return Output(
        thinking=draw(text),
        texts=[draw(text)],
        tools=tools,
        stop=draw(st.sampled_from(stops)),
        usage=Usage(draw(counts), draw(counts), draw(counts), 0),
    )


@st.composite
def anthropic_outputs(draw: st.DrawFn) -> Output:
    tools = draw(tool_calls())
    stops = ["end_turn", "max_tokens", "stop_sequence"] + (["tool_use"] if tools else [])
    return Output(
        thinking=draw(text),
        texts=draw(st.lists(nonempty_text, max_size=3)),
        tools=tools,
        stop=draw(st.sampled_from(stops)),
        usage=Usage(draw(counts), draw(counts), draw(counts), draw(counts)),
    )


# --------------------------------------------------------------------------- streams


@props(STREAM_EXAMPLES)
@given(openai_outputs(), st.randoms(use_true_random=False), st.booleans())
def test_openai_stream_matches_non_stream(o: Output, rng: random.Random, one_byte: bool) -> None:
    upstream = render_openai_stream(o, rng)
    whole = run_stream(OpenAIToAnthropicStream(), [upstream])
    t = OpenAIToAnthropicStream()
    split = run_stream(t, split_bytes(upstream, rng, one_byte))
    assert split == whole  # chunk boundaries never change the output
    got = parse_anthropic_sse(split)
    expected = openai_response_to_anthropic(render_openai_response(o))
    assert got["content"] == expected["content"]
    assert got["stop_reason"] == expected["stop_reason"] == t.stop_reason
    assert got["usage"] == expected["usage"] == o.usage.to_anthropic()
    assert t.usage == o.usage
    if o.tools:
        assert got["stop_reason"] in ("tool_use", "max_tokens")


@props(STREAM_EXAMPLES)
@given(anthropic_outputs(), st.randoms(use_true_random=False), st.booleans(), st.booleans())
def test_anthropic_stream_matches_non_stream(
    o: Output, rng: random.Random, one_byte: bool, include_usage: bool
) -> None:
    upstream = render_anthropic_stream(o, rng)
    whole = run_stream(AnthropicToOpenAIStream(include_usage=include_usage, created=1), [upstream])
    t = AnthropicToOpenAIStream(include_usage=include_usage, created=1)
    split = run_stream(t, split_bytes(upstream, rng, one_byte))
    assert split == whole
    got = parse_openai_sse(split, include_usage)
    expected = anthropic_response_to_openai(render_anthropic_response(o), created=1)
    choice = expected["choices"][0]
    message = choice["message"]
    assert got["message"]["content"] == message["content"]
    assert got["message"].get("reasoning_content") == message.get("reasoning_content")
    expected_calls = [
        {
            "id": c["id"],
            "name": c["function"]["name"],
            "input": json.loads(c["function"]["arguments"]),
        }
        for c in message.get("tool_calls", [])
    ]
    assert got["message"].get("tool_calls", []) == expected_calls
    assert got["finish_reason"] == choice["finish_reason"]
    if include_usage:
        assert got["usage"] == expected["usage"]
    assert t.usage == o.usage and t.stop_reason == o.stop


# --------------------------------------------------------------------------- requests

media_types = st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"])
b64 = st.from_regex(r"[A-Za-z0-9+/]{0,16}={0,2}", fullmatch=True)
images = st.one_of(
    st.builds(
        lambda m, d: {"type": "image", "source": {"type": "base64", "media_type": m, "data": d}},
        media_types,
        b64,
    ),
    st.builds(
        lambda p: {"type": "image", "source": {"type": "url", "url": "https://example.com/" + p}},
        ident,
    ),
)
text_blocks = st.builds(lambda t: {"type": "text", "text": t}, text)
user_blocks = st.lists(text_blocks | images, min_size=1, max_size=3)


@st.composite
def tool_result(draw: st.DrawFn, tool_id: str) -> dict[str, Any]:
    content = draw(text | st.lists(text_blocks, min_size=1, max_size=2))
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    if draw(st.booleans()):
        block["is_error"] = True
    return block


@st.composite
def anthropic_requests(draw: st.DrawFn) -> dict[str, Any]:
    tool_names = draw(st.lists(ident, max_size=3, unique=True))
    messages: list[dict[str, Any]] = []
    pending: list[str] = []
    turns = draw(st.integers(1, 4))
    for turn in range(turns):
        if draw(st.integers(0, 4)) == 0:
            messages.append({"role": "system", "content": draw(nonempty_text)})  # Claude Code style
        if pending:
            content: Any = [draw(tool_result(i)) for i in pending]
            content += draw(st.lists(text_blocks | images, max_size=2))
        else:
            content = draw(text | user_blocks)
        messages.append({"role": "user", "content": content})
        pending = []
        # Turns alternate (consecutive user turns would merge: a normalisation).
        if turn < turns - 1 or draw(st.booleans()):
            if draw(st.booleans()):
                assistant: Any = draw(text)
            else:
                blocks: list[dict[str, Any]] = []
                if draw(st.booleans()):
                    blocks.append({"type": "thinking", "thinking": draw(text), "signature": "s"})
                blocks += draw(st.lists(text_blocks, max_size=2))
                if tool_names:
                    for _ in range(draw(st.integers(0, 2))):
                        tid = f"toolu_{len(messages)}_{len(pending)}"
                        pending.append(tid)
                        blocks.append(
                            {
                                "type": "tool_use",
                                "id": tid,
                                "name": draw(st.sampled_from(tool_names)),
                                "input": draw(json_objects),
                            }
                        )
                if not any(b["type"] != "thinking" for b in blocks):
                    blocks.append({"type": "text", "text": draw(text)})
                assistant = blocks
            messages.append({"role": "assistant", "content": assistant})
    if pending:
        messages.append({"role": "user", "content": [draw(tool_result(i)) for i in pending]})

    body: dict[str, Any] = {
        "model": draw(ident),
        "max_tokens": draw(st.integers(1, 200_000)),
        "messages": messages,
    }
    system = draw(st.none() | nonempty_text | st.lists(text_blocks, min_size=1, max_size=3))
    if system is not None and (isinstance(system, str) or any(b["text"] for b in system)):
        body["system"] = system
    if tool_names:
        tools = []
        for name in tool_names:
            tool: dict[str, Any] = {
                "name": name,
                "input_schema": {"type": "object", "properties": draw(json_objects)},
            }
            if draw(st.booleans()):
                tool["description"] = draw(text)
            tools.append(tool)
        body["tools"] = tools
        if draw(st.booleans()):
            choice: dict[str, Any] = draw(
                st.sampled_from(
                    [
                        {"type": "auto"},
                        {"type": "any"},
                        {"type": "none"},
                        {"type": "tool", "name": tool_names[0]},
                    ]
                )
            )
            if draw(st.booleans()):
                choice = {**choice, "disable_parallel_tool_use": True}
            body["tool_choice"] = choice
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        body["top_p"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        body["stop_sequences"] = draw(st.lists(nonempty_text, min_size=1, max_size=2))
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(ident)}
    if draw(st.booleans()):
        body["thinking"] = {"type": "enabled", "budget_tokens": draw(st.integers(1024, 50_000))}
    return body


def normalise(body: dict[str, Any], translated: bool = False) -> dict[str, Any]:
    """The documented normalisations of a round trip, applied to a Messages request.

    Top-level system blocks of the original are joined into one system
    message; in the translated request each block came from its own message.
    """
    out = {k: v for k, v in body.items() if k not in ("system", "messages", "thinking")}
    system: list[str] = []
    if "system" in body:
        s = body["system"]
        if isinstance(s, str):
            system.append(s)
        elif translated:
            system.extend(b["text"] for b in s)
        else:
            system.append("\n\n".join(b["text"] for b in s))
    messages = []
    for m in body["messages"]:
        if m["role"] == "system":
            system.append(m["content"])
        elif m["role"] == "assistant":
            c = m["content"]
            if isinstance(c, str):
                messages.append(("assistant", c, []))
            else:
                joined = "".join(b["text"] for b in c if b["type"] == "text")
                messages.append(("assistant", joined, [b for b in c if b["type"] == "tool_use"]))
        else:
            messages.append(("user", m["content"]))
    out["system"] = system
    out["messages"] = messages
    return out


@props(REQUEST_EXAMPLES)
@given(anthropic_requests())
def test_anthropic_request_round_trip(body: dict[str, Any]) -> None:
    dropped: list[str] = []
    openai = anthropic_request_to_openai(body, dropped=dropped)
    back = openai_request_to_anthropic(json.loads(json.dumps(openai)))
    assert normalise(back, translated=True) == normalise(body)
    assert ("thinking" in dropped) == ("thinking" in body)


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Chat requests already in the translation's canonical shape."""
    names = draw(st.lists(ident, max_size=2, unique=True))
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(nonempty_text)})
    for turn in range(draw(st.integers(1, 3))):
        parts = draw(
            st.lists(
                st.builds(lambda t: {"type": "text", "text": t}, text)
                | st.builds(
                    lambda p: {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/" + p},
                    },
                    ident,
                ),
                min_size=1,
                max_size=3,
            )
        )
        # After tool messages the user's content joins the tool turn, so it comes back as parts.
        after_tools = bool(messages) and messages[-1]["role"] == "tool"
        as_string = not after_tools and draw(st.booleans())
        messages.append({"role": "user", "content": draw(text) if as_string else parts})
        calls = []
        if names and draw(st.booleans()):
            for k in range(draw(st.integers(1, 2))):
                # Arguments are re-serialised compactly by orjson: the canonical form.
                args = orjson.dumps(draw(json_objects)).decode()
                calls.append(
                    {
                        "id": f"call_{turn}_{k}",
                        "type": "function",
                        "function": {"name": draw(st.sampled_from(names)), "arguments": args},
                    }
                )
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": draw(nonempty_text) if (draw(st.booleans()) or not calls) else None,
        }
        if calls:
            assistant["tool_calls"] = calls
        messages.append(assistant)
        for c in calls:
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": draw(text)})
    body: dict[str, Any] = {
        "model": draw(ident),
        "messages": messages,
        "max_tokens": draw(st.integers(1, 100_000)),
    }
    if names:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": n, "parameters": {"type": "object", "properties": {}}},
            }
            for n in names
        ]
    return body


@props(REQUEST_EXAMPLES // 2)
@given(openai_requests())
def test_openai_request_round_trip(body: dict[str, Any]) -> None:
    anthropic = openai_request_to_anthropic(body)
    back = anthropic_request_to_openai(json.loads(json.dumps(anthropic)))
    assert back == body
