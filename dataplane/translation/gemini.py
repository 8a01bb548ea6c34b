"""Anthropic Messages API <-> Google Gemini ``generateContent`` translation.

The Gemini side is the body of ``v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` (Vertex AI takes the same body). Pure and
synchronous like the rest of the package: dicts and bytes in, dicts and bytes
out. Only the camelCase JSON the SDKs and the Gemini CLI send is read.

Anthropic client, Gemini model (Claude Code served by Gemini):

* ``anthropic_request_to_gemini(body, *, thought_signature_fallback=None,
  dropped=None) -> dict`` -- the model goes in the URL, and streaming is the
  choice of endpoint, so neither is in the body;
* ``gemini_response_to_anthropic(resp, *, model) -> dict``;
* ``GeminiToAnthropicStream(*, model)`` -- ``feed(bytes) -> bytes``,
  ``close() -> bytes``, ``.usage``, ``.stop_reason``, ``.finished``,
  ``.errored``: Gemini SSE in, Anthropic SSE out.

Gemini client, Claude model (Gemini CLI served by Claude):

* ``gemini_request_to_anthropic(body, *, model, default_max_tokens=4096,
  dropped=None) -> dict``;
* ``anthropic_response_to_gemini(resp, *, model=None) -> dict``;
* ``AnthropicToGeminiStream(*, model=None)`` -- Anthropic SSE in, Gemini SSE
  out (``data: {GenerateContentResponse}\\r\\n\\r\\n`` per chunk; the last
  chunk carries ``finishReason`` and ``usageMetadata``).

Mappings:

* ``tool_use`` <-> ``functionCall`` (``input`` <-> ``args``, ``id`` <-> ``id``).
  Gemini often gives no id: one is generated (``GENERATED_ID_PREFIX``,
  deterministic from ``responseId`` when there is one) and, being ours, is not
  sent back to Gemini. ``functionResponse.name`` must be the function's name,
  so the name is looked up from the ``tool_use`` with that id earlier in the
  conversation; in the other direction a ``functionResponse`` without id is
  paired with the oldest unanswered ``functionCall`` of that name.
* ``tool_result`` <-> ``functionResponse.response``: ``{"content": text}``, or
  ``{"error": text}`` when ``is_error``. Coming from Gemini, a one-key
  response under ``content``/``output``/``result``/``error`` with a string
  value gives that string; any other response is sent as its JSON text.
* ``thinking`` <-> ``thought`` parts; images (and PDFs) <-> ``inlineData``,
  URL sources <-> ``fileData``.
* Thought signatures: a Gemini ``thoughtSignature`` shown to an Anthropic
  client is prefixed with ``GEMINI_SIGNATURE_PREFIX``; only prefixed
  signatures go back to Gemini (a Claude signature would be rejected). A
  signature on a ``functionCall`` part (required back by Gemini 3) travels as
  an empty ``thinking`` block right before the ``tool_use``; an empty signed
  thinking block gives its signature to the next part of its turn.
  Signatures on plain text parts are optional for Gemini and are dropped.
* Stop reasons: STOP -> ``end_turn`` (``tool_use`` when a function was
  called), MAX_TOKENS -> ``max_tokens``, SAFETY / RECITATION / BLOCKLIST /
  PROHIBITED_CONTENT / SPII / IMAGE_SAFETY / LANGUAGE and a blocked prompt ->
  ``refusal``, MALFORMED_FUNCTION_CALL and anything else -> ``end_turn``.
  Back: ``max_tokens`` -> MAX_TOKENS, ``refusal`` -> SAFETY, else STOP.
* Usage: ``promptTokenCount`` includes cached tokens, so ``input_tokens`` is
  ``promptTokenCount + toolUsePromptTokenCount - cachedContentTokenCount`` and
  ``cache_read_input_tokens`` is ``cachedContentTokenCount``; thoughts count
  as output. Back, all output goes in ``candidatesTokenCount``.

Documented normalisations (a request round trip gives the original back up
to these):

* system text blocks and ``role: "system"`` messages all become
  ``systemInstruction`` parts; back, one part is a string, several are text
  blocks; ``cache_control`` is dropped;
* string content becomes one text block; empty text blocks, and turns left
  empty, are dropped;
* tool results are flattened to text (text blocks joined with ``"\\n"``);
  images inside a tool result follow the function responses as parts of the
  same user turn (multimodal function responses are not universally accepted);
* thinking: see thought signatures above; unsigned thought parts are not sent
  to Claude, and thinking without a Gemini signature reaches Gemini unsigned;
* tool schemas are cut to the OpenAPI subset Gemini accepts: unknown keys
  (``additionalProperties``, ``$schema``, ``default``, ``examples``, ...) are
  dropped and named in ``dropped``, local ``$ref`` is inlined, ``oneOf``
  becomes ``anyOf``, ``const`` a one-value ``enum``, a ``"null"`` member of a
  ``type`` list ``nullable``; a schema without properties is left out. Back,
  ``type`` names are lower-cased and ``nullable`` becomes a ``"null"`` type.
* ``temperature`` is clamped to Anthropic's 0..1; with thinking,
  ``temperature``/``topP``/``topK`` are dropped.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from dataplane.translation.common import EFFORT_BUDGET, JSON, Usage, dumps_str, note
from dataplane.translation.sse import SSEParser

GEMINI_SIGNATURE_PREFIX = "gemini:"
GENERATED_ID_PREFIX = "toolu_gem_"
DEFAULT_MAX_TOKENS = 4096
# Anthropic budget for Gemini's dynamic thinking (thinkingBudget -1).
DYNAMIC_THINKING_BUDGET = 8192

GEMINI_TO_ANTHROPIC_STOP: dict[str, str] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "IMAGE_PROHIBITED_CONTENT": "refusal",
    "LANGUAGE": "refusal",
    "MALFORMED_FUNCTION_CALL": "end_turn",
    "UNEXPECTED_TOOL_CALL": "end_turn",
    "TOO_MANY_TOOL_CALLS": "end_turn",
    "OTHER": "end_turn",
    "FINISH_REASON_UNSPECIFIED": "end_turn",
}

ANTHROPIC_TO_GEMINI_STOP: dict[str, str] = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "model_context_window_exceeded": "MAX_TOKENS",
    "refusal": "SAFETY",
}

_ANTHROPIC_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
    }
)
_GEMINI_FIELDS = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"}
)

# The OpenAPI-subset keys Gemini's FunctionDeclaration.parameters accepts.
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "minimum",
        "maximum",
    }
)
_MAX_REF_DEPTH = 16

_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_gemini(meta: Any) -> Usage:
    """Gemini ``usageMetadata`` as Anthropic-shaped ``Usage``."""
    if not isinstance(meta, dict):
        return Usage()
    prompt = _int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount"))
    cached = _int(meta.get("cachedContentTokenCount"))
    thoughts = _int(meta.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=_int(meta.get("candidatesTokenCount")) + thoughts,
        cache_read_input_tokens=cached,
        reasoning_tokens=thoughts,
    )


def usage_to_gemini(usage: Usage) -> JSON:
    prompt = usage.prompt_tokens
    out: JSON = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": prompt + usage.output_tokens,
    }
    if usage.cache_read_input_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_input_tokens
    return out


def map_gemini_finish(finish: Any) -> str | None:
    if not isinstance(finish, str):
        return None
    return GEMINI_TO_ANTHROPIC_STOP.get(finish, "end_turn")


def map_anthropic_stop(stop_reason: Any) -> str:
    return ANTHROPIC_TO_GEMINI_STOP.get(stop_reason, "STOP") if stop_reason else "STOP"


def _id_base(response_id: Any) -> str:
    if isinstance(response_id, str) and response_id:
        base = "".join(c for c in response_id if c.isascii() and (c.isalnum() or c in "_-"))
        if base:
            return base[:48]
    return uuid.uuid4().hex[:24]


def _own_signature(signature: Any) -> str | None:
    """The Gemini signature inside an Anthropic thinking signature, if it is one."""
    if isinstance(signature, str) and signature.startswith(GEMINI_SIGNATURE_PREFIX):
        return signature[len(GEMINI_SIGNATURE_PREFIX) :] or None
    return None


# --------------------------------------------------------------------------- schemas


def gemini_schema(schema: Any, path: str = "", dropped: list[str] | None = None) -> Any:
    """A JSON Schema cut down to the OpenAPI subset Gemini's ``parameters`` accepts."""
    if not isinstance(schema, dict):
        return schema
    defs: JSON = {}
    for key in ("$defs", "definitions"):
        value = schema.get(key)
        if isinstance(value, dict):
            defs.update(value)
    return _schema(schema, path, dropped, defs, 0)


