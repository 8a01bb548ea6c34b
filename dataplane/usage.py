"""Token usage as a provider reports it, in Anthropic's terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    # Every cache write; ``cache_write_1h_tokens`` of them for an hour, the rest for 5 minutes.
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    web_search_requests: int = 0
    # Who asked: the Claude Code subagent (x-claude-code-agent-id, sent only by
    # subagents) or "" for the main loop. Carried here because the adapter is
    # the one piece that sees both the request and the usage it reports.
    agent_id: str = ""
    model: str = ""
    error_type: str = ""
    error_message: str = ""
    stop_reason: str = ""

    def take(self, usage: dict[str, Any]) -> None:
        # Counts are cumulative: a later event's figure replaces the earlier one.
        value = usage.get("input_tokens")
        if value is not None:
            self.input_tokens = int(value)
        value = usage.get("output_tokens")
        if value is not None:
            self.output_tokens = int(value)
        value = usage.get("cache_read_input_tokens")
        if value is not None:
            self.cache_read_tokens = int(value)
        value = usage.get("cache_creation_input_tokens")
        if value is not None:
            self.cache_write_tokens = int(value)
        # https://platform.claude.com/docs/en/build-with-claude/prompt-caching#1-hour-cache-duration
        split = usage.get("cache_creation")
        if split.__class__ is dict:
            hour = int(split.get("ephemeral_1h_input_tokens") or 0)
            self.cache_write_1h_tokens = hour
            total = hour + int(split.get("ephemeral_5m_input_tokens") or 0)
            if total > self.cache_write_tokens:
                self.cache_write_tokens = total
        tools = usage.get("server_tool_use")
        if tools.__class__ is dict:
            self.web_search_requests = int(tools.get("web_search_requests") or 0)
