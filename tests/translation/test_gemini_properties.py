"""Gemini property tests: streams equal the non-streaming translation at any
chunking (1-byte included), and request round trips in both directions give
the original back up to the normalisations documented in ``gemini.py``.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplane.translation import (
    GEMINI_SIGNATURE_PREFIX,
    AnthropicToGeminiStream,
    GeminiToAnthropicStream,
    Usage,
    anthropic_request_to_gemini,
    anthropic_response_to_gemini,
    gemini_request_to_anthropic,
    gemini_response_to_anthropic,
)
from tests.translation.helpers import (
    Output,
    parse_anthropic_sse,
    render_anthropic_response,
    render_anthropic_stream,
    run_stream,
    split_bytes,
)
from tests.translation.test_gemini import (
    GeminiOutput,
    merge_parts,
    parse_gemini_sse,
    render_gemini_response,
    render_gemini_stream,
)

STREAM_EXAMPLES = 300
REQUEST_EXAMPLES = 300


def props(max_examples: int) -> settings:
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
signature = st.from_regex(r"[A-Za-z0-9+/]{4,24}={0,2}", fullmatch=True)
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

# --------------------------------------------------------------------------- Gemini -> Anthropic stream


@st.composite
def gemini_outputs(draw: st.DrawFn) -> GeminiOutput:
    calls = []
    seen: set[str] = set()
    for name in draw(st.lists(ident, max_size=3)):
        cid = draw(st.just("") | ident.map(lambda s: "call_" + s))
        if cid in seen:
            cid = ""  # ids present or absent, but unique when present
        seen.add(cid)
        calls.append((cid, name, draw(json_objects), draw(st.just("") | signature)))
    prompt = draw(counts)
    return GeminiOutput(
        thought=draw(text),
        thought_signature=draw(st.just("") | signature),
        texts=draw(st.lists(text, max_size=3)),
        calls=calls,
        finish=draw(
            st.sampled_from(
                ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "MALFORMED_FUNCTION_CALL"]
            )
        ),
        prompt=prompt,
        cached=draw(st.integers(0, prompt)),
        candidates=draw(counts),
        thoughts=draw(counts),
        response_id=draw(ident),
    )


@props(STREAM_EXAMPLES)
@given(gemini_outputs(), st.randoms(use_true_random=False), st.booleans())
def test_gemini_stream_matches_non_stream(
    g: GeminiOutput, rng: random.Random, one_byte: bool
) -> None:
    upstream = render_gemini_stream(g, rng)
    whole = run_stream(GeminiToAnthropicStream(model="gm"), [upstream])
    t = GeminiToAnthropicStream(model="gm")
    split = run_stream(t, split_bytes(upstream, rng, one_byte))
    assert split == whole  # chunk boundaries never change the output
    got = parse_anthropic_sse(split)
    expected = gemini_response_to_anthropic(render_gemini_response(g), model="gm")
    assert got["content"] == expected["content"] == g.expected_content()
    assert got["stop_reason"] == expected["stop_reason"] == t.stop_reason == g.expected_stop()
    assert got["usage"] == expected["usage"] == g.expected_usage().to_anthropic()
    assert got["id"] == expected["id"] and got["model"] == "gm"
    assert t.usage == g.expected_usage() and t.finished and not t.errored


# --------------------------------------------------------------------------- Anthropic -> Gemini stream


@st.composite
def anthropic_outputs(draw: st.DrawFn) -> Output:
    ids = draw(st.lists(ident, max_size=3, unique=True))
    tools = [("toolu_" + i, draw(ident), draw(json_objects)) for i in ids]
    stops = ["end_turn", "max_tokens", "stop_sequence", "refusal"] + (["tool_use"] if tools else [])
    return Output(
        thinking=draw(text),
        texts=draw(st.lists(nonempty_text, max_size=3)),
        tools=tools,
        stop=draw(st.sampled_from(stops)),
        usage=Usage(draw(counts), draw(counts), draw(counts), draw(counts)),
    )


@props(STREAM_EXAMPLES)
@given(anthropic_outputs(), st.randoms(use_true_random=False), st.booleans())
def test_anthropic_stream_to_gemini_matches_non_stream(
    o: Output, rng: random.Random, one_byte: bool
) -> None:
    upstream = render_anthropic_stream(o, rng)
    whole = run_stream(AnthropicToGeminiStream(), [upstream])
    t = AnthropicToGeminiStream()
    split = run_stream(t, split_bytes(upstream, rng, one_byte))
    assert split == whole
    got = parse_gemini_sse(split)
    expected = anthropic_response_to_gemini(render_anthropic_response(o))
    candidate = expected["candidates"][0]
    assert got["parts"] == merge_parts(candidate["content"]["parts"])
    # Written out independently of the translator:
    parts: list[dict[str, Any]] = []
    if o.thinking:
        parts.append({"text": o.thinking, "thought": True, "thoughtSignature": "sig"})
    if o.texts:
        parts.append({"text": "".join(o.texts)})
    parts += [{"functionCall": {"id": i, "name": n, "args": a}} for i, n, a in o.tools]
    assert got["parts"] == parts
    assert got["finishReason"] == candidate["finishReason"] == t.finish_reason
    assert got["usageMetadata"] == expected["usageMetadata"]
    u = o.usage
    assert got["usageMetadata"]["promptTokenCount"] == u.prompt_tokens
    assert got["usageMetadata"]["candidatesTokenCount"] == u.output_tokens
    assert got["responseId"] == expected["responseId"] == "msg_1"
    assert t.usage == o.usage and t.stop_reason == o.stop


# --------------------------------------------------------------------------- schemas

leaf_schemas = st.builds(
    lambda kind, desc, nullable: (
        {"type": [kind, "null"] if nullable else kind} | ({"description": desc} if desc else {})
    ),
    st.sampled_from(["string", "integer", "number", "boolean"]),
    text,
    st.booleans(),
) | st.builds(lambda values: {"type": "string", "enum": values}, st.lists(ident, min_size=1))


def _object_schema(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": sorted(props)[:1]}


schemas = st.recursive(
    leaf_schemas,
    lambda inner: (
        st.builds(lambda i: {"type": "array", "items": i}, inner)
        | st.dictionaries(ident, inner, min_size=1, max_size=3).map(_object_schema)
    ),
    max_leaves=6,
)


@st.composite
def input_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema = _object_schema(draw(st.dictionaries(ident, schemas, max_size=3)))
    if draw(st.booleans()):  # what zod-to-json-schema emits, which Gemini rejects
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        schema["additionalProperties"] = False
    return schema


def strip_schema(schema: Any) -> Any:
    """The schema as it comes back from Gemini: unsupported keys gone."""
    if isinstance(schema, list):
        return [strip_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: strip_schema(v)
        for k, v in schema.items()
        if k not in ("$schema", "additionalProperties", "default")
    }
    if isinstance(schema.get("properties"), dict):  # property names are not keywords
        out["properties"] = {k: strip_schema(v) for k, v in schema["properties"].items()}
    return out


# --------------------------------------------------------------------------- Anthropic -> Gemini -> Anthropic

text_blocks = st.builds(lambda t: {"type": "text", "text": t}, text)
images = st.builds(
    lambda m, d: {"type": "image", "source": {"type": "base64", "media_type": m, "data": d}},
    st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
    st.from_regex(r"[A-Za-z0-9+/]{0,16}={0,2}", fullmatch=True),
)
thinking_signatures = st.one_of(
    signature.map(lambda s: GEMINI_SIGNATURE_PREFIX + s),  # ours: goes back to Gemini
    signature,  # Claude's: dropped on the way to Gemini
    st.just(""),
)


@st.composite
def anthropic_requests(draw: st.DrawFn) -> dict[str, Any]:
    tool_names = draw(st.lists(ident, max_size=3, unique=True))
    messages: list[dict[str, Any]] = []
    pending: list[str] = []
    turns = draw(st.integers(1, 4))
    for turn in range(turns):
        if draw(st.integers(0, 5)) == 0:
            messages.append({"role": "system", "content": draw(nonempty_text)})
        content: Any
        if pending:
            content = []
            for tid in pending:
                result: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": tid,
                    "content": draw(text | st.lists(text_blocks, min_size=1, max_size=2)),
                }
                if draw(st.booleans()):
                    result["is_error"] = True
                content.append(result)
            content += draw(st.lists(text_blocks | images, max_size=2))
        else:
            content = draw(text | st.lists(text_blocks | images, min_size=1, max_size=3))
        messages.append({"role": "user", "content": content})
        pending = []
        if turn < turns - 1 or draw(st.booleans()):
            if draw(st.booleans()):
                assistant: Any = draw(text)
            else:
                blocks: list[dict[str, Any]] = []
                if draw(st.booleans()):
                    blocks.append(
                        {
                            "type": "thinking",
                            "thinking": draw(text),
                            "signature": draw(thinking_signatures),
                        }
                    )
                blocks += draw(st.lists(text_blocks, max_size=2))
                for _ in range(draw(st.integers(0, 2)) if tool_names else 0):
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
                assistant = blocks
            messages.append({"role": "assistant", "content": assistant})
    if pending:
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": i, "content": draw(text)}
                    for i in pending
                ],
            }
        )

    body: dict[str, Any] = {
        "model": draw(ident),
        "max_tokens": draw(st.integers(60_000, 200_000)),
        "messages": messages,
    }
    system = draw(st.none() | nonempty_text | st.lists(text_blocks, min_size=1, max_size=3))
    if system is not None:
        body["system"] = system
    if tool_names:
        tools = []
        for name in tool_names:
            tool: dict[str, Any] = {"name": name, "input_schema": draw(input_schemas())}
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
        body["top_k"] = draw(st.integers(1, 100))
    if draw(st.booleans()):
        body["stop_sequences"] = draw(st.lists(nonempty_text, min_size=1, max_size=2))
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["metadata"] = {"user_id": draw(ident)}
    if draw(st.booleans()):
        body["thinking"] = {"type": "enabled", "budget_tokens": draw(st.integers(1024, 50_000))}
    return body


def _normal_blocks(content: Any, translated: bool) -> list[dict[str, Any]]:
    """A message's content after the documented normalisations.

    ``translated``: the request came back from Gemini, whose signatures are bare.
    """
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    out: list[dict[str, Any]] = []
    for i, b in enumerate(blocks):
        kind = b["type"]
        if kind == "text":
            if b["text"]:
                out.append(b)
        elif kind == "thinking":
            sig = b["signature"]
            if translated:
                out.append(b)
                continue
            if not sig.startswith(GEMINI_SIGNATURE_PREFIX):
                continue  # unsigned for Gemini: not sent back to Claude
            sig = sig[len(GEMINI_SIGNATURE_PREFIX) :]
            followed = any(
                (x["type"] == "text" and x["text"]) or x["type"] == "tool_use"
                for x in blocks[i + 1 :]
            )
            if b["thinking"] or not followed:
                out.append({"type": "thinking", "thinking": b["thinking"], "signature": sig})
        elif kind == "tool_result":
            c = b["content"]
            result = {
                "type": "tool_result",
                "tool_use_id": b["tool_use_id"],
                "content": c if isinstance(c, str) else "\n".join(x["text"] for x in c),
            }
            if b.get("is_error"):
                result["is_error"] = True
            out.append(result)
        else:
            out.append(b)
    return out


def normalise_anthropic(
    body: dict[str, Any], thinking_kept: bool, translated: bool = False
) -> dict[str, Any]:
    out = {
        k: v
        for k, v in body.items()
        if k not in ("system", "messages", "tools", "tool_choice", "stream", "metadata")
    }
    system: list[str] = []
    s = body.get("system")
    if isinstance(s, str):
        system.append(s)
    elif s:
        system += [b["text"] for b in s if b["text"]]
    messages = []
    for m in body["messages"]:
        if m["role"] == "system":
            system.append(m["content"])
            continue
        blocks = _normal_blocks(m["content"], translated)
        if blocks:
            messages.append({"role": m["role"], "content": blocks})
    out["system"] = system
    out["messages"] = messages
    if "tools" in body:
        tools = []
        for t in body["tools"]:
            entry = {"name": t["name"]}
            if t.get("description"):
                entry["description"] = t["description"]
            schema = strip_schema(t["input_schema"])
            if not schema["properties"]:
                schema = {"type": "object", "properties": {}}
            entry["input_schema"] = schema
            tools.append(entry)
        out["tools"] = tools
        if "tool_choice" in body:
            out["tool_choice"] = {
                k: v for k, v in body["tool_choice"].items() if k != "disable_parallel_tool_use"
            }
    out.pop("thinking", None)
    if thinking_kept:  # sampling parameters go with thinking
        for name in ("temperature", "top_p", "top_k"):
            out.pop(name, None)
    return out


def _loses_thinking(messages: list[dict[str, Any]]) -> bool:
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    return (
        last is not None
        and any(b["type"] == "tool_use" for b in last["content"])
        and last["content"][0]["type"] != "thinking"
    )


@props(REQUEST_EXAMPLES)
@given(anthropic_requests())
def test_anthropic_request_round_trip(body: dict[str, Any]) -> None:
    dropped: list[str] = []
    gemini = anthropic_request_to_gemini(body, dropped=dropped)
    assert "model" not in gemini and "stream" not in gemini
    back = gemini_request_to_anthropic(json.loads(json.dumps(gemini)), model=body["model"])
    kept = "thinking" in back
    assert normalise_anthropic(back, kept, translated=True) == normalise_anthropic(body, kept)
    if "thinking" in body:
        expected = None if _loses_thinking(back["messages"]) else body["thinking"]
        assert back.get("thinking") == expected
    assert ("metadata" in dropped) == ("metadata" in body)
    for tool in body.get("tools", ()):
        if "additionalProperties" in tool["input_schema"]:
            assert f"tools.{tool['name']}.input_schema.additionalProperties" in dropped
    # Every tool result answers a call of the assistant turn before it.
    calls: set[str] = set()
    for m in back["messages"]:
        ids = {b["id"] for b in m["content"] if b["type"] == "tool_use"}
        if m["role"] == "assistant":
            calls = ids
        for b in m["content"]:
            if b["type"] == "tool_result":
                assert b["tool_use_id"] in calls


# --------------------------------------------------------------------------- Gemini -> Anthropic -> Gemini

gemini_leaf_schemas = st.builds(
    lambda kind, nullable: {"type": kind, "nullable": True} if nullable else {"type": kind},
    st.sampled_from(["string", "integer", "number", "boolean"]),
    st.booleans(),
)
gemini_schemas = st.recursive(
    gemini_leaf_schemas,
    lambda inner: (
        st.builds(lambda i: {"type": "array", "items": i}, inner)
        | st.dictionaries(ident, inner, min_size=1, max_size=3).map(
            lambda p: {"type": "object", "properties": p}
        )
    ),
    max_leaves=6,
)
gemini_media = st.builds(
    lambda m, d: {"inlineData": {"mimeType": m, "data": d}},
    st.sampled_from(["image/png", "image/jpeg", "application/pdf"]),
    st.from_regex(r"[A-Za-z0-9+/]{0,16}={0,2}", fullmatch=True),
)


@st.composite
def gemini_requests(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(ident, max_size=3, unique=True))
    contents: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # id ("" for none), name
    for turn in range(draw(st.integers(1, 4))):
        parts: list[dict[str, Any]] = []
        for cid, name in pending:
            fr: dict[str, Any] = {"name": name}
            if cid:
                fr["id"] = cid
            key = draw(st.sampled_from(["content", "error"]))
            fr["response"] = {key: draw(text)}
            parts.append({"functionResponse": fr})
        pending = []
        parts += draw(st.lists(nonempty_text.map(lambda t: {"text": t}) | gemini_media, max_size=3))
        if parts:
            contents.append({"role": "user", "parts": parts})
        model: list[dict[str, Any]] = []
        if draw(st.booleans()):
            thought: dict[str, Any] = {"text": draw(text), "thought": True}
            if draw(st.booleans()):
                thought["thoughtSignature"] = draw(signature)
            model.append(thought)
        model += draw(st.lists(nonempty_text.map(lambda t: {"text": t}), max_size=2))
        for k in range(draw(st.integers(0, 2)) if names else 0):
            cid = draw(st.just("") | st.just(f"call_{turn}_{k}"))
            name = draw(st.sampled_from(names))
            part: dict[str, Any] = {"functionCall": {"name": name, "args": draw(json_objects)}}
            if cid:
                part["functionCall"]["id"] = cid
            if draw(st.booleans()):
                part["thoughtSignature"] = draw(signature)
            model.append(part)
            pending.append((cid, name))
        if model:
            contents.append({"role": "model", "parts": model})
    body: dict[str, Any] = {"contents": contents}
    if draw(st.booleans()):
        body["systemInstruction"] = {
            "parts": [{"text": t} for t in draw(st.lists(nonempty_text, min_size=1, max_size=2))]
        }
    generation: dict[str, Any] = {"maxOutputTokens": draw(st.integers(60_000, 100_000))}
    if draw(st.booleans()):
        generation["temperature"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        generation["topP"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        generation["topK"] = draw(st.integers(1, 64))
    if draw(st.booleans()):
        generation["stopSequences"] = draw(st.lists(nonempty_text, min_size=1, max_size=2))
    if draw(st.booleans()):
        generation["thinkingConfig"] = {
            "thinkingBudget": draw(st.integers(1024, 30_000)),
            "includeThoughts": True,
        }
    body["generationConfig"] = generation
    if names:
        declarations = []
        for name in names:
            d: dict[str, Any] = {"name": name}
            if draw(st.booleans()):
                d["description"] = draw(nonempty_text)
            if draw(st.booleans()):
                d["parameters"] = {
                    "type": "object",
                    "properties": draw(st.dictionaries(ident, gemini_schemas, min_size=1)),
                }
            declarations.append(d)
        body["tools"] = [{"functionDeclarations": declarations}]
        config = draw(
            st.none()
            | st.sampled_from([{"mode": "AUTO"}, {"mode": "ANY"}, {"mode": "NONE"}])
            | st.just({"mode": "ANY", "allowedFunctionNames": [names[0]]})
        )
        if config is not None:
            body["toolConfig"] = {"functionCallingConfig": config}
    return body


def normalise_gemini(body: dict[str, Any], thinking_kept: bool) -> dict[str, Any]:
    out = dict(body)
    contents = []
    for c in body["contents"]:
        parts = []
        for p in c["parts"]:
            if p.get("thought"):
                # Signed thoughts reach Claude; the (Claude-bound) signature does not come back.
                if "thoughtSignature" in p and p["text"]:
                    parts.append({"text": p["text"], "thought": True})
                continue
            parts.append({k: v for k, v in p.items() if k != "thoughtSignature"})
        if parts:
            contents.append({"role": c["role"], "parts": parts})
    out["contents"] = contents
    generation = dict(body["generationConfig"])
    if thinking_kept:  # sampling parameters go with thinking
        for name in ("temperature", "topP", "topK"):
            generation.pop(name, None)
    else:
        generation.pop("thinkingConfig", None)
    out["generationConfig"] = generation
    return out


@props(REQUEST_EXAMPLES)
@given(gemini_requests())
def test_gemini_request_round_trip(body: dict[str, Any]) -> None:
    anthropic = gemini_request_to_anthropic(body, model="claude")
    back = anthropic_request_to_gemini(json.loads(json.dumps(anthropic)))
    assert back == normalise_gemini(body, "thinking" in anthropic)
    if "thinkingConfig" in body["generationConfig"]:
        assert ("thinking" in anthropic) == (not _loses_thinking(anthropic["messages"]))