def _schema(schema: JSON, path: str, dropped: list[str] | None, defs: JSON, depth: int) -> JSON:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
        if not isinstance(target, dict) or depth >= _MAX_REF_DEPTH:
            note(dropped, f"{path}.$ref")
            return {"type": "object"}
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _schema(merged, path, dropped, defs, depth + 1)
    out: JSON = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {
                name: _schema(sub, f"{path}.properties.{name}", dropped, defs, depth)
                if isinstance(sub, dict)
                else sub
                for name, sub in value.items()
            }
        elif key == "items":
            if isinstance(value, dict):
                out[key] = _schema(value, f"{path}.items", dropped, defs, depth)
            else:
                note(dropped, f"{path}.items")
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            if key == "oneOf" and "anyOf" in schema:
                note(dropped, f"{path}.oneOf")
                continue
            out["anyOf"] = [
                _schema(sub, f"{path}.{key}", dropped, defs, depth)
                if isinstance(sub, dict)
                else sub
                for sub in value
            ]
        elif key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            if len(kinds) == 1:
                out["type"] = kinds[0]
            elif kinds:
                out["anyOf"] = [{"type": k} for k in kinds]
        elif key == "const":
            if isinstance(value, str):
                out["enum"] = [value]
            else:
                note(dropped, f"{path}.const")
        elif key in _SCHEMA_KEYS:
            out[key] = value
        elif key not in ("$defs", "definitions"):
            note(dropped, f"{path}.{key}")
    required = out.get("required")
    properties = out.get("properties")
    if isinstance(required, list) and isinstance(properties, dict):
        out["required"] = [r for r in required if r in properties]
    return out


