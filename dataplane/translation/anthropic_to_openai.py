"""Anthropic client, OpenAI-compatible model.

``anthropic_request_to_openai`` turns a Messages API request (as Claude Code
sends it) into a Chat Completions request; ``openai_response_to_anthropic``
and ``OpenAIToAnthropicStream`` turn the model's answer back into a Message /
the Messages SSE stream.

Documented normalisations (a round trip through ``openai_to_anthropic`` gives
the original back up to these):

* top-level ``system`` blocks are joined with a blank line into one system
  message (``cache_control`` is dropped);
* assistant text blocks are joined into one string, placed before the tool
  calls; ``thinking``/``redacted_thinking`` blocks in the history are dropped
  (OpenAI-compatible servers reject or ignore reasoning in input);
* ``tool_result`` blocks become ``role: "tool"`` messages ahead of the rest of
  the user turn; ``is_error`` becomes the ``TOOL_ERROR_PREFIX`` on the text;
  images inside a tool result move to a user message after the tool messages.
"""

from __future__ import annotations

from typing import Any

import orjson

from dataplane.translation.common import (
    JSON,
    TOOL_ERROR_PREFIX,
    Usage,
    budget_to_effort,
    dumps_str,
    map_finish_reason,
    note,
    parse_arguments,
    text_of,
)
from dataplane.translation.sse import SSEParser

_REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
    }
)


# --------------------------------------------------------------------------- request


def _image_part(block: JSON) -> JSON | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    kind = source.get("type")
    if kind == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif kind == "url":
        url = source.get("url", "")
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_messages(block: JSON, images: list[JSON], dropped: list[str] | None) -> JSON:
    content = block.get("content")
    out_content: Any
    if content is None:
        out_content = ""
    elif isinstance(content, str):
        out_content = content
    else:
        parts: list[JSON] = []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
            elif kind == "image":
                image = _image_part(part)
                if image is not None:
                    images.append(image)
            else:
                note(dropped, f"tool_result.content.{kind}")
        out_content = parts
    if block.get("is_error"):
        if isinstance(out_content, str):
            out_content = TOOL_ERROR_PREFIX + out_content
        elif out_content:
            first = out_content[0]
            out_content[0] = {"type": "text", "text": TOOL_ERROR_PREFIX + first["text"]}
        else:
            out_content = TOOL_ERROR_PREFIX
    return {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": out_content}


def _user_messages(content: Any, out: list[JSON], dropped: list[str] | None) -> None:
    if isinstance(content, str):
        out.append({"role": "user", "content": content})
        return
    parts: list[JSON] = []
    images: list[JSON] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            image = _image_part(block)
            if image is not None:
                parts.append(image)
            else:
                note(dropped, "messages.content.image.source")
        elif kind == "tool_result":
            out.append(_tool_result_messages(block, images, dropped))
        else:
            note(dropped, f"messages.content.{kind}")
    if images:
        # A tool message cannot carry images: they follow as a user turn.
        parts = images + parts
    if parts:
        out.append({"role": "user", "content": parts})


def _assistant_message(content: Any, dropped: list[str] | None) -> JSON | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": dumps_str(block.get("input", {})),
                    },
                }
            )
        else:
            note(dropped, f"messages.content.{kind}")
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    elif not texts:
        return None
    return message


def _tool_choice(choice: Any, out: JSON) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def anthropic_request_to_openai(
    body: JSON,
    *,
    model: str | None = None,
    reasoning: bool = False,
    max_tokens_field: str = "max_tokens",
    dropped: list[str] | None = None,
    user: bool = True,
) -> JSON:
    """A Messages API request as a Chat Completions request.

    ``model`` overrides the model name; ``reasoning`` says the target accepts
    ``reasoning_effort`` (otherwise ``thinking`` is dropped);
    ``max_tokens_field`` is ``"max_tokens"`` or ``"max_completion_tokens"``;
    ``user=False`` keeps ``metadata.user_id`` (a device id) to ourselves.
    Fields without an equivalent are left out and, when ``dropped`` is a list,
    named in it.
    """
    messages: list[JSON] = []
    system = body.get("system")
    if system:
        if isinstance(system, str):
            messages.append({"role": "system", "content": system})
        else:
            if dropped is not None and any("cache_control" in b for b in system):
                dropped.append("system.cache_control")
            messages.append({"role": "system", "content": text_of(system, "\n\n")})

    for message in body.get("messages") or ():
        role = message.get("role")
        content = message.get("content", "")
        if role == "user":
            _user_messages(content, messages, dropped)
        elif role == "assistant":
            translated = _assistant_message(content, dropped)
            if translated is not None:
                messages.append(translated)
        elif role == "system":
            # Claude Code puts system reminders inside ``messages``.
            messages.append({"role": "system", "content": text_of(content, "\n\n")})
        else:
            note(dropped, f"messages.role.{role}")

    out: JSON = {"model": model or body.get("model", ""), "messages": messages}
    if "max_tokens" in body:
        out[max_tokens_field] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if name in body:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}

    tools = body.get("tools")
    if tools:
        functions: list[JSON] = []
        for tool in tools:
            if "input_schema" not in tool:
                note(dropped, f"tools.{tool.get('type') or tool.get('name')}")
                continue
            function: JSON = {"name": tool.get("name", ""), "parameters": tool["input_schema"]}
            if "description" in tool:
                function["description"] = tool["description"]
            functions.append({"type": "function", "function": function})
        if functions:
            out["tools"] = functions
    if "tool_choice" in body and "tools" in out:
        _tool_choice(body["tool_choice"], out)

    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        if metadata.get("user_id") and user:
            out["user"] = metadata["user_id"]
        if dropped is not None:
            dropped.extend(f"metadata.{k}" for k in metadata if k != "user_id")

    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        if reasoning:
            budget = thinking.get("budget_tokens")
            out["reasoning_effort"] = (
                budget_to_effort(budget) if isinstance(budget, int) else "medium"
            )
        else:
            note(dropped, "thinking")

    if dropped is not None:
        dropped.extend(k for k in body if k not in _REQUEST_FIELDS)
    return out


