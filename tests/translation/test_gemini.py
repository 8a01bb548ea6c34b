"""Anthropic Messages <-> Gemini generateContent: examples, and the Gemini test helpers.

The helpers (upstream renderers and a strict Gemini SSE parser) are imported
by ``test_gemini_properties``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

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
from dataplane.translation.gemini import GENERATED_ID_PREFIX, gemini_schema
from tests.translation.helpers import (
    Output,
    _pieces,
    parse_anthropic_sse,
    render_anthropic_response,
    render_anthropic_stream,
    run_stream,
    split_bytes,
)

# --------------------------------------------------------------------------- helpers


@dataclass
class GeminiOutput:
    """A Gemini model's answer, independent of streaming."""

    thought: str = ""
    thought_signature: str = ""
    texts: list[str] = field(default_factory=list)
    # id ("" for none), name, args, thoughtSignature ("" for none)
    calls: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)
    finish: str = "STOP"
    prompt: int = 0
    cached: int = 0
    candidates: int = 0
    thoughts: int = 0
    response_id: str = "resp-1"

    def usage_metadata(self) -> dict[str, Any]:
        meta = {
            "promptTokenCount": self.prompt,
            "candidatesTokenCount": self.candidates,
            "totalTokenCount": self.prompt + self.candidates + self.thoughts,
        }
        if self.cached:
            meta["cachedContentTokenCount"] = self.cached
        if self.thoughts:
            meta["thoughtsTokenCount"] = self.thoughts
        return meta

    def expected_usage(self) -> Usage:
        return Usage(
            input_tokens=self.prompt - self.cached,
            output_tokens=self.candidates + self.thoughts,
            cache_read_input_tokens=self.cached,
        )

    def expected_content(self) -> list[dict[str, Any]]:
        """The Anthropic blocks, written out independently of the translator."""
        blocks: list[dict[str, Any]] = []
        if self.thought or self.thought_signature:
            sig = self.thought_signature
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": self.thought,
                    "signature": GEMINI_SIGNATURE_PREFIX + sig if sig else "",
                }
            )
        text = "".join(self.texts)
        if text:
            blocks.append({"type": "text", "text": text})
        for k, (cid, name, args, sig) in enumerate(self.calls):
            if sig:
                blocks.append(
                    {"type": "thinking", "thinking": "", "signature": GEMINI_SIGNATURE_PREFIX + sig}
                )
            blocks.append(
                {
                    "type": "tool_use",
                    "id": cid or f"{GENERATED_ID_PREFIX}{self.response_id}_{k}",
                    "name": name,
                    "input": args,
                }
            )
        return blocks

    def expected_stop(self) -> str:
        stop = {"STOP": "end_turn", "MAX_TOKENS": "max_tokens"}.get(self.finish)
        if stop is None:
            stop = "end_turn" if self.finish == "MALFORMED_FUNCTION_CALL" else "refusal"
        return "tool_use" if self.calls and stop == "end_turn" else stop


def _call_part(cid: str, name: str, args: dict[str, Any], sig: str) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": args}
    if cid:
        call["id"] = cid
    part: dict[str, Any] = {"functionCall": call}
    if sig:
        part["thoughtSignature"] = sig
    return part


def render_gemini_response(g: GeminiOutput) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if g.thought or g.thought_signature:
        part: dict[str, Any] = {"text": g.thought, "thought": True}
        if g.thought_signature:
            part["thoughtSignature"] = g.thought_signature
        parts.append(part)
    parts += [{"text": t} for t in g.texts]
    parts += [_call_part(*c) for c in g.calls]
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": g.finish, "index": 0}
        ],
        "usageMetadata": g.usage_metadata(),
        "modelVersion": "gemini-test",
        "responseId": g.response_id,
    }