def json_schema_from_gemini(schema: Any) -> Any:
    """Gemini's OpenAPI ``Schema`` (upper-case types, ``nullable``) as JSON Schema."""
    if isinstance(schema, list):
        return [json_schema_from_gemini(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema_from_gemini(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = json_schema_from_gemini(value)
        elif key != "nullable":
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# --------------------------------------------------------------------------- Anthropic -> Gemini request


def _media_part(block: JSON, dropped: list[str] | None, path: str) -> JSON | None:
    source = block.get("source")
    if not isinstance(source, dict):
        note(dropped, path)
        return None
    kind = source.get("type")
    if kind == "base64":
        default = "application/pdf" if block.get("type") == "document" else "image/png"
        return {
            "inlineData": {
                "mimeType": source.get("media_type") or default,
                "data": source.get("data", ""),
            }
        }
    if kind == "url":
        url = source.get("url", "")
        ext = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower() if "." in url else ""
        default = "application/pdf" if block.get("type") == "document" else "image/jpeg"
        return {"fileData": {"mimeType": _EXT_MIME.get(ext, default), "fileUri": url}}
    if kind == "text" and block.get("type") == "document":
        data = source.get("data", "")
        return {"text": data} if data else None
    note(dropped, path)
    return None


def _result_text(content: Any, images: list[JSON], dropped: list[str] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            texts.append(part.get("text", ""))
        elif kind in ("image", "document"):
            media = _media_part(part, dropped, "tool_result.content.image")
            if media is not None:
                images.append(media)
        else:
            note(dropped, f"tool_result.content.{kind}")
    return "\n".join(texts)


def _gemini_parts(
    content: Any,
    names: dict[str, str],
    dropped: list[str] | None,
) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    responses: list[JSON] = []
    result_images: list[JSON] = []
    parts: list[JSON] = []
    pending_signature: str | None = None
    for block in content or ():
        kind = block.get("type")
        part: JSON | None = None
        if kind == "text":
            text = block.get("text")
            if text:
                part = {"text": text}
        elif kind == "thinking":
            signature = _own_signature(block.get("signature"))
            if block.get("signature") and signature is None:
                note(dropped, "messages.content.thinking.signature")
            text = block.get("thinking") or ""
            if not text:
                if signature:
                    pending_signature = signature
                continue
            part = {"text": text, "thought": True}
            if signature:
                part["thoughtSignature"] = signature
        elif kind == "tool_use":
            tool_id = block.get("id") or ""
            name = block.get("name", "")
            call: JSON = {}
            if tool_id and not tool_id.startswith(GENERATED_ID_PREFIX):
                call["id"] = tool_id
            call["name"] = name
            args = block.get("input")
            call["args"] = args if isinstance(args, dict) else {}
            if tool_id:
                names[tool_id] = name
            part = {"functionCall": call}
        elif kind == "tool_result":
            tool_id = block.get("tool_use_id") or ""
            name = names.get(tool_id)
            if name is None:
                note(dropped, "tool_result.name")
                name = "unknown"
            text = _result_text(block.get("content"), result_images, dropped)
            response: JSON = {"functionResponse": {}}
            fr = response["functionResponse"]
            if tool_id and not tool_id.startswith(GENERATED_ID_PREFIX):
                fr["id"] = tool_id
            fr["name"] = name
            fr["response"] = {"error": text} if block.get("is_error") else {"content": text}
            responses.append(response)
            continue
        elif kind in ("image", "document"):
            part = _media_part(block, dropped, f"messages.content.{kind}.source")
        else:
            note(dropped, f"messages.content.{kind}")
            continue
        if part is None:
            continue
        if pending_signature is not None and "thoughtSignature" not in part:
            part["thoughtSignature"] = pending_signature
            pending_signature = None
        parts.append(part)
    if pending_signature is not None:
        parts.append({"text": "", "thought": True, "thoughtSignature": pending_signature})
    if responses or result_images:
        return responses + result_images + parts
    return parts


def _system_parts(system: Any, dropped: list[str] | None) -> list[JSON]:
    if not system:
        return []
    if isinstance(system, str):
        return [{"text": system}]
    parts: list[JSON] = []
    for block in system:
        if "cache_control" in block:
            note(dropped, "system.cache_control")
        text = block.get("text")
        if text:
            parts.append({"text": text})
    return parts


def anthropic_request_to_gemini(
    body: JSON,
    *,
    thought_signature_fallback: str | None = None,
    dropped: list[str] | None = None,
) -> JSON:
    """A Messages API request as a ``generateContent`` body.

    ``thought_signature_fallback``, when set (Google documents
    ``"skip_thought_signature_validator"``), is put on the first function call
    of a model turn that has no Gemini signature, for histories Gemini 3
    would otherwise reject. Fields without an equivalent are left out and,
    when ``dropped`` is a list, named in it.
    """
    system = _system_parts(body.get("system"), dropped)
    contents: list[JSON] = []
    names: dict[str, str] = {}
    for message in body.get("messages") or ():
        role = message.get("role")
        content = message.get("content", "")
        if role == "system":
            system += _system_parts(content, dropped)
            continue
        if role not in ("user", "assistant"):
            note(dropped, f"messages.role.{role}")
            continue
        model_turn = role == "assistant"
        parts = _gemini_parts(content, names, dropped)
        if not parts:
            continue
        if model_turn and thought_signature_fallback:
            for part in parts:
                if "functionCall" in part:
                    part.setdefault("thoughtSignature", thought_signature_fallback)
                    break
        contents.append({"role": "model" if model_turn else "user", "parts": parts})

    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}

    tools = body.get("tools")
    declarations: list[JSON] = []
    for tool in tools or ():
        if "input_schema" not in tool:
            note(dropped, f"tools.{tool.get('type') or tool.get('name')}")
            continue
        name = tool.get("name", "")
        declaration: JSON = {"name": name}
        if tool.get("description"):
            declaration["description"] = tool["description"]
        schema = gemini_schema(tool["input_schema"], f"tools.{name}.input_schema", dropped)
        if isinstance(schema, dict) and schema.get("properties"):
            declaration["parameters"] = schema
        declarations.append(declaration)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            kind = choice.get("type")
            config: JSON | None = None
            if kind == "auto":
                config = {"mode": "AUTO"}
            elif kind == "any":
                config = {"mode": "ANY"}
            elif kind == "none":
                config = {"mode": "NONE"}
            elif kind == "tool":
                config = {"mode": "ANY", "allowedFunctionNames": [choice.get("name", "")]}
            if config is not None:
                out["toolConfig"] = {"functionCallingConfig": config}
            if choice.get("disable_parallel_tool_use"):
                note(dropped, "tool_choice.disable_parallel_tool_use")
    elif "tool_choice" in body:
        note(dropped, "tool_choice")

    generation: JSON = {}
    if "max_tokens" in body:
        generation["maxOutputTokens"] = body["max_tokens"]
    for src, dst in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if body.get(src) is not None:
            generation[dst] = body[src]
    if body.get("stop_sequences"):
        generation["stopSequences"] = list(body["stop_sequences"])
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            generation["thinkingConfig"] = {
                "thinkingBudget": budget if isinstance(budget, int) else -1,
                "includeThoughts": True,
            }
        elif kind == "adaptive":
            generation["thinkingConfig"] = {"thinkingBudget": -1, "includeThoughts": True}
    if generation:
        out["generationConfig"] = generation

    if dropped is not None:
        dropped.extend(k for k in body if k not in _ANTHROPIC_FIELDS)
    return out


# --------------------------------------------------------------------------- Gemini -> Anthropic request


def _media_block(part: JSON, dropped: list[str] | None) -> JSON | None:
    inline = part.get("inlineData")
    if isinstance(inline, dict):
        mime = inline.get("mimeType") or ""
        data = inline.get("data", "")
        source = {"type": "base64", "media_type": mime, "data": data}
        if mime.startswith("image/"):
            return {"type": "image", "source": source}
        if mime == "application/pdf":
            return {"type": "document", "source": source}
        note(dropped, f"contents.parts.inlineData.{mime}")
        return None
    file = part.get("fileData")
    if isinstance(file, dict):
        mime = file.get("mimeType") or ""
        url = file.get("fileUri", "")
        if mime == "application/pdf":
            return {"type": "document", "source": {"type": "url", "url": url}}
        if mime.startswith("image/") or not mime:
            return {"type": "image", "source": {"type": "url", "url": url}}
        note(dropped, f"contents.parts.fileData.{mime}")
    return None


def _tool_result_content(response: Any) -> tuple[str, bool]:
    if isinstance(response, dict) and len(response) == 1:
        ((key, value),) = response.items()
        if key in ("content", "output", "result", "error") and isinstance(value, str):
            return value, key == "error"
        if key == "error":
            return dumps_str(value), True
    if response is None:
        return "", False
    return dumps_str(response), False


def _function_response_block(fr: JSON, tool_id: str, dropped: list[str] | None) -> JSON:
    text, is_error = _tool_result_content(fr.get("response"))
    content: Any = text
    media = [b for p in fr.get("parts") or () if (b := _media_block(p, dropped)) is not None]
    if media:
        content = ([{"type": "text", "text": text}] if text else []) + media
    block: JSON = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    if is_error:
        block["is_error"] = True
    return block


def gemini_request_to_anthropic(
    body: JSON,
    *,
    model: str,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    dropped: list[str] | None = None,
) -> JSON:
    """A ``generateContent`` body as a Messages API request for ``model``.

    ``default_max_tokens`` fills Anthropic's required ``max_tokens`` when
    ``generationConfig.maxOutputTokens`` is absent. Fields without an
    equivalent are left out and, when ``dropped`` is a list, named in it.
    """
    messages: list[JSON] = []
    unanswered: dict[str, list[str]] = {}  # function name -> generated ids awaiting a response
    signature_noted = False
    for ci, content in enumerate(body.get("contents") or ()):
        role = content.get("role") or "user"
        model_turn = role == "model"
        blocks: list[JSON] = []
        results: list[JSON] = []
        for pi, part in enumerate(content.get("parts") or ()):
            if part.get("thought"):
                signature = part.get("thoughtSignature")
                if model_turn and signature:
                    blocks.append(
                        {
                            "type": "thinking",
                            "thinking": part.get("text") or "",
                            "signature": signature,
                        }
                    )
                else:
                    note(dropped, "contents.parts.thought")
                continue
            if "thoughtSignature" in part and not signature_noted:
                note(dropped, "contents.parts.thoughtSignature")
                signature_noted = True
            if "text" in part:
                text = part.get("text")
                if text:
                    blocks.append({"type": "text", "text": text})
            elif "functionCall" in part:
                call = part["functionCall"] or {}
                name = call.get("name", "")
                tool_id = call.get("id")
                if not tool_id:
                    tool_id = f"{GENERATED_ID_PREFIX}{ci}_{pi}"
                    unanswered.setdefault(name, []).append(tool_id)
                args = call.get("args")
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": name,
                        "input": args if isinstance(args, dict) else {},
                    }
                )
            elif "functionResponse" in part:
                fr = part["functionResponse"] or {}
                tool_id = fr.get("id")
                if not tool_id:
                    queue = unanswered.get(fr.get("name", ""))
                    tool_id = queue.pop(0) if queue else f"{GENERATED_ID_PREFIX}{ci}_{pi}"
                results.append(_function_response_block(fr, tool_id, dropped))
            elif "inlineData" in part or "fileData" in part:
                if model_turn:
                    note(dropped, "contents.parts.model_media")
                    continue
                media = _media_block(part, dropped)
                if media is not None:
                    blocks.append(media)
            else:
                note(dropped, "contents.parts." + next(iter(part), "empty"))
        if results:
            blocks = results + blocks  # Anthropic wants tool results first
        if blocks:
            messages.append({"role": "assistant" if model_turn else "user", "content": blocks})

    out: JSON = {"model": model, "messages": messages}
    instruction = body.get("systemInstruction")
    if isinstance(instruction, dict):
        texts = [p["text"] for p in instruction.get("parts") or () if p.get("text")]
        if len(texts) == 1:
            out["system"] = texts[0]
        elif texts:
            out["system"] = [{"type": "text", "text": t} for t in texts]

    generation = body.get("generationConfig") or {}
    max_tokens = generation.get("maxOutputTokens") or default_max_tokens
    out["max_tokens"] = max_tokens

    thinking = generation.get("thinkingConfig")
    budget: int | None = None
    if isinstance(thinking, dict):
        raw = thinking.get("thinkingBudget")
        level = thinking.get("thinkingLevel")
        if isinstance(raw, int) and raw != 0:
            budget = raw if raw > 0 else DYNAMIC_THINKING_BUDGET
        elif isinstance(level, str):
            budget = EFFORT_BUDGET.get(level.lower(), DYNAMIC_THINKING_BUDGET)
        elif raw is None and thinking.get("includeThoughts"):
            budget = DYNAMIC_THINKING_BUDGET
    if budget is not None:
        budget = min(budget, max_tokens - 1)
        last_assistant = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
        unsigned_tool_turn = last_assistant is not None and (
            any(b["type"] == "tool_use" for b in last_assistant["content"])
            and last_assistant["content"][0]["type"] != "thinking"
        )
        # Claude rejects thinking when the turn in progress calls tools without
        # its thinking block (a client that dropped thought parts).
        if budget >= 1024 and not unsigned_tool_turn:
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        else:
            note(dropped, "generationConfig.thinkingConfig")

    for src, dst in (("temperature", "temperature"), ("topP", "top_p"), ("topK", "top_k")):
        value = generation.get(src)
        if value is None:
            continue
        if "thinking" in out:
            note(dropped, f"generationConfig.{src}")
        else:
            out[dst] = min(float(value), 1.0) if src == "temperature" else value
    stop = generation.get("stopSequences")
    if stop:
        out["stop_sequences"] = list(stop)
    if dropped is not None:
        dropped.extend(
            f"generationConfig.{k}"
            for k in generation
            if k
            not in (
                "maxOutputTokens",
                "thinkingConfig",
                "temperature",
                "topP",
                "topK",
                "stopSequences",
            )
        )

    tools: list[JSON] = []
    for tool in body.get("tools") or ():
        for key in tool:
            if key != "functionDeclarations":
                note(dropped, f"tools.{key}")
        for declaration in tool.get("functionDeclarations") or ():
            entry: JSON = {"name": declaration.get("name", "")}
            if declaration.get("description"):
                entry["description"] = declaration["description"]
            if "parametersJsonSchema" in declaration:
                schema = declaration["parametersJsonSchema"]
            elif "parameters" in declaration:
                schema = json_schema_from_gemini(declaration["parameters"])
            else:
                schema = {"type": "object", "properties": {}}
            entry["input_schema"] = schema
            tools.append(entry)
    if tools:
        out["tools"] = tools
        config = (body.get("toolConfig") or {}).get("functionCallingConfig")
        if isinstance(config, dict):
            mode = config.get("mode")
            allowed = config.get("allowedFunctionNames") or []
            if mode == "NONE":
                out["tool_choice"] = {"type": "none"}
            elif mode == "ANY" and len(allowed) == 1:
                out["tool_choice"] = {"type": "tool", "name": allowed[0]}
            elif mode == "ANY":
                out["tool_choice"] = {"type": "any"}
                if allowed:
                    note(dropped, "toolConfig.functionCallingConfig.allowedFunctionNames")
            elif mode in ("AUTO", "VALIDATED"):
                out["tool_choice"] = {"type": "auto"}

    if dropped is not None:
        dropped.extend(k for k in body if k not in _GEMINI_FIELDS)
    return out


# --------------------------------------------------------------------------- Gemini -> Anthropic response


class _Blocks:
    """Anthropic content blocks from Gemini parts, as a stream would build them.

    Consecutive thought parts make one thinking block (last signature wins),
    consecutive text parts one text block; a function call closes the block
    before it and is a block of its own, preceded by an empty signed thinking
    block when it carries a thought signature.
    """

    __slots__ = ("blocks", "id_base", "tools")

    def __init__(self, id_base: str) -> None:
        self.blocks: list[JSON] = []
        self.id_base = id_base
        self.tools = 0

    def add(self, part: JSON) -> None:
        blocks = self.blocks
        last = blocks[-1] if blocks else None
        if part.get("thought"):
            text = part.get("text") or ""
            signature = part.get("thoughtSignature")
            if last is None or last["type"] != "thinking" or last.get("_closed"):
                last = {"type": "thinking", "thinking": "", "signature": ""}
                blocks.append(last)
            last["thinking"] += text
            if signature:
                last["signature"] = GEMINI_SIGNATURE_PREFIX + signature
        elif "functionCall" in part:
            call = part["functionCall"] or {}
            signature = part.get("thoughtSignature")
            if signature:
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": "",
                        "signature": GEMINI_SIGNATURE_PREFIX + signature,
                        "_closed": True,
                    }
                )
            args = call.get("args")
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"{GENERATED_ID_PREFIX}{self.id_base}_{self.tools}",
                    "name": call.get("name", ""),
                    "input": args if isinstance(args, dict) else {},
                }
            )
            self.tools += 1
        else:
            text = part.get("text")
            if not text or not isinstance(text, str):
                return
            if last is None or last["type"] != "text":
                blocks.append({"type": "text", "text": text})
            else:
                last["text"] += text

    def result(self) -> list[JSON]:
        for block in self.blocks:
            block.pop("_closed", None)
        return self.blocks


