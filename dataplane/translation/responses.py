"""OpenAI Responses API client (Codex CLI), Claude model.

API:

* ``responses_request_to_anthropic(body, *, model=None, default_max_tokens=4096,
  dropped=None) -> dict`` turns a ``POST /v1/responses`` body into a Messages
  API request. It raises ``ResponsesUnsupported`` (a ``ValueError`` whose
  message is meant for the client) for features that need server-side state:
  ``previous_response_id``, ``conversation``, ``prompt``, ``background`` and
  ``item_reference`` items. ``responses_unsupported(body)`` returns that
  message without translating; ``responses_error(message, ...)`` shapes any
  message as an OpenAI error body.
* ``anthropic_response_to_responses(resp, *, model=None, response_id=None,
  created_at=None) -> dict`` turns a Claude Message into a ``response`` object.
* ``AnthropicToResponsesStream(*, model=None, response_id=None,
  created_at=None)`` turns Messages SSE bytes into Responses SSE bytes:
  ``feed(chunk) -> bytes``, ``close() -> bytes``, ``.usage`` (``Usage``),
  ``.stop_reason``, ``.status``, ``.finished``, ``.errored``. Chunk boundaries
  never change its output.

Request mapping:

* ``instructions`` and ``system``/``developer`` messages, wherever they are,
  become the top-level ``system`` (a string for one, text blocks for several);
* ``input`` items are grouped into alternating turns: assistant ``message``,
  ``reasoning`` and ``function_call`` items form one assistant turn;
  ``function_call_output`` items and user messages form one user turn, with
  the ``tool_result`` blocks first (Anthropic requires it);
* ``function_call`` <-> ``tool_use`` and ``function_call_output`` <->
  ``tool_result``, ``call_id`` being the ``tool_use`` id;
* a ``reasoning`` item becomes a ``thinking`` block only when it carries
  ``encrypted_content``: this module puts Claude's thinking signature there
  (``redacted_thinking`` data with the ``REDACTED_PREFIX``), so a Codex
  replay of its history gives Claude back its own blocks. Reasoning without
  it (another provider's) is dropped and reported;
* function tools only; other tools (``local_shell``, ``custom``,
  ``web_search`` ...) are dropped and reported, ``strict`` is not forwarded;
* ``reasoning.effort`` becomes a thinking budget. Without
  ``max_output_tokens`` the answer keeps ``_ANSWER_TOKENS`` beyond it. Thinking
  is dropped (and reported) when ``tool_choice`` forces a tool or when the
  last assistant turn calls tools without a thinking block, which Anthropic
  would both reject; ``temperature``/``top_p`` are dropped alongside thinking;
* ``temperature`` is clamped to 0..1; with both ``temperature`` and ``top_p``
  only ``temperature`` is kept (recent Claude models reject the pair).

Response mapping: each ``thinking`` block is a ``reasoning`` item (one
``summary_text`` part, the signature in ``encrypted_content``), each run of
``text`` blocks one assistant ``message`` item (one ``output_text`` part per
block), each ``tool_use`` a ``function_call`` item. ``max_tokens`` (and a full
context window) give ``status: "incomplete"`` with ``incomplete_details.reason
= "max_output_tokens"``, ``refusal`` gives ``"content_filter"``; the stream
then ends with ``response.incomplete`` as OpenAI's does, otherwise with
``response.completed``; an upstream error gives ``response.failed``. Item ids
derive from the response id and the output index, so the streamed and the
non-streamed translation of one answer are identical. Usage: Responses
``input_tokens`` include cached tokens (``input_tokens_details.cached_tokens``
being the cache reads), Anthropic's do not.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from dataplane.translation.common import (
    EFFORT_BUDGET,
    JSON,
    Usage,
    note,
    parse_arguments,
    text_of,
)
from dataplane.translation.sse import SSEParser

DEFAULT_MAX_TOKENS = 4096
# Answer tokens kept beyond the thinking budget when the client set no limit.
_ANSWER_TOKENS = 4096
# ``encrypted_content`` of a reasoning item made from a ``redacted_thinking`` block.
REDACTED_PREFIX = "redacted_thinking:"

_EFFORT_BUDGET: dict[str, int] = {**EFFORT_BUDGET, "xhigh": EFFORT_BUDGET["high"]}

# Accepted without loss (or with a loss reported more precisely below).
_REQUEST_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "stream",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "user",
        "store",
        "include",
        "text",
        "previous_response_id",
        "conversation",
        "background",
        "prompt",
    }
)


class ResponsesUnsupported(ValueError):
    """A Responses feature a stateless gateway cannot serve; ``str()`` is for the client."""


_STATELESS = (
    "this gateway does not store responses or conversations; "
    "send the whole conversation in `input` (with `store: false`, as Codex CLI does by default)"
)


def responses_unsupported(body: JSON) -> str | None:
    """Why ``body`` cannot be served statelessly, or ``None`` when it can."""
    if body.get("previous_response_id"):
        return f"`previous_response_id` is not supported: {_STATELESS}."
    if body.get("conversation"):
        return f"`conversation` is not supported: {_STATELESS}."
    if body.get("background"):
        return "`background` responses are not supported: this gateway does not store responses."
    if body.get("prompt"):
        return "Stored prompts (`prompt`) are not supported: send `instructions` and `input`."
    items = body.get("input")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("type") == "item_reference":
                return f"`item_reference` input items are not supported: {_STATELESS}."
    return None


def responses_error(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSON:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# --------------------------------------------------------------------------- request


def _image_block(part: JSON, dropped: list[str] | None) -> JSON | None:
    url = part.get("image_url")
    if isinstance(url, dict):  # tolerate the Chat Completions shape
        url = url.get("url")
    if not isinstance(url, str) or not url:
        note(dropped, "input.content.input_image.file_id")
        return None
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _file_block(part: JSON, dropped: list[str] | None) -> JSON | None:
    data = part.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            header, _, data = data.partition(",")
            media_type = header[5:].split(";", 1)[0] or "application/pdf"
        else:
            media_type = "application/pdf"
        if media_type == "application/pdf":
            return {
                "type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
    url = part.get("file_url")
    if isinstance(url, str) and url:
        return {"type": "document", "source": {"type": "url", "url": url}}
    note(dropped, "input.content.input_file")
    return None


def _content_blocks(content: Any, dropped: list[str] | None) -> list[JSON]:
    """Message (or tool output) content as Anthropic blocks; empty texts are left out."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if isinstance(text, str) and text:
                blocks.append({"type": "text", "text": text})
        elif kind == "refusal":
            text = part.get("refusal")
            if isinstance(text, str) and text:
                blocks.append({"type": "text", "text": text})
        elif kind == "input_image":
            image = _image_block(part, dropped)
            if image is not None:
                blocks.append(image)
        elif kind == "input_file":
            document = _file_block(part, dropped)
            if document is not None:
                blocks.append(document)
        else:
            note(dropped, f"input.content.{kind}")
    return blocks


