"""OpenAI client, Claude model.

``openai_request_to_anthropic`` turns a Chat Completions request (as the
OpenAI SDK sends it) into a Messages API request;
``anthropic_response_to_openai`` and ``AnthropicToOpenAIStream`` turn Claude's
answer back into a ``chat.completion`` / ``chat.completion.chunk`` stream.

Documented normalisations:

* ``system`` and ``developer`` messages, wherever they are, are collected into
  the top-level ``system`` (a string for one, text blocks for several);
* consecutive ``tool`` messages, and a user message right after them, become
  one user turn of ``tool_result`` blocks followed by the user's content;
* a tool message starting with ``TOOL_ERROR_PREFIX`` becomes ``is_error``;
* ``temperature`` is clamped to Anthropic's 0..1; with ``reasoning_effort``
  (mapped to a thinking budget) ``temperature``/``top_p`` are dropped, as
  Anthropic rejects them alongside thinking.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from dataplane.translation.common import (
    EFFORT_BUDGET,
    JSON,
    TOOL_ERROR_PREFIX,
    Usage,
    map_stop_reason,
    note,
    parse_arguments,
    text_of,
)
from dataplane.translation.sse import SSEParser

_REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "reasoning_effort",
    }
)

DEFAULT_MAX_TOKENS = 4096

# --------------------------------------------------------------------------- request


def _image_block(part: JSON) -> JSON | None:
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        return None
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(content: Any, dropped: list[str] | None) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[JSON] = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = _image_block(part)
            if image is not None:
                blocks.append(image)
        else:
            note(dropped, f"messages.content.{kind}")
    return blocks


def _tool_result(message: JSON) -> JSON:
    content = message.get("content")
    is_error = False
    result: Any
    if isinstance(content, list):
        result = [
            {"type": "text", "text": p.get("text", "")} for p in content if p.get("type") == "text"
        ]
        if result and result[0]["text"].startswith(TOOL_ERROR_PREFIX):
            is_error = True
            result[0]["text"] = result[0]["text"][len(TOOL_ERROR_PREFIX) :]
    else:
        result = content if isinstance(content, str) else text_of(content)
        if result.startswith(TOOL_ERROR_PREFIX):
            is_error = True
            result = result[len(TOOL_ERROR_PREFIX) :]
    block: JSON = {
        "type": "tool_result",
        "tool_use_id": message.get("tool_call_id", ""),
        "content": result,
    }
    if is_error:
        block["is_error"] = True
    return block


def _assistant_blocks(message: JSON) -> Any:
    content = message.get("content")
    calls = message.get("tool_calls")
    if not calls:
        if isinstance(content, str):
            return content
        return [{"type": "text", "text": text_of(content)}] if content else ""
    blocks: list[JSON] = []
    text = text_of(content)
    if text:
        blocks.append({"type": "text", "text": text})
    for call in calls:
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": parse_arguments(function.get("arguments")),
            }
        )
    return blocks


def openai_request_to_anthropic(
    body: JSON,
    *,
    model: str | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    dropped: list[str] | None = None,
) -> JSON:
    """A Chat Completions request as a Messages API request.

    ``model`` overrides the model name; ``default_max_tokens`` fills
    Anthropic's required ``max_tokens`` when the client sent none. Fields
    without an equivalent are left out and, when ``dropped`` is a list, named
    in it.
    """
    system: list[str] = []
    messages: list[JSON] = []
    # The user turn being built from tool messages (and the user message after them).
    tool_turn: list[JSON] | None = None

    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"), "\n\n")
            if text:  # Anthropic rejects empty text blocks
                system.append(text)
            tool_turn = None
            continue
        if role == "tool":
            if tool_turn is None:
                tool_turn = []
                messages.append({"role": "user", "content": tool_turn})
            tool_turn.append(_tool_result(message))
            continue
        if role == "user":
            if tool_turn is not None:
                tool_turn.extend(_user_blocks(message.get("content"), dropped))
                tool_turn = None
                continue
            content = message.get("content")
            messages.append(
                {
                    "role": "user",
                    "content": content
                    if isinstance(content, str)
                    else _user_blocks(content, dropped),
                }
            )
        elif role == "assistant":
            messages.append({"role": "assistant", "content": _assistant_blocks(message)})
        else:
            note(dropped, f"messages.role.{role}")
        tool_turn = None

    out: JSON = {"model": model or body.get("model", ""), "messages": messages}
    if system:
        out["system"] = (
            system[0] if len(system) == 1 else [{"type": "text", "text": s} for s in system]
        )
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out["max_tokens"] = max_tokens

    effort = body.get("reasoning_effort")
    budget = EFFORT_BUDGET.get(effort) if isinstance(effort, str) else None
    if budget is not None:
        budget = min(budget, max_tokens - 1)
        if budget >= 1024:
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        else:
            note(dropped, "reasoning_effort")
    elif effort is not None and effort != "none":
        note(dropped, "reasoning_effort")

    if "thinking" in out:
        for name in ("temperature", "top_p"):
            if name in body:
                note(dropped, name)
    else:
        if body.get("temperature") is not None:
            out["temperature"] = min(float(body["temperature"]), 1.0)
        if body.get("top_p") is not None:
            out["top_p"] = body["top_p"]

    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        out["stream"] = True

    tools = body.get("tools")
    if tools:
        converted: list[JSON] = []
        for tool in tools:
            function = tool.get("function")
            if tool.get("type") != "function" or not isinstance(function, dict):
                note(dropped, f"tools.{tool.get('type')}")
                continue
            entry: JSON = {"name": function.get("name", "")}
            if "description" in function:
                entry["description"] = function["description"]
            entry["input_schema"] = function.get("parameters") or {
                "type": "object",
                "properties": {},
            }
            converted.append(entry)
        if converted:
            out["tools"] = converted

    choice = body.get("tool_choice")
    tool_choice: JSON | None = None
    if choice == "auto":
        tool_choice = {"type": "auto"}
    elif choice == "required":
        tool_choice = {"type": "any"}
    elif choice == "none":
        tool_choice = {"type": "none"}
    elif isinstance(choice, dict):
        function = choice.get("function") or {}
        tool_choice = {"type": "tool", "name": function.get("name", "")}
    if body.get("parallel_tool_calls") is False and "tools" in out:
        tool_choice = tool_choice or {"type": "auto"}
        tool_choice["disable_parallel_tool_use"] = True
    if tool_choice is not None and "tools" in out:
        out["tool_choice"] = tool_choice

    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}

    if dropped is not None:
        dropped.extend(k for k in body if k not in _REQUEST_FIELDS)
    return out


# --------------------------------------------------------------------------- response


def _completion_id(anthropic_id: Any) -> str:
    if isinstance(anthropic_id, str) and anthropic_id:
        return "chatcmpl-" + anthropic_id
    return "chatcmpl-tollgate"


def anthropic_response_to_openai(
    resp: JSON, *, model: str | None = None, created: int | None = None
) -> JSON:
    """An Anthropic Message as a ``chat.completion``."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[JSON] = []
    for block in resp.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input", {})).decode(),
                    },
                }
            )
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    if calls:
        message["tool_calls"] = calls
    finish = map_stop_reason(resp.get("stop_reason")) or "stop"
    if calls and finish == "stop":
        finish = "tool_calls"
    return {
        "id": _completion_id(resp.get("id")),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model or resp.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": Usage.from_anthropic(resp.get("usage")).to_openai(),
    }