def render_gemini_stream(g: GeminiOutput, rng: random.Random) -> bytes:
    """``alt=sse`` chunks: text in random pieces, parts grouped at random, usage last."""
    parts: list[dict[str, Any]] = []
    if g.thought or g.thought_signature:
        pieces = [{"text": p, "thought": True} for p in _pieces(g.thought, rng)]
        if g.thought_signature:
            if rng.random() < 0.5:  # on the last thought piece, or a part of its own
                pieces[-1]["thoughtSignature"] = g.thought_signature
            else:
                pieces.append(
                    {"text": "", "thought": True, "thoughtSignature": g.thought_signature}
                )
        parts += pieces
    for t in g.texts:
        parts += [{"text": p} for p in _pieces(t, rng)]
    parts += [_call_part(*c) for c in g.calls]

    def chunk(chunk_parts: list[dict[str, Any]], **extra: Any) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": chunk_parts}, "index": 0}
        if "finishReason" in extra:
            candidate["finishReason"] = extra.pop("finishReason")
        body = {"candidates": [candidate], **extra}
        body["modelVersion"] = "gemini-test"
        body["responseId"] = g.response_id
        return b"data: " + orjson.dumps(body) + b"\r\n\r\n"

    early_usage = {"promptTokenCount": g.prompt, "totalTokenCount": g.prompt}
    out: list[bytes] = []
    last: list[dict[str, Any]] = []
    i = 0
    while i < len(parts):
        n = rng.randint(1, 3)
        group = parts[i : i + n]
        i += n
        if i >= len(parts) and rng.random() < 0.5:
            last = group  # the last parts ride with finishReason
            break
        out.append(chunk(group, usageMetadata=early_usage))
    if rng.random() < 0.8:
        out.append(chunk(last, finishReason=g.finish, usageMetadata=g.usage_metadata()))
    else:  # usage in a chunk of its own after the finish reason
        out.append(chunk(last, finishReason=g.finish))
        body = {"usageMetadata": g.usage_metadata(), "responseId": g.response_id}
        out.append(b"data: " + orjson.dumps(body) + b"\r\n\r\n")
    return b"".join(out)