def _tool_result(item: JSON, dropped: list[str] | None) -> JSON:
    output = item.get("output")
    content: Any
    if isinstance(output, str) or output is None:
        content = output or ""
    elif isinstance(output, list):
        content = [b for b in _content_blocks(output, dropped) if b["type"] in ("text", "image")]
    else:
        content = orjson.dumps(output).decode()
    return {"type": "tool_result", "tool_use_id": item.get("call_id", ""), "content": content}


def _thinking_block(item: JSON, dropped: list[str] | None) -> JSON | None:
    encrypted = item.get("encrypted_content")
    if not isinstance(encrypted, str) or not encrypted:
        note(dropped, "input.reasoning")
        return None
    if encrypted.startswith(REDACTED_PREFIX):
        return {"type": "redacted_thinking", "data": encrypted[len(REDACTED_PREFIX) :]}
    parts = item.get("summary") or item.get("content") or ()
    texts = [p.get("text", "") for p in parts if isinstance(p, dict)]
    thinking = texts[0] if len(texts) == 1 else "\n\n".join(texts)
    return {"type": "thinking", "thinking": thinking, "signature": encrypted}


class _Turns:
    """Anthropic messages built item by item, roles alternating."""

    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages: list[JSON] = []

    def _turn(self, role: str) -> list[JSON]:
        if not self.messages or self.messages[-1]["role"] != role:
            self.messages.append({"role": role, "content": []})
        content: list[JSON] = self.messages[-1]["content"]
        return content

    def add(self, role: str, blocks: list[JSON]) -> None:
        if blocks:
            self._turn(role).extend(blocks)

    def add_tool_result(self, block: JSON) -> None:
        content = self._turn("user")
        at = 0
        while at < len(content) and content[at]["type"] == "tool_result":
            at += 1
        content.insert(at, block)