# --------------------------------------------------------------------------- stream

_CHUNK_END = b',"finish_reason":null}]}\n\n'
_DONE = b"data: [DONE]\n\n"


class AnthropicToOpenAIStream:
    """Messages SSE bytes in, ``chat.completion.chunk`` SSE bytes out.

    ``include_usage`` mirrors the client's ``stream_options.include_usage``:
    when set, the usage chunk (empty ``choices``) precedes ``data: [DONE]``.
    """

    __slots__ = (
        "_parser",
        "_model",
        "_created",
        "_include_usage",
        "_prefix",
        "_started",
        "_finished",
        "_tool_index",
        "_next_tool",
        "_stop_reason",
        "_usage",
        "_errored",
        "_null_usage",
    )

    def __init__(
        self, *, include_usage: bool = False, model: str | None = None, created: int | None = None
    ) -> None:
        self._parser = SSEParser()
        self._model = model
        self._created = int(time.time()) if created is None else created
        self._include_usage = include_usage
        self._prefix = b""
        self._started = False
        self._finished = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._next_tool = 0
        self._stop_reason: str | None = None
        self._usage = Usage()
        self._errored = False
        self._null_usage = b',"usage":null' if include_usage else b""

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def stop_reason(self) -> str | None:
        """Claude's ``stop_reason`` as received."""
        return self._stop_reason

    @property
    def finish_reason(self) -> str | None:
        return map_stop_reason(self._stop_reason)

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
                    self._delta(b'{"content":' + orjson.dumps(text) + b"}", out)
            elif dkind == "input_json_delta":
                partial = delta.get("partial_json")
                tool = self._tool_index.get(event.get("index", -1))
                if partial and tool is not None:
                    self._delta(
                        b'{"tool_calls":[{"index":'
                        + str(tool).encode()
                        + b',"function":{"arguments":'
                        + orjson.dumps(partial)
                        + b"}}]}",
                        out,
                    )
            elif dkind == "thinking_delta":
                thinking = delta.get("thinking")
                if thinking:
                    self._delta(b'{"reasoning_content":' + orjson.dumps(thinking) + b"}", out)
            # signature_delta, citations_delta: no OpenAI equivalent
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            btype = block.get("type")
            if btype == "tool_use":
                tool = self._next_tool
                self._next_tool += 1
                self._tool_index[event.get("index", -1)] = tool
                call = {
                    "index": tool,
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                self._delta(orjson.dumps({"tool_calls": [call]}), out)
                initial = block.get("input")
                if initial:
                    # Normally {} at start; a non-empty input is sent whole.
                    self._delta(
                        b'{"tool_calls":[{"index":'
                        + str(tool).encode()
                        + b',"function":{"arguments":'
                        + orjson.dumps(orjson.dumps(initial).decode())
                        + b"}}]}",
                        out,
                    )
            elif btype == "text" and block.get("text"):
                self._delta(b'{"content":' + orjson.dumps(block["text"]) + b"}", out)
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop_reason = delta["stop_reason"]
            self._usage.update_anthropic(event.get("usage"))
        elif kind == "message_start":
            if self._started:
                return  # a duplicate message_start must not restart the stream
            message = event.get("message") or {}
            self._usage = Usage.from_anthropic(message.get("usage"))
            self._begin(message, out)
        elif kind == "message_stop":
            self._finish(out)
        elif kind == "error":
            error = event.get("error")
            self._error(out, error if isinstance(error, dict) else {"message": str(error)})
        # ping, content_block_stop: nothing to send

    def _begin(self, message: JSON, out: list[bytes]) -> None:
        self._started = True
        self._prefix = (
            b'data: {"id":'
            + orjson.dumps(_completion_id(message.get("id")))
            + b',"object":"chat.completion.chunk","created":'
            + str(self._created).encode()
            + b',"model":'
            + orjson.dumps(self._model or message.get("model", ""))
            + self._null_usage
            + b',"choices":[{"index":0,"delta":'
        )
        out.append(self._prefix + b'{"role":"assistant","content":""}' + _CHUNK_END)

    def _delta(self, delta: bytes, out: list[bytes]) -> None:
        if not self._started:
            self._begin({}, out)
        out.append(self._prefix + delta + _CHUNK_END)

    def _finish(self, out: list[bytes]) -> None:
        if self._finished:
            return
        if not self._started:
            self._begin({}, out)
        self._finished = True
        finish = map_stop_reason(self._stop_reason) or "stop"
        if self._next_tool and finish == "stop":
            finish = "tool_calls"
        out.append(self._prefix + b'{},"finish_reason":' + orjson.dumps(finish) + b"}]}\n\n")
        if self._include_usage:
            head = self._prefix[: self._prefix.index(b',"usage":null')]
            out.append(
                head + b',"choices":[],"usage":' + orjson.dumps(self._usage.to_openai()) + b"}\n\n"
            )
        out.append(_DONE)

    def _error(self, out: list[bytes], error: JSON) -> None:
        self._finished = True
        self._errored = True
        payload = {
            "error": {
                "message": error.get("message", ""),
                "type": error.get("type", "api_error"),
                "param": None,
                "code": None,
            }
        }
        out.append(b"data: " + orjson.dumps(payload) + b"\n\n")