def merge_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive text parts (thought or not) joined, as a Gemini client assembles them."""
    out: list[dict[str, Any]] = []
    for p in parts:
        prev = out[-1] if out else None
        if (
            prev is not None
            and "text" in p
            and "text" in prev
            and bool(p.get("thought")) == bool(prev.get("thought"))
        ):
            merged = {**prev, "text": prev["text"] + p["text"]}
            if p.get("thoughtSignature"):
                merged["thoughtSignature"] = p["thoughtSignature"]
            out[-1] = merged
        else:
            out.append(dict(p))
    return out


def parse_gemini_sse(data: bytes) -> dict[str, Any]:
    """Assemble a Gemini ``alt=sse`` stream into one response, asserting the protocol."""
    assert data.endswith(b"\r\n\r\n")
    events = data[:-4].split(b"\r\n\r\n")
    parts: list[dict[str, Any]] = []
    finish = None
    usage = None
    ids = set()
    versions = set()
    for n, raw in enumerate(events):
        assert raw.startswith(b"data: ") and b"\n" not in raw, raw
        body = orjson.loads(raw[6:])
        assert "error" not in body, body
        assert finish is None, "chunk after finishReason"
        ids.add(body["responseId"])
        versions.add(body["modelVersion"])
        (candidate,) = body["candidates"]
        assert candidate["index"] == 0 and candidate["content"]["role"] == "model"
        parts += candidate["content"]["parts"]
        if "finishReason" in candidate:
            assert n == len(events) - 1, "finishReason before the last chunk"
            finish = candidate["finishReason"]
            usage = body["usageMetadata"]
        else:
            assert "usageMetadata" not in body
    assert finish is not None and usage is not None
    assert len(ids) == 1 and len(versions) == 1
    return {
        "parts": merge_parts(parts),
        "finishReason": finish,
        "usageMetadata": usage,
        "responseId": ids.pop(),
        "modelVersion": versions.pop(),
    }


def g2a_stream(data: bytes, one_byte: bool = False, model: str = "gemini-x") -> dict[str, Any]:
    t = GeminiToAnthropicStream(model=model)
    return parse_anthropic_sse(run_stream(t, split_bytes(data, random.Random(0), one_byte)))


def sse(*bodies: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(b) + b"\r\n\r\n" for b in bodies)


def gchunk(parts: list[dict[str, Any]], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "r1", "modelVersion": "g", **extra}


USAGE = {
    "promptTokenCount": 100,
    "candidatesTokenCount": 7,
    "thoughtsTokenCount": 5,
    "cachedContentTokenCount": 60,
    "totalTokenCount": 112,
}

# --------------------------------------------------------------------------- Anthropic -> Gemini request


def test_request_basic_mapping() -> None:
    dropped: list[str] = []
    body = {
        "model": "claude-sonnet",
        "max_tokens": 1000,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAA="},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                ],
            },
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END"],
        "stream": True,
        "metadata": {"user_id": "u1"},
        "service_tier": "auto",
    }
    out = anthropic_request_to_gemini(body, dropped=dropped)
    assert "model" not in out and "stream" not in out
    assert out["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
        {
            "role": "user",
            "parts": [
                {"text": "look"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "AAA="}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a.png"}},
            ],
        },
    ]
    assert out["generationConfig"] == {
        "maxOutputTokens": 1000,
        "temperature": 0.5,
        "topP": 0.9,
        "topK": 40,
        "stopSequences": ["END"],
    }
    assert set(dropped) == {"system.cache_control", "metadata", "service_tier"}


def test_request_tools_schema_sanitised_and_reported() -> None:
    dropped: list[str] = []
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": "p", "default": "."},
            "mode": {"type": ["string", "null"], "enum": ["a", "b"]},
            "kind": {"const": "x"},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["path", "ghost"],
        "$defs": {
            "Item": {"type": "object", "properties": {"n": {"type": "integer", "examples": [1]}}}
        },
    }
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [
            {"name": "ls", "description": "list", "input_schema": schema},
            {"name": "noargs", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "tool_choice": {"type": "tool", "name": "ls", "disable_parallel_tool_use": True},
    }
    out = anthropic_request_to_gemini(body, dropped=dropped)
    (ls, noargs) = out["tools"][0]["functionDeclarations"]
    assert noargs == {"name": "noargs"}
    assert ls["description"] == "list"
    assert ls["parameters"] == {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "p"},
            "mode": {"nullable": True, "type": "string", "enum": ["a", "b"]},
            "kind": {"enum": ["x"]},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"n": {"type": "integer"}}},
            },
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["path"],
    }
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["ls"]}
    }
    assert set(dropped) == {
        "tools.ls.input_schema.$schema",
        "tools.ls.input_schema.additionalProperties",
        "tools.ls.input_schema.properties.path.default",
        "tools.ls.input_schema.properties.items.items.properties.n.examples",
        "tools.web_search_20250305",
        "tool_choice.disable_parallel_tool_use",
    }


def test_schema_recursive_ref_is_bounded() -> None:
    dropped: list[str] = []
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/definitions/Node"}},
        "definitions": {
            "Node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/Node"}}}
        },
    }
    out = gemini_schema(schema, "s", dropped)
    depth = 0
    node = out["properties"]["node"]
    while "properties" in node:
        node = node["properties"]["child"]
        depth += 1
    assert node == {"type": "object"} and depth == 16
    assert dropped and all(d.endswith(".$ref") for d in dropped)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ({"type": "auto"}, {"mode": "AUTO"}),
        ({"type": "any"}, {"mode": "ANY"}),
        ({"type": "none"}, {"mode": "NONE"}),
    ],
)
def test_request_tool_choice(choice: dict[str, Any], config: dict[str, Any]) -> None:
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": choice,
    }
    assert anthropic_request_to_gemini(body)["toolConfig"] == {"functionCallingConfig": config}


def test_request_tool_round_trip_by_name_and_id() -> None:
    dropped: list[str] = []
    body = {
        "messages": [
            {"role": "user", "content": "run"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "plan", "signature": "gemini:S1"},
                    {"type": "thinking", "thinking": "", "signature": "gemini:S2"},
                    {"type": "tool_use", "id": "call_a", "name": "read", "input": {"p": 1}},
                    {
                        "type": "tool_use",
                        "id": GENERATED_ID_PREFIX + "r_1",
                        "name": "grep",
                        "input": {},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "data"},
                    {
                        "type": "tool_result",
                        "tool_use_id": GENERATED_ID_PREFIX + "r_1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "no"},
                            {"type": "text", "text": "match"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "Q",
                                },
                            },
                        ],
                    },
                    {"type": "tool_result", "tool_use_id": "stray", "content": "?"},
                    {"type": "text", "text": "go on"},
                ],
            },
        ]
    }
    out = anthropic_request_to_gemini(body, dropped=dropped)
    model, user = out["contents"][1], out["contents"][2]
    assert model["parts"] == [
        {"text": "plan", "thought": True, "thoughtSignature": "S1"},
        {
            "functionCall": {"id": "call_a", "name": "read", "args": {"p": 1}},
            "thoughtSignature": "S2",
        },
        {"functionCall": {"name": "grep", "args": {}}},  # our generated id is not Gemini's
    ]
    assert user["parts"] == [
        {"functionResponse": {"id": "call_a", "name": "read", "response": {"content": "data"}}},
        {"functionResponse": {"name": "grep", "response": {"error": "no\nmatch"}}},
        {"functionResponse": {"id": "stray", "name": "unknown", "response": {"content": "?"}}},
        {"inlineData": {"mimeType": "image/png", "data": "Q"}},
        {"text": "go on"},
    ]
    assert dropped == ["tool_result.name"]


def test_request_claude_signatures_dropped_and_fallback() -> None:
    dropped: list[str] = []
    body = {
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "EqClaudeSig"},
                    {"type": "redacted_thinking", "data": "xx"},
                    {"type": "tool_use", "id": "a", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "f", "input": {}},
                ],
            },
        ]
    }
    out = anthropic_request_to_gemini(
        body, thought_signature_fallback="skip_thought_signature_validator", dropped=dropped
    )
    parts = out["contents"][1]["parts"]
    assert parts[0] == {"text": "t", "thought": True}
    assert parts[1]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in parts[2]
    assert dropped == ["messages.content.thinking.signature", "messages.content.redacted_thinking"]


def test_request_thinking_and_system_messages() -> None:
    body = {
        "system": "s1",
        "messages": [
            {"role": "system", "content": "reminder"},
            {"role": "user", "content": [{"type": "text", "text": ""}]},
            {"role": "user", "content": "x"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    out = anthropic_request_to_gemini(body)
    assert out["systemInstruction"] == {"parts": [{"text": "s1"}, {"text": "reminder"}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "x"}]}]
    assert out["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048,
        "includeThoughts": True,
    }
    body["thinking"] = {"type": "adaptive"}
    assert anthropic_request_to_gemini(body)["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": -1,
        "includeThoughts": True,
    }


# --------------------------------------------------------------------------- Gemini -> Anthropic request


def test_gemini_request_basic_mapping() -> None:
    dropped: list[str] = []
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "look"},
                    {"inlineData": {"mimeType": "image/png", "data": "AA"}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "BB"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://b/x.jpg"}},
                    {"inlineData": {"mimeType": "audio/wav", "data": "CC"}},
                ],
            },
            {"role": "model", "parts": [{"text": "ok"}, {"thought": True, "text": "unsigned"}]},
        ],
        "systemInstruction": {"parts": [{"text": "a"}, {"text": "b"}]},
        "generationConfig": {
            "maxOutputTokens": 500,
            "temperature": 1.5,
            "topP": 0.5,
            "topK": 3,
            "stopSequences": ["x"],
            "candidateCount": 1,
            "responseMimeType": "text/plain",
        },
        "safetySettings": [],
        "tools": [{"googleSearch": {}}],
    }
    out = gemini_request_to_anthropic(body, model="claude", dropped=dropped)
    assert out == {
        "model": "claude",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "BB"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "gs://b/x.jpg"}},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        ],
        "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "max_tokens": 500,
        "temperature": 1.0,
        "top_p": 0.5,
        "top_k": 3,
        "stop_sequences": ["x"],
    }
    assert set(dropped) == {
        "contents.parts.inlineData.audio/wav",
        "contents.parts.thought",
        "generationConfig.candidateCount",
        "generationConfig.responseMimeType",
        "safetySettings",
        "tools.googleSearch",
    }


def test_gemini_request_pairs_responses_by_name_without_ids() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "read", "args": {"p": "a"}}},
                    {"functionCall": {"name": "read", "args": {"p": "b"}}},
                    {"functionCall": {"name": "ls", "args": {}}, "thoughtSignature": "G"},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"text": "results:"},
                    {"functionResponse": {"name": "ls", "response": {"output": "x y"}}},
                    {"functionResponse": {"name": "read", "response": {"content": "A"}}},
                    {"functionResponse": {"name": "read", "response": {"error": {"code": 1}}}},
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "read",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"p": {"type": "STRING", "nullable": True}},
                        },
                    },
                    {"name": "ls"},
                    {"name": "js", "parametersJsonSchema": {"type": "object", "$defs": {}}},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["ls"]}},
    }
    out = gemini_request_to_anthropic(body, model="claude")
    calls = out["messages"][1]["content"]
    assert [c["id"] for c in calls] == [
        GENERATED_ID_PREFIX + "1_0",
        GENERATED_ID_PREFIX + "1_1",
        GENERATED_ID_PREFIX + "1_2",
    ]
    results = out["messages"][2]["content"]
    assert results == [
        {"type": "tool_result", "tool_use_id": GENERATED_ID_PREFIX + "1_2", "content": "x y"},
        {"type": "tool_result", "tool_use_id": GENERATED_ID_PREFIX + "1_0", "content": "A"},
        {
            "type": "tool_result",
            "tool_use_id": GENERATED_ID_PREFIX + "1_1",
            "content": '{"code":1}',
            "is_error": True,
        },
        {"type": "text", "text": "results:"},
    ]
    assert out["tools"] == [
        {
            "name": "read",
            "input_schema": {
                "type": "object",
                "properties": {"p": {"type": ["string", "null"]}},
            },
        },
        {"name": "ls", "input_schema": {"type": "object", "properties": {}}},
        {"name": "js", "input_schema": {"type": "object", "$defs": {}}},
    ]
    assert out["tool_choice"] == {"type": "tool", "name": "ls"}
    # Back to Gemini: the generated ids stay ours, names come from the calls.
    back = anthropic_request_to_gemini(out)
    assert back["contents"][2]["parts"][:3] == [
        {"functionResponse": {"name": "ls", "response": {"content": "x y"}}},
        {"functionResponse": {"name": "read", "response": {"content": "A"}}},
        {"functionResponse": {"name": "read", "response": {"error": '{"code":1}'}}},
    ]


def test_gemini_request_function_response_with_media_parts() -> None:
    body = {
        "contents": [
            {
                "role": "model",
                "parts": [{"functionCall": {"id": "c1", "name": "shot", "args": {}}}],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "id": "c1",
                            "name": "shot",
                            "response": {"content": "done"},
                            "parts": [{"inlineData": {"mimeType": "image/png", "data": "PNG"}}],
                        }
                    }
                ],
            },
        ]
    }
    out = gemini_request_to_anthropic(body, model="m")
    assert out["messages"][1]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "c1",
            "content": [
                {"type": "text", "text": "done"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "PNG"},
                },
            ],
        }
    ]


@pytest.mark.parametrize(
    ("config", "max_out", "expected"),
    [
        ({"thinkingBudget": 4000, "includeThoughts": True}, 8000, 4000),
        ({"thinkingBudget": 4000}, 3000, 2999),
        ({"thinkingBudget": -1, "includeThoughts": True}, 64000, 8192),
        ({"thinkingLevel": "high"}, 64000, 24576),
        ({"includeThoughts": True}, 64000, 8192),
        ({"thinkingBudget": 0}, 64000, None),
        ({"thinkingBudget": 2000}, 900, None),
    ],
)
def test_gemini_request_thinking(
    config: dict[str, Any], max_out: int, expected: int | None
) -> None:
    dropped: list[str] = []
    body = {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "generationConfig": {
            "maxOutputTokens": max_out,
            "thinkingConfig": config,
            "temperature": 0.3,
        },
    }
    out = gemini_request_to_anthropic(body, model="m", dropped=dropped)
    if expected is None:
        assert "thinking" not in out and out["temperature"] == 0.3
    else:
        assert out["thinking"] == {"type": "enabled", "budget_tokens": expected}
        assert "temperature" not in out and dropped == ["generationConfig.temperature"]


def test_gemini_request_thinking_dropped_when_tool_turn_lost_its_thoughts() -> None:
    dropped: list[str] = []
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "x"}]},
            {"role": "model", "parts": [{"functionCall": {"id": "a", "name": "f", "args": {}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"id": "a", "name": "f", "response": {}}}],
            },
        ],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 2048}, "maxOutputTokens": 9000},
    }
    out = gemini_request_to_anthropic(body, model="m", dropped=dropped)
    assert "thinking" not in out and "generationConfig.thinkingConfig" in dropped
    assert out["messages"][2]["content"][0]["content"] == "{}"
    body["contents"][1]["parts"].insert(0, {"thought": True, "text": "t", "thoughtSignature": "S"})
    out = gemini_request_to_anthropic(body, model="m")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert out["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "t",
        "signature": "S",
    }


# --------------------------------------------------------------------------- Gemini -> Anthropic response


def test_response_to_anthropic() -> None:
    resp = gchunk(
        [
            {"text": "hmm", "thought": True, "thoughtSignature": "TS"},
            {"text": "Hi "},
            {"text": "there"},
            {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "FS"},
            {"functionCall": {"id": "g1", "name": "g", "args": {}}},
        ],
        "STOP",
        usageMetadata=USAGE,
    )
    out = gemini_response_to_anthropic(resp, model="gemini-x")
    assert out["id"] == "msg_r1" and out["model"] == "gemini-x"
    assert out["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "gemini:TS"},
        {"type": "text", "text": "Hi there"},
        {"type": "thinking", "thinking": "", "signature": "gemini:FS"},
        {"type": "tool_use", "id": GENERATED_ID_PREFIX + "r1_0", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "g1", "name": "g", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"
    assert out["usage"] == {
        "input_tokens": 40,
        "output_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
    }


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("PROHIBITED_CONTENT", "refusal"),
        ("MALFORMED_FUNCTION_CALL", "end_turn"),
        ("OTHER", "end_turn"),
        ("SOMETHING_NEW", "end_turn"),
    ],
)
def test_finish_reasons(finish: str, stop: str) -> None:
    resp = gchunk([{"text": "x"}], finish, usageMetadata=USAGE)
    assert gemini_response_to_anthropic(resp, model="m")["stop_reason"] == stop
    streamed = g2a_stream(sse(resp))
    assert streamed["stop_reason"] == stop


def test_blocked_prompt_is_a_refusal() -> None:
    resp = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}}
    out = gemini_response_to_anthropic(resp, model="m")
    assert out["stop_reason"] == "refusal" and out["content"] == []
    t = GeminiToAnthropicStream(model="m")
    got = parse_anthropic_sse(run_stream(t, [sse(resp)]))
    assert got["stop_reason"] == "refusal" == t.stop_reason and got["usage"]["input_tokens"] == 9


def test_generated_ids_differ_without_response_id() -> None:
    resp = gchunk([{"functionCall": {"name": "f", "args": {}}}], "STOP")
    del resp["responseId"]
    a = gemini_response_to_anthropic(resp, model="m")["content"][0]["id"]
    b = gemini_response_to_anthropic(resp, model="m")["content"][0]["id"]
    assert a != b and a.startswith(GENERATED_ID_PREFIX) and b.startswith(GENERATED_ID_PREFIX)


# --------------------------------------------------------------------------- Gemini -> Anthropic stream


def test_stream_tool_calls() -> None:
    data = sse(
        gchunk([{"text": "Let me "}], usageMetadata={"promptTokenCount": 100}),
        gchunk([{"text": "check."}]),
        gchunk([{"functionCall": {"name": "read", "args": {"path": "é/😀"}}}]),
        gchunk(
            [{"functionCall": {"id": "x", "name": "ls", "args": {}}}], "STOP", usageMetadata=USAGE
        ),
    )
    for one_byte in (False, True):
        t = GeminiToAnthropicStream(model="gemini-x")
        out = run_stream(t, split_bytes(data, random.Random(1), one_byte))
        got = parse_anthropic_sse(out)
        assert got["content"] == [
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": GENERATED_ID_PREFIX + "r1_0",
                "name": "read",
                "input": {"path": "é/😀"},
            },
            {"type": "tool_use", "id": "x", "name": "ls", "input": {}},
        ]
        assert got["stop_reason"] == "tool_use" == t.stop_reason
        assert got["usage"]["input_tokens"] == 40 and got["usage"]["output_tokens"] == 12
        assert t.finished and not t.errored
        # message_start already knew the prompt size
        assert b'"input_tokens":100,"output_tokens":0' in out.split(b"\n\n")[0]


def test_stream_waits_for_usage_after_finish() -> None:
    t = GeminiToAnthropicStream(model="m")
    out = t.feed(sse(gchunk([{"text": "a"}], "STOP")))
    assert b"message_delta" not in out and not t.finished
    out += t.feed(sse({"usageMetadata": USAGE, "responseId": "r1"}))
    assert t.finished and t.usage.output_tokens == 12
    assert t.feed(sse(gchunk([{"text": "late"}]))) == b""
    assert parse_anthropic_sse(out + t.close())["content"] == [{"type": "text", "text": "a"}]


def test_stream_error_and_truncation() -> None:
    t = GeminiToAnthropicStream(model="m")
    err = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    out = run_stream(t, [sse(gchunk([{"text": "a"}]), err)])
    assert t.errored and b'"type":"rate_limit_error","message":"quota"' in out
    t = GeminiToAnthropicStream(model="m")
    out = run_stream(t, [sse(gchunk([{"text": "a"}]))])
    assert t.errored and out.rstrip().split(b"\n\n")[-1].startswith(b"event: error")


def test_stream_json_array_body_and_no_trailing_blank_line() -> None:
    # Without alt=sse Gemini sends a JSON array; a last event may lack its blank line.
    body = orjson.dumps([gchunk([{"text": "a"}]), gchunk([{"text": "b"}], "STOP")])
    t = GeminiToAnthropicStream(model="m")
    got = parse_anthropic_sse(run_stream(t, [b"data: " + body]))
    assert got["content"] == [{"type": "text", "text": "ab"}] and got["stop_reason"] == "end_turn"


# --------------------------------------------------------------------------- Anthropic -> Gemini response


def test_anthropic_response_to_gemini() -> None:
    o = Output(
        thinking="plan",
        texts=["a", "b"],
        tools=[("toolu_1", "f", {"x": [1, 2]})],
        stop="tool_use",
        usage=Usage(10, 20, 30, 5),
    )
    out = anthropic_response_to_gemini(render_anthropic_response(o), model="claude-x")
    assert out == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "plan", "thought": True, "thoughtSignature": "sig"},
                        {"text": "a"},
                        {"text": "b"},
                        {"functionCall": {"id": "toolu_1", "name": "f", "args": {"x": [1, 2]}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 45,
            "candidatesTokenCount": 20,
            "totalTokenCount": 65,
            "cachedContentTokenCount": 30,
        },
        "modelVersion": "claude-x",
        "responseId": "msg_1",
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "STOP"),
        ("stop_sequence", "STOP"),
        ("tool_use", "STOP"),
        ("max_tokens", "MAX_TOKENS"),
        ("refusal", "SAFETY"),
        ("pause_turn", "STOP"),
    ],
)
def test_anthropic_stop_reasons(stop: str, finish: str) -> None:
    o = Output(texts=["x"], stop=stop)
    assert (
        anthropic_response_to_gemini(render_anthropic_response(o))["candidates"][0]["finishReason"]
        == finish
    )
    t = AnthropicToGeminiStream()
    got = parse_gemini_sse(run_stream(t, [render_anthropic_stream(o, random.Random(0))]))
    assert got["finishReason"] == finish == t.finish_reason


# --------------------------------------------------------------------------- Anthropic -> Gemini stream


def test_anthropic_stream_tool_call_emitted_whole_at_block_stop() -> None:
    o = Output(texts=["Reading"], tools=[("toolu_9", "read", {"path": "/tmp/é"})], stop="tool_use")
    data = render_anthropic_stream(o, random.Random(3))
    for one_byte in (False, True):
        t = AnthropicToGeminiStream(model="claude-x")
        out = run_stream(t, split_bytes(data, random.Random(2), one_byte))
        events = out[:-4].split(b"\r\n\r\n")
        calls = [e for e in events if b"functionCall" in e]
        assert len(calls) == 1 and b"finishReason" in calls[0]  # rides with the finish
        got = parse_gemini_sse(out)
        assert got["parts"] == [
            {"text": "Reading"},
            {"functionCall": {"id": "toolu_9", "name": "read", "args": {"path": "/tmp/é"}}},
        ]
        assert got["modelVersion"] == "claude-x" and got["responseId"] == "msg_1"


def test_anthropic_stream_error_and_early_end() -> None:
    t = AnthropicToGeminiStream()
    err = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    out = run_stream(t, [err])
    assert t.errored
    assert orjson.loads(out[6:]) == {
        "error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}
    }
    t = AnthropicToGeminiStream()
    data = render_anthropic_stream(Output(texts=["x"]), random.Random(0))
    out = run_stream(t, [data[: data.index(b"event: message_delta")]])
    assert t.errored and b'"status":"INTERNAL"' in out


def test_anthropic_stream_bad_tool_json_kept_raw() -> None:
    events = [
        {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {}},
        {"type": "message_stop"},
    ]
    data = b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )
    got = parse_gemini_sse(run_stream(AnthropicToGeminiStream(), [data]))
    assert got["parts"] == [
        {"functionCall": {"id": "t", "name": "f", "args": {"_raw_arguments": '{"a":'}}}
    ]
    assert got["finishReason"] == "MAX_TOKENS"


def test_helpers_render_consistently() -> None:
    g = GeminiOutput(
        thought="t",
        thought_signature="S",
        texts=["a", "b"],
        calls=[("", "f", {"k": 1}, "C")],
        prompt=10,
        cached=4,
        candidates=3,
        thoughts=2,
    )
    rng = random.Random(5)
    got = parse_anthropic_sse(
        run_stream(GeminiToAnthropicStream(model="m"), [render_gemini_stream(g, rng)])
    )
    assert got["content"] == g.expected_content()
    assert json.loads(json.dumps(render_gemini_response(g)))["responseId"] == "resp-1"