# --------------------------------------------------------------------------- response


def _message_id(openai_id: Any) -> str:
    if isinstance(openai_id, str) and openai_id:
        return openai_id if openai_id.startswith("msg_") else "msg_" + openai_id
    return "msg_tollgate"


def openai_response_to_anthropic(resp: JSON, *, model: str | None = None) -> JSON:
    """A ``chat.completion`` as an Anthropic Message."""
    choices = resp.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if text:
        content.append({"type": "text", "text": text_of(text)})
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{i}",
                "name": function.get("name", ""),
                "input": parse_arguments(function.get("arguments")),
            }
        )
    stop_reason = map_finish_reason(choice.get("finish_reason")) or "end_turn"
    if stop_reason == "end_turn" and any(b["type"] == "tool_use" for b in content):
        stop_reason = "tool_use"
    return {
        "id": _message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model or resp.get("model", ""),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": Usage.from_openai(resp.get("usage")).to_anthropic(),
    }


# --------------------------------------------------------------------------- stream

_NONE, _TEXT, _THINKING, _TOOL = 0, 1, 2, 3

_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA = b',"delta":{"type":"text_delta","text":'
_THINKING_DELTA = b',"delta":{"type":"thinking_delta","thinking":'
_JSON_DELTA = b',"delta":{"type":"input_json_delta","partial_json":'
_END = b"}}\n\n"
_DONE = b"[DONE]"


def _event(name: bytes, payload: JSON) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class _PendingTool:
    __slots__ = ("id", "name", "args", "block")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.args: list[str] = []
        self.block = -1  # Anthropic block index once started


