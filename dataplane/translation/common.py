"""Shared pieces of the Anthropic Messages <-> OpenAI Chat Completions translation.

Pure functions and small value types: no I/O, no Django. Everything here runs
on the data plane's hot path, so helpers avoid copying payloads they only read.
"""

from __future__ import annotations

from typing import Any

import orjson

JSON = dict[str, Any]

# Anthropic stop_reason -> OpenAI finish_reason.
ANTHROPIC_TO_OPENAI_STOP: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# OpenAI finish_reason -> Anthropic stop_reason.
OPENAI_TO_ANTHROPIC_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# An OpenAI tool message carries no error flag; an Anthropic tool_result with
# ``is_error`` is sent with this prefix, and a tool message starting with it
# comes back as ``is_error: true``.
TOOL_ERROR_PREFIX = "[tool error] "

# reasoning_effort <-> thinking budget_tokens.
EFFORT_BUDGET: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}


def budget_to_effort(budget: int) -> str:
    """An Anthropic thinking budget as an OpenAI ``reasoning_effort``."""
    if budget < 4096:
        return "low"
    if budget < 16384:
        return "medium"
    return "high"


def map_finish_reason(finish_reason: str | None) -> str | None:
    if finish_reason is None:
        return None
    return OPENAI_TO_ANTHROPIC_STOP.get(finish_reason, "end_turn")


def map_stop_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return ANTHROPIC_TO_OPENAI_STOP.get(stop_reason, "stop")


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


class Usage:
    """Token counts in Anthropic's shape: ``input_tokens`` excludes cached tokens.

    OpenAI's ``prompt_tokens`` is ``input_tokens + cache_read_input_tokens +
    cache_creation_input_tokens``; its ``prompt_tokens_details.cached_tokens``
    is ``cache_read_input_tokens``.
    """

    __slots__ = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "reasoning_tokens",
    )

    def __init__(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_read_input_tokens = cache_read_input_tokens
        self.cache_creation_input_tokens = cache_creation_input_tokens
        self.reasoning_tokens = reasoning_tokens

    def __repr__(self) -> str:
        return (
            f"Usage(input={self.input_tokens}, output={self.output_tokens}, "
            f"cache_read={self.cache_read_input_tokens}, "
            f"cache_creation={self.cache_creation_input_tokens})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Usage):
            return NotImplemented
        return (
            self.input_tokens == other.input_tokens
            and self.output_tokens == other.output_tokens
            and self.cache_read_input_tokens == other.cache_read_input_tokens
            and self.cache_creation_input_tokens == other.cache_creation_input_tokens
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @classmethod
    def from_openai(cls, usage: Any) -> Usage:
        if not isinstance(usage, dict):
            return cls()
        prompt = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
        if not cached:
            # DeepSeek reports its cache hits under its own name.
            cached = _int(usage.get("prompt_cache_hit_tokens"))
        cdetails = usage.get("completion_tokens_details")
        reasoning = _int(cdetails.get("reasoning_tokens")) if isinstance(cdetails, dict) else 0
        return cls(
            input_tokens=max(prompt - cached, 0),
            output_tokens=_int(usage.get("completion_tokens")),
            cache_read_input_tokens=cached,
            reasoning_tokens=reasoning,
        )

    @classmethod
    def from_anthropic(cls, usage: Any) -> Usage:
        if not isinstance(usage, dict):
            return cls()
        return cls(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cache_read_input_tokens=_int(usage.get("cache_read_input_tokens")),
            cache_creation_input_tokens=_int(usage.get("cache_creation_input_tokens")),
        )

    def update_anthropic(self, usage: Any) -> None:
        """Apply a ``message_delta`` usage: the fields it carries are cumulative."""
        if not isinstance(usage, dict):
            return
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            value = usage.get(name)
            if isinstance(value, int):
                setattr(self, name, value)

    def to_anthropic(self) -> JSON:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }

    def to_openai(self) -> JSON:
        prompt = self.prompt_tokens
        out: JSON = {
            "prompt_tokens": prompt,
            "completion_tokens": self.output_tokens,
            "total_tokens": prompt + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read_input_tokens},
        }
        if self.reasoning_tokens:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return out


def dumps_str(value: Any) -> str:
    return orjson.dumps(value).decode()


def parse_arguments(arguments: Any) -> Any:
    """OpenAI function arguments (a JSON string) as an Anthropic tool input object."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def text_of(content: Any, sep: str = "") -> str:
    """The text of a string or a list of text parts/blocks (other parts skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return sep.join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text", "output_text")
        )
    return str(content)


def note(dropped: list[str] | None, path: str) -> None:
    if dropped is not None:
        dropped.append(path)
