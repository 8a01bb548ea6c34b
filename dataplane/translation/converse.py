"""Anthropic client, Bedrock Converse model (Amazon Nova, Meta Llama, Mistral...).

``anthropic_request_to_converse`` turns a Messages API request (as Claude Code
sends it) into a Converse / ConverseStream body; ``converse_response_to_anthropic``
and ``ConverseStreamToAnthropic`` turn the model's answer back into a Message /
the Messages SSE stream.
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html

Documented normalisations (each noted in ``dropped`` when a list is given):

* top-level ``system`` and Claude Code's role ``"system"`` messages inside
  ``messages`` all become ``system`` text blocks, in order;
* ``cache_control``, ``thinking``/``redacted_thinking`` history blocks, URL
  images, server tools, ``top_k``, ``thinking`` and ``metadata`` are dropped;
* consecutive messages of one role are merged (Converse wants them
  alternating) and blank text blocks are skipped (Converse refuses them);
* an empty ``tool_result`` is sent as the text ``"(no output)"``;
* ``tool_choice: none`` keeps the tools (history may use them) without a
  ``toolChoice``; history with tool blocks but no ``tools`` gets minimal
  specs for the names it uses, since Converse refuses it without ``toolConfig``.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from dataplane.translation.common import JSON, Usage, note

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}
_IGNORED = frozenset({"model", "stream", "metadata"})

# Converse stopReason -> Anthropic stop_reason.
CONVERSE_TO_ANTHROPIC_STOP: dict[str, str] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
    "model_context_window_exceeded": "model_context_window_exceeded",
}


def map_converse_stop(reason: Any) -> str:
    return CONVERSE_TO_ANTHROPIC_STOP.get(str(reason), "end_turn") if reason else "end_turn"


# --------------------------------------------------------------------------- request


def _text_block(text: Any) -> JSON | None:
    if not isinstance(text, str) or not text.strip():
        return None
    return {"text": text}


def _image_block(block: JSON, dropped: list[str] | None, path: str) -> JSON | None:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        note(dropped, path + ".source")
        return None
    fmt = _IMAGE_FORMATS.get(str(source.get("media_type", "")).lower())
    if fmt is None:
        note(dropped, path + ".source.media_type")
        return None
    # A blob member: base64 in JSON, exactly as Anthropic carries it.
    return {"image": {"format": fmt, "source": {"bytes": source.get("data", "")}}}


def _document_block(block: JSON, n: int, dropped: list[str] | None, path: str) -> JSON | None:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text":
        return _text_block(source.get("data"))
    if (
        isinstance(source, dict)
        and source.get("type") == "base64"
        and source.get("media_type") == "application/pdf"
    ):
        return {
            "document": {
                "format": "pdf",
                # Converse wants a name: letters, digits, spaces, hyphens, brackets only.
                "name": f"document {n}",
                "source": {"bytes": source.get("data", "")},
            }
        }
    note(dropped, path)
    return None


def _tool_result_block(block: JSON, dropped: list[str] | None, path: str) -> JSON:
    content = block.get("content")
    parts: list[JSON] = []
    if isinstance(content, str):
        text = _text_block(content)
        if text:
            parts.append(text)
    elif isinstance(content, list):
        for i, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                text = _text_block(part.get("text"))
                if text:
                    parts.append(text)
            elif kind == "image":
                image = _image_block(part, dropped, f"{path}.content[{i}]")
                if image:
                    parts.append(image)
            else:
                note(dropped, f"{path}.content[{i}]")
    if not parts:
        parts.append({"text": "(no output)"})
    out: JSON = {"toolUseId": str(block.get("tool_use_id", "")), "content": parts}
    if block.get("is_error"):
        out["status"] = "error"
    return {"toolResult": out}


def _blocks(
    content: Any, role: str, dropped: list[str] | None, path: str, used: set[str]
) -> list[JSON]:
    if isinstance(content, str):
        text = _text_block(content)
        return [text] if text else []
    out: list[JSON] = []
    if not isinstance(content, list):
        return out
    for i, block in enumerate(content):
        where = f"{path}.content[{i}]"
        if not isinstance(block, dict):
            continue
        if "cache_control" in block:
            note(dropped, where + ".cache_control")
        kind = block.get("type")
        item: JSON | None = None
        if kind == "text":
            item = _text_block(block.get("text"))
        elif kind == "image":
            item = _image_block(block, dropped, where)
        elif kind == "document":
            item = _document_block(block, i, dropped, where)
        elif kind == "tool_use" and role == "assistant":
            name = str(block.get("name", ""))
            used.add(name)
            tool_input = block.get("input")
            item = {
                "toolUse": {
                    "toolUseId": str(block.get("id", "")),
                    "name": name,
                    "input": tool_input if isinstance(tool_input, dict) else {},
                }
            }
        elif kind == "tool_result" and role == "user":
            item = _tool_result_block(block, dropped, where)
        else:
            note(dropped, where)
        if item is not None:
            out.append(item)
    return out


def _system_blocks(system: Any, dropped: list[str] | None, path: str) -> list[JSON]:
    if isinstance(system, str):
        text = _text_block(system)
        return [text] if text else []
    out: list[JSON] = []
    if isinstance(system, list):
        for i, block in enumerate(system):
            if isinstance(block, dict) and block.get("type") == "text":
                if "cache_control" in block:
                    note(dropped, f"{path}[{i}].cache_control")
                text = _text_block(block.get("text"))
                if text:
                    out.append(text)
            elif isinstance(block, dict):
                note(dropped, f"{path}[{i}]")
    return out


def _tool_config(body: JSON, used: set[str], dropped: list[str] | None) -> JSON | None:
    tools: list[JSON] = []
    names: set[str] = set()
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict):
            continue
        if tool.get("type") not in (None, "custom") or "name" not in tool:
            note(dropped, f"tools[{i}]")  # a server tool (web search, bash_2025...) Converse lacks
            continue
        if "cache_control" in tool:
            note(dropped, f"tools[{i}].cache_control")
        schema = tool.get("input_schema")
        spec: JSON = {
            "name": str(tool["name"]),
            "inputSchema": {
                "json": schema if isinstance(schema, dict) and schema else _EMPTY_SCHEMA
            },
        }
        if tool.get("description"):
            spec["description"] = str(tool["description"])
        tools.append({"toolSpec": spec})
        names.add(spec["name"])
    for name in sorted(used - names):
        tools.append({"toolSpec": {"name": name, "inputSchema": {"json": _EMPTY_SCHEMA}}})
    if not tools:
        return None
    config: JSON = {"tools": tools}
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "auto":
            config["toolChoice"] = {"auto": {}}
        elif kind == "any":
            config["toolChoice"] = {"any": {}}
        elif kind == "tool" and choice.get("name"):
            config["toolChoice"] = {"tool": {"name": str(choice["name"])}}
        elif kind == "none":
            note(dropped, "tool_choice")
        if "disable_parallel_tool_use" in choice:
            note(dropped, "tool_choice.disable_parallel_tool_use")
    return config


def anthropic_request_to_converse(body: JSON, *, dropped: list[str] | None = None) -> JSON:
    """A Messages request as a Converse body (model and stream go in the URL)."""
    system = _system_blocks(body.get("system"), dropped, "system")
    messages: list[JSON] = []
    used: set[str] = set()
    for n, message in enumerate(body.get("messages") or []):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "system":
            # Claude Code's mid-conversation system reminders.
            system.extend(_system_blocks(message.get("content"), dropped, f"messages[{n}].content"))
            continue
        if role not in ("user", "assistant"):
            note(dropped, f"messages[{n}]")
            continue
        content = _blocks(message.get("content"), str(role), dropped, f"messages[{n}]", used)
        if not content:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(content)
        else:
            messages.append({"role": role, "content": content})
    out: JSON = {"messages": messages}
    if system:
        out["system"] = system
    config: JSON = {}
    if "max_tokens" in body:
        config["maxTokens"] = body["max_tokens"]
    if "temperature" in body:
        config["temperature"] = body["temperature"]
    if "top_p" in body:
        config["topP"] = body["top_p"]
    if body.get("stop_sequences"):
        config["stopSequences"] = list(body["stop_sequences"])
    if config:
        out["inferenceConfig"] = config
    tool_config = _tool_config(body, used, dropped)
    if tool_config is not None:
        out["toolConfig"] = tool_config
    for key in (
        "top_k",
        "thinking",
        "service_tier",
        "context_management",
        "container",
        "mcp_servers",
    ):
        if key in body:
            note(dropped, key)
    return out


# --------------------------------------------------------------------------- response


def _usage(doc: Any) -> Usage:
    if not isinstance(doc, dict):
        return Usage()

    def n(key: str) -> int:
        value = doc.get(key)
        return value if isinstance(value, int) else 0

    return Usage(
        input_tokens=n("inputTokens"),
        output_tokens=n("outputTokens"),
        cache_read_input_tokens=n("cacheReadInputTokens"),
        cache_creation_input_tokens=n("cacheWriteInputTokens"),
    )


def _message_id() -> str:
    return "msg_bdrk_" + uuid.uuid4().hex[:24]


def converse_response_to_anthropic(resp: JSON, *, model: str) -> JSON:
    """A Converse answer as an Anthropic Message."""
    output = resp.get("output") if isinstance(resp, dict) else None
    message = output.get("message") if isinstance(output, dict) else None
    content: list[JSON] = []
    for block in (message or {}).get("content") or []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            content.append({"type": "text", "text": block["text"]})
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            tool_input = use.get("input")
            content.append(
                {
                    "type": "tool_use",
                    "id": str(use.get("toolUseId", "")),
                    "name": str(use.get("name", "")),
                    "input": tool_input if isinstance(tool_input, dict) else {},
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            reasoning = block["reasoningContent"].get("reasoningText")
            if isinstance(reasoning, dict):
                content.append(
                    {
                        "type": "thinking",
                        "thinking": str(reasoning.get("text", "")),
                        "signature": str(reasoning.get("signature", "")),
                    }
                )
    stop = map_converse_stop(resp.get("stopReason"))
    if stop == "end_turn" and any(b["type"] == "tool_use" for b in content):
        stop = "tool_use"
    return {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(resp.get("usage")).to_anthropic(),
    }


# --------------------------------------------------------------------------- stream


def _event(name: bytes, payload: JSON) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


_NONE, _TEXT, _TOOL, _THINKING = range(4)
_DELTA_TYPES = {_TEXT: "text_delta", _TOOL: "input_json_delta", _THINKING: "thinking_delta"}
_DELTA_KEYS = {_TEXT: "text", _TOOL: "partial_json", _THINKING: "thinking"}


class ConverseStreamToAnthropic:
    """Decoded ConverseStream events in, Messages SSE bytes out.

    ``feed_event(event_type, payload)`` takes one event (the ``:event-type``
    header and its JSON payload) and returns the bytes to relay; ``close``
    flushes at the end. Converse sends ``metadata`` (the usage) after
    ``messageStop``, so ``message_delta``/``message_stop`` wait for it, or for
    ``close``. Guarantees: exactly one ``message_start``; every started block
    stopped, in order, with sequential indices; the final usage in
    ``message_delta``.
    """

    __slots__ = (
        "_model",
        "_started",
        "_finished",
        "_kind",
        "_source",
        "_next_index",
        "_stop",
        "_usage",
        "_usage_seen",
        "_tool_used",
    )

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._started = False
        self._finished = False
        self._kind = _NONE
        self._source: Any = None  # the Converse contentBlockIndex of the open block
        self._next_index = 0
        self._stop: str | None = None
        self._usage = Usage()
        self._usage_seen = False
        self._tool_used = False

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def usage_known(self) -> bool:
        return self._usage_seen

    @property
    def stop_reason(self) -> str | None:
        return self._stop

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stopped(self) -> bool:
        """``messageStop`` arrived (the answer is whole, usage may still follow)."""
        return self._stop is not None

    def feed_event(self, event_type: str, payload: Any) -> bytes:
        if self._finished or not isinstance(payload, dict):
            return b""
        out: list[bytes] = []
        if event_type == "messageStart":
            self._start(out)
        elif event_type == "contentBlockStart":
            self._start(out)
            start = payload.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if isinstance(use, dict):
                self._close_block(out)
                self._open(
                    _TOOL,
                    payload.get("contentBlockIndex"),
                    {
                        "type": "tool_use",
                        "id": str(use.get("toolUseId", "")),
                        "name": str(use.get("name", "")),
                        "input": {},
                    },
                    out,
                )
                self._tool_used = True
        elif event_type == "contentBlockDelta":
            self._start(out)
            self._delta(payload, out)
        elif event_type == "contentBlockStop":
            if (
                payload.get("contentBlockIndex") == self._source
                or "contentBlockIndex" not in payload
            ):
                self._close_block(out)
        elif event_type == "messageStop":
            self._start(out)
            self._close_block(out)
            stop = map_converse_stop(payload.get("stopReason"))
            if stop == "end_turn" and self._tool_used:
                stop = "tool_use"
            self._stop = stop
        elif event_type == "metadata":
            if isinstance(payload.get("usage"), dict):
                self._usage = _usage(payload["usage"])
                self._usage_seen = True
            if self._stop is not None:
                self._finish(out)
        return b"".join(out)

    def close(self) -> bytes:
        """The upstream ended; if ``messageStop`` came, finish without usage."""
        if self._finished or self._stop is None:
            return b""
        out: list[bytes] = []
        self._finish(out)
        return b"".join(out)

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        message: dict[str, Any] = {
            "id": _message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": Usage().to_anthropic(),
        }
        out.append(_event(b"message_start", {"type": "message_start", "message": message}))

    def _open(self, kind: int, source: Any, block: JSON, out: list[bytes]) -> None:
        self._kind = kind
        self._source = source
        out.append(
            _event(
                b"content_block_start",
                {"type": "content_block_start", "index": self._next_index, "content_block": block},
            )
        )

    def _close_block(self, out: list[bytes]) -> None:
        if self._kind == _NONE:
            return
        out.append(
            _event(b"content_block_stop", {"type": "content_block_stop", "index": self._next_index})
        )
        self._next_index += 1
        self._kind = _NONE
        self._source = None

    def _emit(self, kind: int, value: str, out: list[bytes]) -> None:
        key = _DELTA_KEYS[kind]
        delta = {"type": _DELTA_TYPES[kind], key: value}
        out.append(
            _event(
                b"content_block_delta",
                {"type": "content_block_delta", "index": self._next_index, "delta": delta},
            )
        )

    def _delta(self, payload: JSON, out: list[bytes]) -> None:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return
        source = payload.get("contentBlockIndex")
        if isinstance(delta.get("text"), str):
            if self._kind != _TEXT or self._source != source:
                self._close_block(out)
                self._open(_TEXT, source, {"type": "text", "text": ""}, out)
            if delta["text"]:
                self._emit(_TEXT, delta["text"], out)
        elif isinstance(delta.get("toolUse"), dict):
            if self._kind != _TOOL:
                # A tool delta without its contentBlockStart: nothing to name it by.
                return
            fragment = delta["toolUse"].get("input")
            if isinstance(fragment, str) and fragment:
                self._emit(_TOOL, fragment, out)
        elif isinstance(delta.get("reasoningContent"), dict):
            reasoning = delta["reasoningContent"]
            if self._kind != _THINKING or self._source != source:
                self._close_block(out)
                self._open(
                    _THINKING, source, {"type": "thinking", "thinking": "", "signature": ""}, out
                )
            if isinstance(reasoning.get("text"), str) and reasoning["text"]:
                self._emit(_THINKING, reasoning["text"], out)
            if isinstance(reasoning.get("signature"), str):
                out.append(
                    _event(
                        b"content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": self._next_index,
                            "delta": {
                                "type": "signature_delta",
                                "signature": reasoning["signature"],
                            },
                        },
                    )
                )

    def _finish(self, out: list[bytes]) -> None:
        self._close_block(out)
        self._finished = True
        out.append(
            _event(
                b"message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop, "stop_sequence": None},
                    "usage": self._usage.to_anthropic(),
                },
            )
        )
        out.append(_event(b"message_stop", {"type": "message_stop"}))