class OpenAIToAnthropicStream:
    """Chat Completions chunks (SSE bytes) in, Messages SSE bytes out.

    ``feed`` takes upstream bytes cut anywhere and returns the bytes to relay
    (possibly empty); ``close`` flushes at the end of the upstream body.
    Guarantees: exactly one ``message_start``; every started block stopped,
    in order, with sequential indices; ``[DONE]`` never relayed; the final
    usage always in ``message_delta``; ``stop_reason`` is ``tool_use`` when a
    tool was called (unless the output was cut by ``max_tokens``).
    """

    __slots__ = (
        "_parser",
        "_model",
        "_started",
        "_finished",
        "_kind",
        "_index",
        "_next_index",
        "_tools",
        "_current_tool",
        "_tool_used",
        "_finish_reason",
        "_usage",
        "_usage_seen",
        "_errored",
    )

    def __init__(self, *, model: str | None = None) -> None:
        self._parser = SSEParser()
        self._model = model
        self._started = False
        self._finished = False
        self._kind = _NONE
        self._index = -1
        self._next_index = 0
        self._tools: dict[Any, _PendingTool] = {}
        self._current_tool: _PendingTool | None = None
        self._tool_used = False
        self._finish_reason: str | None = None
        self._usage = Usage()
        self._usage_seen = False
        self._errored = False

    # accessors -------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def usage_known(self) -> bool:
        return self._usage_seen

    @property
    def stop_reason(self) -> str | None:
        if self._finish_reason is None:
            return "tool_use" if self._tool_used and self._finished else None
        reason = map_finish_reason(self._finish_reason)
        if self._tool_used and reason in ("end_turn", "stop_sequence", None):
            return "tool_use"
        return reason

    @property
    def finished(self) -> bool:
        return self._finished

    # feeding ---------------------------------------------------------------

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
            if self._finish_reason is None and not self._tool_used:
                self._error(out, "api_error", "upstream stream ended before a finish_reason")
            else:
                self._finish(out)
        return b"".join(out)

    def _handle(self, data: bytes, out: list[bytes]) -> None:
        if data == _DONE:
            self._finish(out)
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(chunk, dict):
            return
        error = chunk.get("error")
        if error is not None:
            if isinstance(error, dict):
                self._error(out, "api_error", str(error.get("message", error)))
            else:
                self._error(out, "api_error", str(error))
            return
        if not self._started:
            self._start(chunk, out)
        usage = chunk.get("usage")
        if usage:
            self._usage = Usage.from_openai(usage)
            self._usage_seen = True
        choices = chunk.get("choices")
        if not choices:
            return
        choice = choices[0]
        delta = choice.get("delta")
        if delta:
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                self._text(_THINKING, reasoning, out)
            content = delta.get("content")
            if content and isinstance(content, str):
                self._text(_TEXT, content, out)
            calls = delta.get("tool_calls")
            if calls:
                for call in calls:
                    self._tool_delta(call, out)
        finish = choice.get("finish_reason")
        if finish:
            self._finish_reason = finish

    def _start(self, chunk: JSON, out: list[bytes]) -> None:
        self._started = True
        usage = chunk.get("usage")
        start_usage = Usage.from_openai(usage) if usage else Usage()
        payload = {
            "type": "message_start",
            "message": {
                "id": _message_id(chunk.get("id")),
                "type": "message",
                "role": "assistant",
                "model": self._model or chunk.get("model", ""),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                # Input tokens are 0 only while unknown; the final counts
                # always go out in message_delta.
                "usage": {
                    "input_tokens": start_usage.input_tokens,
                    "output_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": start_usage.cache_read_input_tokens,
                },
            },
        }
        out.append(_event(b"message_start", payload))

    def _stop_block(self, out: list[bytes]) -> None:
        if self._kind != _NONE:
            out.append(_BLOCK_STOP + str(self._index).encode() + b"}\n\n")
            self._kind = _NONE
            self._current_tool = None

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

    def _text(self, kind: int, text: str, out: list[bytes]) -> None:
        if self._kind != kind:
            if kind == _TEXT:
                self._open(_TEXT, {"type": "text", "text": ""}, out)
            else:
                self._open(_THINKING, {"type": "thinking", "thinking": "", "signature": ""}, out)
        out.append(
            _DELTA
            + str(self._index).encode()
            + (_TEXT_DELTA if kind == _TEXT else _THINKING_DELTA)
            + orjson.dumps(text)
            + _END
        )

    def _tool_delta(self, call: JSON, out: list[bytes]) -> None:
        key = call.get("index")
        if key is None:
            key = call.get("id") or (self._current_tool.id if self._current_tool is not None else 0)
        tool = self._tools.get(key)
        if tool is None:
            tool = self._tools[key] = _PendingTool()
        if call.get("id"):
            tool.id = tool.id or call["id"]
        function = call.get("function") or {}
        name = function.get("name")
        if name and not tool.name:
            tool.name = name
        args = function.get("arguments")
        if tool.block < 0:
            if args:
                tool.args.append(args)
            if tool.name:
                # Start the block only once the name is known (some servers
                # send the id first and the name in a later fragment).
                self._start_tool(tool, out)
            return
        if not args:
            return
        if self._current_tool is not tool:
            # A fragment for a tool whose block is already closed: Anthropic
            # blocks cannot reopen, so the fragment has nowhere to go.
            tool.args.append(args)
            return
        out.append(_DELTA + str(self._index).encode() + _JSON_DELTA + orjson.dumps(args) + _END)

    def _start_tool(self, tool: _PendingTool, out: list[bytes]) -> None:
        if not tool.id:
            tool.id = f"toolu_{self._next_index}"
        self._open(
            _TOOL,
            {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}},
            out,
        )
        tool.block = self._index
        self._current_tool = tool
        self._tool_used = True
        if tool.args:
            joined = "".join(tool.args)
            tool.args.clear()
            out.append(
                _DELTA + str(self._index).encode() + _JSON_DELTA + orjson.dumps(joined) + _END
            )

    def _finish(self, out: list[bytes]) -> None:
        if self._finished:
            return
        if not self._started:
            self._start({}, out)
        # Tools whose name never arrived still get a block rather than vanishing.
        for tool in self._tools.values():
            if tool.block < 0:
                tool.name = tool.name or "unknown"
                self._start_tool(tool, out)
        self._stop_block(out)
        self._finished = True
        stop_reason = self.stop_reason or "end_turn"
        usage = self._usage.to_anthropic()
        out.append(
            _event(
                b"message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')

    def _error(self, out: list[bytes], kind: str, message: str) -> None:
        self._finished = True
        self._errored = True
        out.append(_event(b"error", {"type": "error", "error": {"type": kind, "message": message}}))

    @property
    def errored(self) -> bool:
        return self._errored