def _message_id(response_id: Any) -> str:
    if isinstance(response_id, str) and response_id:
        return response_id if response_id.startswith("msg_") else "msg_" + response_id
    return "msg_tollgate"


def gemini_response_to_anthropic(resp: JSON, *, model: str) -> JSON:
    """A ``GenerateContentResponse`` as an Anthropic Message."""
    candidates = resp.get("candidates") or []
    candidate = candidates[0] if candidates else {}
    builder = _Blocks(_id_base(resp.get("responseId")))
    for part in (candidate.get("content") or {}).get("parts") or ():
        builder.add(part)
    content = builder.result()
    stop_reason = map_gemini_finish(candidate.get("finishReason"))
    if not candidates and (resp.get("promptFeedback") or {}).get("blockReason"):
        stop_reason = "refusal"
    stop_reason = stop_reason or "end_turn"
    if builder.tools and stop_reason == "end_turn":
        stop_reason = "tool_use"
    return {
        "id": _message_id(resp.get("responseId")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage_from_gemini(resp.get("usageMetadata")).to_anthropic(),
    }


# --------------------------------------------------------------------------- Gemini -> Anthropic stream

_NONE, _TEXT, _THINKING, _TOOL = 0, 1, 2, 3

_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA = b',"delta":{"type":"text_delta","text":'
_THINKING_DELTA = b',"delta":{"type":"thinking_delta","thinking":'
_SIGNATURE_DELTA = b',"delta":{"type":"signature_delta","signature":'
_JSON_DELTA = b',"delta":{"type":"input_json_delta","partial_json":'
_END = b"}}\n\n"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def _event(name: bytes, payload: JSON) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class GeminiToAnthropicStream:
    """``streamGenerateContent?alt=sse`` bytes in, Messages SSE bytes out.

    ``feed`` takes upstream bytes cut anywhere and returns the bytes to relay
    (possibly empty); ``close`` flushes at the end of the upstream body.
    Guarantees: exactly one ``message_start``; blocks started and stopped in
    order with sequential indices; each function call a ``tool_use`` block
    whose arguments go out as one ``input_json_delta``; ``message_delta``
    carries the final usage and ``stop_reason`` (``tool_use`` when a function
    was called, unless cut by MAX_TOKENS or refused).
    """

    __slots__ = (
        "_parser",
        "_model",
        "_started",
        "_finished",
        "_errored",
        "_kind",
        "_index",
        "_next_index",
        "_id_base",
        "_tools",
        "_finish_reason",
        "_blocked",
        "_usage",
        "_usage_seen",
    )

    def __init__(self, *, model: str) -> None:
        self._parser = SSEParser()
        self._model = model
        self._started = False
        self._finished = False
        self._errored = False
        self._kind = _NONE
        self._index = -1
        self._next_index = 0
        self._id_base = ""
        self._tools = 0
        self._finish_reason: str | None = None
        self._blocked = False
        self._usage = Usage()
        self._usage_seen = False

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def usage_known(self) -> bool:
        return self._usage_seen

    @property
    def stop_reason(self) -> str | None:
        if self._blocked:
            return "refusal"
        reason = map_gemini_finish(self._finish_reason)
        if reason is None:
            return "tool_use" if self._tools and self._finished else None
        if self._tools and reason == "end_turn":
            return "tool_use"
        return reason

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def errored(self) -> bool:
        return self._errored

    def feed(self, chunk: bytes) -> bytes:
        if self._finished:
            return b""
        out: list[bytes] = []
        for _event_name, data in self._parser.feed(chunk):
            self._handle(data, out)
            if self._finished:
                break
        return b"".join(out)

    def close(self) -> bytes:
        out: list[bytes] = []
        if not self._finished:
            for _event_name, data in self._parser.close():
                self._handle(data, out)
                if self._finished:
                    break
        if not self._finished:
            if self._finish_reason is None and not self._blocked and not self._tools:
                self._error(out, "api_error", "upstream stream ended before a finishReason")
            else:
                self._finish(out)
        return b"".join(out)

    def _handle(self, data: bytes, out: list[bytes]) -> None:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        for chunk in value if isinstance(value, list) else (value,):
            if isinstance(chunk, dict):
                self._chunk(chunk, out)
            if self._finished:
                return

    def _chunk(self, chunk: JSON, out: list[bytes]) -> None:
        error = chunk.get("error")
        if error is not None:
            if isinstance(error, dict):
                kind = _ERROR_TYPES.get(_int(error.get("code")), "api_error")
                self._error(out, kind, str(error.get("message", error)))
            else:
                self._error(out, "api_error", str(error))
            return
        meta = chunk.get("usageMetadata")
        if meta:
            self._usage = usage_from_gemini(meta)
            self._usage_seen = True
        if not self._started:
            self._start(chunk, out)
        candidates = chunk.get("candidates")
        if candidates:
            candidate = candidates[0]
            for part in (candidate.get("content") or {}).get("parts") or ():
                if isinstance(part, dict):
                    self._part(part, out)
            finish = candidate.get("finishReason")
            if finish:
                self._finish_reason = finish
        elif (chunk.get("promptFeedback") or {}).get("blockReason"):
            self._blocked = True
        if (self._finish_reason is not None or self._blocked) and self._usage_seen and meta:
            self._finish(out)

    def _start(self, chunk: JSON, out: list[bytes]) -> None:
        self._started = True
        self._id_base = _id_base(chunk.get("responseId"))
        payload = {
            "type": "message_start",
            "message": {
                "id": _message_id(chunk.get("responseId")),
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": self._usage.input_tokens,
                    "output_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": self._usage.cache_read_input_tokens,
                },
            },
        }
        out.append(_event(b"message_start", payload))

    def _stop_block(self, out: list[bytes]) -> None:
        if self._kind != _NONE:
            out.append(_BLOCK_STOP + str(self._index).encode() + b"}\n\n")
            self._kind = _NONE

    def _open(self, kind: int, block: JSON, out: list[bytes]) -> None:
        self._stop_block(out)
        self._index = self._next_index
        self._next_index += 1
        self._kind = kind
        out.append(
            _event(
                b"content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": block},
            )
        )

    def _part(self, part: JSON, out: list[bytes]) -> None:
        if part.get("thought"):
            if self._kind != _THINKING:
                self._open(_THINKING, {"type": "thinking", "thinking": "", "signature": ""}, out)
            index = str(self._index).encode()
            text = part.get("text")
            if text and isinstance(text, str):
                out.append(_DELTA + index + _THINKING_DELTA + orjson.dumps(text) + _END)
            signature = part.get("thoughtSignature")
            if signature and isinstance(signature, str):
                out.append(
                    _DELTA
                    + index
                    + _SIGNATURE_DELTA
                    + orjson.dumps(GEMINI_SIGNATURE_PREFIX + signature)
                    + _END
                )
        elif "functionCall" in part:
            call = part["functionCall"] or {}
            signature = part.get("thoughtSignature")
            if signature and isinstance(signature, str):
                self._open(_THINKING, {"type": "thinking", "thinking": "", "signature": ""}, out)
                out.append(
                    _DELTA
                    + str(self._index).encode()
                    + _SIGNATURE_DELTA
                    + orjson.dumps(GEMINI_SIGNATURE_PREFIX + signature)
                    + _END
                )
            args = call.get("args")
            block = {
                "type": "tool_use",
                "id": call.get("id") or f"{GENERATED_ID_PREFIX}{self._id_base}_{self._tools}",
                "name": call.get("name", ""),
                "input": {},
            }
            self._tools += 1
            self._open(_TOOL, block, out)
            out.append(
                _DELTA
                + str(self._index).encode()
                + _JSON_DELTA
                + orjson.dumps(orjson.dumps(args if isinstance(args, dict) else {}).decode())
                + _END
            )
            self._stop_block(out)
        else:
            text = part.get("text")
            if not text or not isinstance(text, str):
                return
            if self._kind != _TEXT:
                self._open(_TEXT, {"type": "text", "text": ""}, out)
            out.append(_DELTA + str(self._index).encode() + _TEXT_DELTA + orjson.dumps(text) + _END)

    def _finish(self, out: list[bytes]) -> None:
        if self._finished:
            return
        if not self._started:
            self._start({}, out)
        self._stop_block(out)
        self._finished = True
        out.append(
            _event(
                b"message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None},
                    "usage": self._usage.to_anthropic(),
                },
            )
        )
        out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')

    def _error(self, out: list[bytes], kind: str, message: str) -> None:
        self._finished = True
        self._errored = True
        out.append(_event(b"error", {"type": "error", "error": {"type": kind, "message": message}}))