def _input_items(body: JSON) -> list[Any]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": items}]
    return items if isinstance(items, list) else []


def responses_request_to_anthropic(
    body: JSON,
    *,
    model: str | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    dropped: list[str] | None = None,
) -> JSON:
    """A Responses API request as a Messages API request.

    ``model`` overrides the model name; ``default_max_tokens`` fills
    Anthropic's required ``max_tokens`` when the client sent no
    ``max_output_tokens``. Fields without an equivalent are left out and, when
    ``dropped`` is a list, named in it. Raises ``ResponsesUnsupported`` for
    stateful features (see ``responses_unsupported``).
    """
    problem = responses_unsupported(body)
    if problem is not None:
        raise ResponsesUnsupported(problem)

    system: list[str] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        system.append(instructions)
    turns = _Turns()

    for item in _input_items(body):
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                text = text_of(item.get("content"), "\n\n")
                if text:  # Anthropic rejects empty text blocks
                    system.append(text)
            elif role in ("user", "assistant"):
                turns.add(role, _content_blocks(item.get("content"), dropped))
            else:
                note(dropped, f"input.message.role.{role}")
        elif kind == "function_call":
            turns.add(
                "assistant",
                [
                    {
                        "type": "tool_use",
                        "id": item.get("call_id", ""),
                        "name": item.get("name", ""),
                        "input": parse_arguments(item.get("arguments")),
                    }
                ],
            )
        elif kind == "function_call_output":
            turns.add_tool_result(_tool_result(item, dropped))
        elif kind == "reasoning":
            block = _thinking_block(item, dropped)
            if block is not None:
                turns.add("assistant", [block])
        else:
            note(dropped, f"input.{kind}")

    messages = turns.messages
    out: JSON = {"model": model or body.get("model", ""), "messages": messages}
    if system:
        out["system"] = (
            system[0] if len(system) == 1 else [{"type": "text", "text": s} for s in system]
        )

    requested_max = body.get("max_output_tokens")
    max_tokens = (
        requested_max
        if isinstance(requested_max, int) and requested_max > 0
        else default_max_tokens
    )

    # tools and tool_choice
    converted: list[JSON] = []
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict) or tool.get("type") != "function":
            note(dropped, f"tools.{tool.get('type') if isinstance(tool, dict) else tool}")
            continue
        entry: JSON = {"name": tool.get("name", "")}
        if tool.get("description"):
            entry["description"] = tool["description"]
        entry["input_schema"] = tool.get("parameters") or {"type": "object", "properties": {}}
        converted.append(entry)
    tool_choice: JSON | None = None
    choice = body.get("tool_choice")
    if choice == "auto":
        tool_choice = {"type": "auto"}
    elif choice == "required":
        tool_choice = {"type": "any"}
    elif choice == "none":
        tool_choice = {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        tool_choice = {"type": "tool", "name": choice["name"]}
    elif choice is not None:
        note(dropped, "tool_choice")
    if converted:
        out["tools"] = converted
        if body.get("parallel_tool_calls") is False:
            tool_choice = tool_choice or {"type": "auto"}
            tool_choice["disable_parallel_tool_use"] = True
        if tool_choice is not None:
            out["tool_choice"] = tool_choice

    # reasoning -> thinking
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    budget = _EFFORT_BUDGET.get(effort) if isinstance(effort, str) else None
    if budget is not None:
        if requested_max is None:
            max_tokens = max(max_tokens, budget + _ANSWER_TOKENS)
        budget = min(budget, max_tokens - 1)
        forced = out.get("tool_choice", {}).get("type") in ("any", "tool")
        if budget < 1024 or forced or not _thinking_allowed(messages):
            note(dropped, "reasoning")
        else:
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    elif effort is not None and effort != "none":
        note(dropped, "reasoning")
    out["max_tokens"] = max_tokens

    if "thinking" in out:
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                note(dropped, name)
    else:
        if body.get("temperature") is not None:
            out["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
            if body.get("top_p") is not None:
                note(dropped, "top_p")
        elif body.get("top_p") is not None:
            out["top_p"] = body["top_p"]

    if body.get("stream"):
        out["stream"] = True
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}

    if body.get("store"):
        note(dropped, "store")
    text_options = body.get("text")
    if isinstance(text_options, dict):
        fmt = text_options.get("format")
        if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
            note(dropped, "text.format")
        dropped_text = (k for k in text_options if k != "format")
        for key in dropped_text:
            note(dropped, f"text.{key}")
    if dropped is not None:
        dropped.extend(k for k in body if k not in _REQUEST_FIELDS)
    return out


def _thinking_allowed(messages: list[JSON]) -> bool:
    """False when the last assistant turn calls tools without a leading thinking block.

    With thinking on, Anthropic requires that turn (the tool loop in progress)
    to start with its thinking; a history from a thinking-less model lacks it.
    """
    for message in reversed(messages):
        if message["role"] != "assistant":
            continue
        content = message["content"]
        if not any(b["type"] == "tool_use" for b in content):
            return True
        return content[0]["type"] in ("thinking", "redacted_thinking")
    return True


# --------------------------------------------------------------------------- response

# Anthropic stop_reason -> Responses incomplete_details.reason (absent: completed).
_INCOMPLETE: dict[str, str] = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}

