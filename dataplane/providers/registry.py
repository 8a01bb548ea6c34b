"""Provider kind → the module that speaks to it."""

from __future__ import annotations

from typing import Any

from dataplane.providers.anthropic import ANTHROPIC
from dataplane.providers.bedrock import BEDROCK
from dataplane.providers.gemini import GEMINI
from dataplane.providers.openai import OPENAI
from dataplane.providers.vertex import VERTEX

MODULES: dict[str, Any] = {
    "anthropic": ANTHROPIC,
    "bedrock": BEDROCK,
    "vertex": VERTEX,
    "gemini": GEMINI,
    "openai": OPENAI,
    "azure_openai": OPENAI,
    "openai_compatible": OPENAI,
}


def module_for(kind: str) -> Any:
    return MODULES[kind]