# --------------------------------------------------------------------------- Anthropic -> Gemini response


def anthropic_response_to_gemini(resp: JSON, *, model: str | None = None) -> JSON:
    """An Anthropic Message as a ``GenerateContentResponse``."""
    parts: list[JSON] = []
    for block in resp.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            if block.get("text"):
                parts.append({"text": block["text"]})
        elif kind == "thinking":
            part: JSON = {"text": block.get("thinking") or "", "thought": True}
            if block.get("signature"):
                part["thoughtSignature"] = block["signature"]
            if part["text"] or "thoughtSignature" in part:
                parts.append(part)
        elif kind == "tool_use":
            args = block.get("input")
            parts.append(
                {
                    "functionCall": {
                        "id": block.get("id", ""),
                        "name": block.get("name", ""),
                        "args": args if isinstance(args, dict) else {},
                    }
                }
            )
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": map_anthropic_stop(resp.get("stop_reason")),
                "index": 0,
            }
        ],
        "usageMetadata": usage_to_gemini(Usage.from_anthropic(resp.get("usage"))),
        "modelVersion": model or resp.get("model", ""),
        "responseId": resp.get("id", ""),
    }


# --------------------------------------------------------------------------- Anthropic -> Gemini stream

_GRPC_ERRORS = {
    "invalid_request_error": (400, "INVALID_ARGUMENT"),
    "authentication_error": (401, "UNAUTHENTICATED"),
    "permission_error": (403, "PERMISSION_DENIED"),
    "not_found_error": (404, "NOT_FOUND"),
    "request_too_large": (413, "INVALID_ARGUMENT"),
    "rate_limit_error": (429, "RESOURCE_EXHAUSTED"),
    "overloaded_error": (503, "UNAVAILABLE"),
}