# Anthropic error type -> Responses error code.
_ERROR_CODES: dict[str, str] = {
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "server_is_overloaded",
    "invalid_request_error": "invalid_prompt",
}


def _response_id(anthropic_id: Any) -> str:
    if isinstance(anthropic_id, str) and anthropic_id:
        return "resp_" + (anthropic_id[4:] if anthropic_id.startswith("msg_") else anthropic_id)
    return "resp_tollgate"


def _item_id(prefix: str, response_id: str, output_index: int) -> str:
    base = response_id[5:] if response_id.startswith("resp_") else response_id
    return f"{prefix}_{base}_{output_index}"


def responses_usage(usage: Usage) -> JSON:
    """``Usage`` in the Responses shape: ``input_tokens`` include cached tokens."""
    prompt = usage.prompt_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": prompt + usage.output_tokens,
    }


def _status(stop_reason: str | None) -> tuple[str, JSON | None]:
    reason = _INCOMPLETE.get(stop_reason) if stop_reason else None
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def _response(
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[JSON],
    usage: JSON | None,
    incomplete_details: JSON | None = None,
    error: JSON | None = None,
) -> JSON:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": None,
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "usage": usage,
    }


def _reasoning_item(item_id: str, thinking: str, encrypted: str) -> JSON:
    item: JSON = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": thinking}] if thinking else [],
    }
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


def _text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": []}


def _message_item(item_id: str, status: str, parts: list[JSON]) -> JSON:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def _call_item(item_id: str, status: str, call_id: str, name: str, arguments: str) -> JSON:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def anthropic_response_to_responses(
    resp: JSON,
    *,
    model: str | None = None,
    response_id: str | None = None,
    created_at: int | None = None,
) -> JSON:
    """An Anthropic Message as a Responses ``response`` object."""
    rid = response_id or _response_id(resp.get("id"))
    output: list[JSON] = []
    message: JSON | None = None  # the message item of the current run of text blocks
    for block in resp.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            if message is None:
                message = _message_item(_item_id("msg", rid, len(output)), "completed", [])
                output.append(message)
            message["content"].append(_text_part(block.get("text", "")))
            continue
        if kind == "thinking":
            output.append(
                _reasoning_item(
                    _item_id("rs", rid, len(output)),
                    block.get("thinking", ""),
                    block.get("signature") or "",
                )
            )
        elif kind == "redacted_thinking":
            output.append(
                _reasoning_item(
                    _item_id("rs", rid, len(output)), "", REDACTED_PREFIX + block.get("data", "")
                )
            )
        elif kind == "tool_use":
            output.append(
                _call_item(
                    _item_id("fc", rid, len(output)),
                    "completed",
                    block.get("id", ""),
                    block.get("name", ""),
                    orjson.dumps(block.get("input", {})).decode(),
                )
            )
        # other blocks (server tools) have no Responses equivalent here, but
        # end the text run, as they do in the stream
        message = None
    status, details = _status(resp.get("stop_reason"))
    return _response(
        rid,
        int(time.time()) if created_at is None else created_at,
        model or resp.get("model", ""),
        status,
        output,
        responses_usage(Usage.from_anthropic(resp.get("usage"))),
        details,
    )


