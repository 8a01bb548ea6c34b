"""Token usage as a provider reports it, in Anthropic's terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
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