class _Tool:
    __slots__ = ("id", "name", "json", "initial")

    def __init__(self, block: JSON) -> None:
        self.id = block.get("id", "")
        self.name = block.get("name", "")
        self.json: list[str] = []
        initial = block.get("input")
        self.initial = initial if isinstance(initial, dict) else {}


class AnthropicToGeminiStream:
    """Messages SSE bytes in, ``streamGenerateContent?alt=sse`` bytes out.

    Each text or thinking delta is one chunk with one part; a ``tool_use``
    block becomes one ``functionCall`` part when it stops, with the parsed
    arguments. The last part is held back one step so that it goes out with
    ``finishReason`` and ``usageMetadata`` in the final chunk, as Gemini does;
    a ``signature_delta`` joins the thought part it follows.
    """

    __slots__ = (
        "_parser",
        "_model",
        "_started",
        "_finished",
        "_errored",
        "_suffix",
        "_pending",
        "_tools",
        "_stop_reason",
        "_usage",
        "_tool_used",
    )

    def __init__(self, *, model: str | None = None) -> None:
        self._parser = SSEParser()
        self._model = model
        self._started = False
        self._finished = False
        self._errored = False
        self._suffix = b""
        self._pending: JSON | None = None
        self._tools: dict[int, _Tool] = {}
        self._stop_reason: str | None = None
        self._usage = Usage()
        self._tool_used = False

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def stop_reason(self) -> str | None:
        """Claude's ``stop_reason`` as received."""
        return self._stop_reason

    @property
    def finish_reason(self) -> str | None:
        return map_anthropic_stop(self._stop_reason) if self._stop_reason else None

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def errored(self) -> bool:
        return self._errored

    def feed(self, chunk: bytes) -> bytes:
        if self._finished:
            return b""
        out: list[bytes] = []
        for _event_name, data in self._parser.feed(chunk):
            self._handle(data, out)
            if self._finished:
                break
        return b"".join(out)

    def close(self) -> bytes:
        out: list[bytes] = []
        if not self._finished:
            for _event_name, data in self._parser.close():
                self._handle(data, out)
                if self._finished:
                    break
        if not self._finished:
            if self._stop_reason is not None:
                self._finish(out)
            else:
                self._error(out, {"type": "api_error", "message": "upstream stream ended early"})
        return b"".join(out)

    def _handle(self, data: bytes, out: list[bytes]) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                text = delta.get("text")
                if text:
                    self._part({"text": text}, out)
            elif dkind == "thinking_delta":
                text = delta.get("thinking")
                if text:
                    self._part({"text": text, "thought": True}, out)
            elif dkind == "signature_delta":
                signature = delta.get("signature")
                if signature:
                    pending = self._pending
                    if (
                        pending is not None
                        and pending.get("thought")
                        and "thoughtSignature" not in pending
                    ):
                        pending["thoughtSignature"] = signature
                    else:
                        self._part(
                            {"text": "", "thought": True, "thoughtSignature": signature}, out
                        )
            elif dkind == "input_json_delta":
                tool = self._tools.get(event.get("index", -1))
                partial = delta.get("partial_json")
                if tool is not None and partial:
                    tool.json.append(partial)
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            btype = block.get("type")
            if btype == "tool_use":
                self._tools[event.get("index", -1)] = _Tool(block)
            elif btype == "text" and block.get("text"):
                self._part({"text": block["text"]}, out)
            elif btype == "thinking" and block.get("thinking"):
                self._part({"text": block["thinking"], "thought": True}, out)
            # A thought part never continues across blocks: a new block starts a new part.
            elif btype == "thinking" and self._pending is not None:
                self._flush(out)
        elif kind == "content_block_stop":
            tool = self._tools.pop(event.get("index", -1), None)
            if tool is not None:
                args: Any = tool.initial
                if tool.json:
                    try:
                        args = orjson.loads("".join(tool.json))
                    except orjson.JSONDecodeError:
                        args = {"_raw_arguments": "".join(tool.json)}
                self._tool_used = True
                self._part(
                    {
                        "functionCall": {
                            "id": tool.id,
                            "name": tool.name,
                            "args": args if isinstance(args, dict) else {"value": args},
                        }
                    },
                    out,
                )
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop_reason = delta["stop_reason"]
            self._usage.update_anthropic(event.get("usage"))
        elif kind == "message_start":
            if self._started:
                return
            message = event.get("message") or {}
            self._usage = Usage.from_anthropic(message.get("usage"))
            self._begin(message)
        elif kind == "message_stop":
            self._finish(out)
        elif kind == "error":
            error = event.get("error")
            self._error(out, error if isinstance(error, dict) else {"message": str(error)})

    def _begin(self, message: JSON) -> None:
        self._started = True
        self._suffix = (
            b',"modelVersion":'
            + orjson.dumps(self._model or message.get("model", ""))
            + b',"responseId":'
            + orjson.dumps(message.get("id", ""))
            + b"}\r\n\r\n"
        )

    def _part(self, part: JSON, out: list[bytes]) -> None:
        if not self._started:
            self._begin({})
        if self._pending is not None:
            self._flush(out)
        self._pending = part

    def _flush(self, out: list[bytes]) -> None:
        out.append(
            b'data: {"candidates":[{"content":{"role":"model","parts":['
            + orjson.dumps(self._pending)
            + b']},"index":0}]'
            + self._suffix
        )
        self._pending = None

    def _finish(self, out: list[bytes]) -> None:
        if self._finished:
            return
        if not self._started:
            self._begin({})
        self._finished = True
        parts = orjson.dumps(self._pending) if self._pending is not None else b""
        self._pending = None
        out.append(
            b'data: {"candidates":[{"content":{"role":"model","parts":['
            + parts
            + b']},"finishReason":"'
            + map_anthropic_stop(self._stop_reason).encode()
            + b'","index":0}],"usageMetadata":'
            + orjson.dumps(usage_to_gemini(self._usage))
            + self._suffix
        )

    def _error(self, out: list[bytes], error: JSON) -> None:
        self._finished = True
        self._errored = True
        code, status = _GRPC_ERRORS.get(error.get("type", ""), (500, "INTERNAL"))
        payload = {"error": {"code": code, "message": error.get("message", ""), "status": status}}
        out.append(b"data: " + orjson.dumps(payload) + b"\r\n\r\n")