# --------------------------------------------------------------------------- stream

_NONE, _TEXT, _THINKING, _TOOL, _SKIP = range(5)


class AnthropicToResponsesStream:
    """Messages SSE bytes in, Responses SSE bytes out.

    Every event has an ``event:`` line naming its ``type`` and a ``data:``
    JSON object carrying ``type`` and a ``sequence_number`` that starts at 0
    and increases by one. The stream is ``response.created``,
    ``response.in_progress``, the output items (each ``output_item.added`` ...
    ``output_item.done``), then exactly one of ``response.completed``,
    ``response.incomplete`` or ``response.failed``.
    """

    __slots__ = (
        "_parser",
        "_model",
        "_rid",
        "_created_at",
        "_seq",
        "_started",
        "_finished",
        "_errored",
        "_stop_reason",
        "_usage",
        "_output",
        "_block",
        "_block_index",
        "_item",
        "_item_id",
        "_output_index",
        "_content_index",
        "_pieces",
        "_signature",
        "_part_open",
        "_delta_head",
    )

    def __init__(
        self,
        *,
        model: str | None = None,
        response_id: str | None = None,
        created_at: int | None = None,
    ) -> None:
        self._parser = SSEParser()
        self._model = model
        self._rid = response_id
        self._created_at = int(time.time()) if created_at is None else created_at
        self._seq = 0
        self._started = False
        self._finished = False
        self._errored = False
        self._stop_reason: str | None = None
        self._usage = Usage()
        self._output: list[JSON] = []  # finished items
        self._block = _NONE  # kind of the open Anthropic block
        self._block_index: Any = None
        self._item: JSON | None = None  # the open output item (a message stays open across texts)
        self._item_id = ""
        self._output_index = -1
        self._content_index = -1
        self._pieces: list[str] = []  # text / thinking / arguments of the open block
        self._signature = ""
        self._part_open = False
        self._delta_head = b""

    # -- public state

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def stop_reason(self) -> str | None:
        """Claude's ``stop_reason`` as received."""
        return self._stop_reason

    @property
    def status(self) -> str:
        if self._errored:
            return "failed"
        if not self._finished:
            return "in_progress"
        return _status(self._stop_reason)[0]

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def errored(self) -> bool:
        return self._errored

    @property
    def response_id(self) -> str:
        return self._rid or _response_id(None)

    # -- feeding

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
                self._fail(out, {"type": "api_error", "message": "upstream stream ended early"})
        return b"".join(out)

    # -- events out

    def _emit(self, out: list[bytes], name: bytes, body: bytes) -> None:
        """``body`` is a JSON object's members after ``type`` (``b""`` or starting with ``,``)."""
        out.append(
            b"event: "
            + name
            + b'\ndata: {"type":"'
            + name
            + b'","sequence_number":'
            + str(self._seq).encode()
            + body
            + b"}\n\n"
        )
        self._seq += 1

    def _emit_json(self, out: list[bytes], name: bytes, fields: JSON) -> None:
        self._emit(out, name, b"," + orjson.dumps(fields)[1:-1])

    def _where(self) -> JSON:
        return {"item_id": self._item_id, "output_index": self._output_index}

    # -- events in

    def _handle(self, data: bytes, out: list[bytes]) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict):
                self._delta(event.get("index"), delta, out)
        elif kind == "content_block_start":
            block = event.get("content_block")
            if isinstance(block, dict):
                self._start_block(event.get("index"), block, out)
        elif kind == "content_block_stop":
            if event.get("index") == self._block_index:
                self._end_block(out)
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
            self._fail(out, error if isinstance(error, dict) else {"message": str(error)})
        # ping: nothing to send

    def _begin(self, message: JSON, out: list[bytes]) -> None:
        self._started = True
        if self._rid is None:
            self._rid = _response_id(message.get("id"))
        if self._model is None:
            model = message.get("model")
            self._model = model if isinstance(model, str) else ""
        response = _response(self._rid, self._created_at, self._model, "in_progress", [], None)
        self._emit_json(out, b"response.created", {"response": response})
        self._emit_json(out, b"response.in_progress", {"response": response})

    # -- blocks

    def _start_block(self, index: Any, block: JSON, out: list[bytes]) -> None:
        if not self._started:
            self._begin({}, out)
        if self._block != _NONE:
            self._end_block(out)
        btype = block.get("type")
        self._block_index = index
        if btype == "text":
            self._open_text(out)
            text = block.get("text")
            if text:
                self._text_delta(text, out)
        elif btype == "thinking":
            self._open_item(_THINKING, b"rs", out)
            self._signature = block.get("signature") or ""
            thinking = block.get("thinking")
            if thinking:
                self._thinking_delta(thinking, out)
        elif btype == "redacted_thinking":
            self._open_item(_THINKING, b"rs", out)
            self._signature = REDACTED_PREFIX + (block.get("data") or "")
        elif btype == "tool_use":
            self._open_item(
                _TOOL, b"fc", out, call_id=block.get("id", ""), name=block.get("name", "")
            )
            initial = block.get("input")
            if initial:  # normally {} at start; a non-empty input is sent whole
                self._arguments_delta(orjson.dumps(initial).decode(), out)
        else:
            self._close_message(out)
            self._block = _SKIP  # server tool blocks and unknown kinds

    def _delta(self, index: Any, delta: JSON, out: list[bytes]) -> None:
        dkind = delta.get("type")
        if dkind == "text_delta":
            text = delta.get("text")
            if not isinstance(text, str):
                return
            if self._block != _TEXT or index != self._block_index:
                # A text delta without its content_block_start (or reusing the
                # index of the thinking before it) still reaches the client.
                self._start_block(index, {"type": "text"}, out)
            if text:
                self._text_delta(text, out)
        elif dkind == "input_json_delta":
            partial = delta.get("partial_json")
            if self._block == _TOOL and index == self._block_index and partial:
                self._arguments_delta(partial, out)
        elif dkind == "thinking_delta":
            thinking = delta.get("thinking")
            if not isinstance(thinking, str):
                return
            if self._block != _THINKING or index != self._block_index:
                self._start_block(index, {"type": "thinking"}, out)
            if thinking:
                self._thinking_delta(thinking, out)
        elif dkind == "signature_delta" and self._block == _THINKING:
            self._signature += delta.get("signature") or ""
        # citations_delta: no Responses equivalent here

    def _open_item(
        self, block: int, prefix: bytes, out: list[bytes], call_id: str = "", name: str = ""
    ) -> None:
        self._close_message(out)
        self._block = block
        self._output_index = len(self._output)
        self._item_id = _item_id(prefix.decode(), self.response_id, self._output_index)
        self._pieces = []
        if block == _THINKING:
            self._signature = ""
            self._part_open = False
            item: JSON = {"id": self._item_id, "type": "reasoning", "summary": []}
        else:
            item = _call_item(self._item_id, "in_progress", call_id, name, "")
        self._item = item
        self._emit_json(
            out, b"response.output_item.added", {"output_index": self._output_index, "item": item}
        )

    def _open_text(self, out: list[bytes]) -> None:
        if self._item is None or self._item["type"] != "message":
            self._output_index = len(self._output)
            self._item_id = _item_id("msg", self.response_id, self._output_index)
            self._item = _message_item(self._item_id, "in_progress", [])
            self._content_index = -1
            self._emit_json(
                out,
                b"response.output_item.added",
                {"output_index": self._output_index, "item": self._item},
            )
        self._block = _TEXT
        self._content_index += 1
        self._pieces = []
        self._emit_json(
            out,
            b"response.content_part.added",
            self._where() | {"content_index": self._content_index, "part": _text_part("")},
        )
        self._delta_head = (
            b',"item_id":'
            + orjson.dumps(self._item_id)
            + b',"output_index":'
            + str(self._output_index).encode()
            + b',"content_index":'
            + str(self._content_index).encode()
            + b',"logprobs":[],"delta":'
        )

    def _text_delta(self, text: str, out: list[bytes]) -> None:
        self._pieces.append(text)
        self._emit(out, b"response.output_text.delta", self._delta_head + orjson.dumps(text))

    def _thinking_delta(self, thinking: str, out: list[bytes]) -> None:
        if not self._part_open:
            self._part_open = True
            self._emit_json(
                out,
                b"response.reasoning_summary_part.added",
                self._where() | {"summary_index": 0, "part": {"type": "summary_text", "text": ""}},
            )
            self._delta_head = (
                b',"item_id":'
                + orjson.dumps(self._item_id)
                + b',"output_index":'
                + str(self._output_index).encode()
                + b',"summary_index":0,"delta":'
            )
        self._pieces.append(thinking)
        self._emit(
            out, b"response.reasoning_summary_text.delta", self._delta_head + orjson.dumps(thinking)
        )

    def _arguments_delta(self, partial: str, out: list[bytes]) -> None:
        self._pieces.append(partial)
        self._emit_json(
            out, b"response.function_call_arguments.delta", self._where() | {"delta": partial}
        )

    def _end_block(self, out: list[bytes]) -> None:
        """Close the open Anthropic block (a message item stays open for a following text)."""
        block = self._block
        self._block = _NONE
        self._block_index = None
        if block == _TEXT:
            text = "".join(self._pieces)
            where = self._where() | {"content_index": self._content_index}
            self._emit_json(
                out, b"response.output_text.done", where | {"text": text, "logprobs": []}
            )
            part = _text_part(text)
            self._emit_json(out, b"response.content_part.done", where | {"part": part})
            assert self._item is not None
            self._item["content"].append(part)
        elif block == _THINKING:
            thinking = "".join(self._pieces)
            if self._part_open:
                where = self._where() | {"summary_index": 0}
                self._emit_json(
                    out, b"response.reasoning_summary_text.done", where | {"text": thinking}
                )
                self._emit_json(
                    out,
                    b"response.reasoning_summary_part.done",
                    where | {"part": {"type": "summary_text", "text": thinking}},
                )
            self._done_item(_reasoning_item(self._item_id, thinking, self._signature), out)
        elif block == _TOOL:
            if not self._pieces:
                self._arguments_delta("{}", out)  # no input at all: still a JSON object
            arguments = "".join(self._pieces)
            assert self._item is not None
            self._emit_json(
                out,
                b"response.function_call_arguments.done",
                self._where() | {"name": self._item["name"], "arguments": arguments},
            )
            item = self._item
            self._done_item(
                _call_item(self._item_id, "completed", item["call_id"], item["name"], arguments),
                out,
            )
        self._pieces = []

    def _close_message(self, out: list[bytes]) -> None:
        if self._block == _TEXT:
            self._end_block(out)
        item = self._item
        if item is not None and item["type"] == "message":
            item["status"] = "completed"
            self._done_item(item, out)

    def _done_item(self, item: JSON, out: list[bytes]) -> None:
        self._item = None
        self._output.append(item)
        self._emit_json(
            out, b"response.output_item.done", {"output_index": self._output_index, "item": item}
        )

    # -- the end

    def _finish(self, out: list[bytes]) -> None:
        if self._finished:
            return
        if not self._started:
            self._begin({}, out)
        if self._block != _NONE:
            self._end_block(out)
        self._close_message(out)
        self._finished = True
        status, details = _status(self._stop_reason)
        response = _response(
            self.response_id,
            self._created_at,
            self._model or "",
            status,
            self._output,
            responses_usage(self._usage),
            details,
        )
        name = b"response.completed" if status == "completed" else b"response.incomplete"
        self._emit_json(out, name, {"response": response})

    def _fail(self, out: list[bytes], error: JSON) -> None:
        if not self._started:
            self._begin({}, out)
        self._finished = True
        self._errored = True
        etype = error.get("type")
        code = _ERROR_CODES.get(etype, "server_error") if isinstance(etype, str) else "server_error"
        message = error.get("message")
        response = _response(
            self.response_id,
            self._created_at,
            self._model or "",
            "failed",
            self._output,
            responses_usage(self._usage),
            error={"code": code, "message": message if isinstance(message, str) else ""},
        )
        self._emit_json(out, b"response.failed", {"response": response})
