"""Anthropic Messages API <-> OpenAI Chat Completions API translation.

Also Anthropic Messages <-> Google Gemini ``generateContent``: see ``gemini``.

Pure and synchronous: dicts and bytes in, dicts and bytes out. See
``anthropic_to_openai`` (Anthropic client, OpenAI-compatible model) and
``openai_to_anthropic`` (OpenAI client, Claude model).
"""

from __future__ import annotations

from dataplane.translation.anthropic_to_openai import (
    OpenAIToAnthropicStream,
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from dataplane.translation.common import TOOL_ERROR_PREFIX, Usage
from dataplane.translation.converse import (
    ConverseStreamToAnthropic,
    anthropic_request_to_converse,
    converse_response_to_anthropic,
)
from dataplane.translation.gemini import (
    GEMINI_SIGNATURE_PREFIX,
    AnthropicToGeminiStream,
    GeminiToAnthropicStream,
    anthropic_request_to_gemini,
    anthropic_response_to_gemini,
    gemini_request_to_anthropic,
    gemini_response_to_anthropic,
)
from dataplane.translation.openai_to_anthropic import (
    AnthropicToOpenAIStream,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from dataplane.translation.responses import (
    AnthropicToResponsesStream,
    ResponsesUnsupported,
    anthropic_response_to_responses,
    responses_error,
    responses_request_to_anthropic,
    responses_unsupported,
)
from dataplane.translation.sse import SSEParser

__all__ = [
    "GEMINI_SIGNATURE_PREFIX",
    "TOOL_ERROR_PREFIX",
    "AnthropicToGeminiStream",
    "AnthropicToOpenAIStream",
    "AnthropicToResponsesStream",
    "ConverseStreamToAnthropic",
    "GeminiToAnthropicStream",
    "OpenAIToAnthropicStream",
    "ResponsesUnsupported",
    "SSEParser",
    "Usage",
    "anthropic_request_to_converse",
    "anthropic_request_to_gemini",
    "anthropic_request_to_openai",
    "anthropic_response_to_gemini",
    "anthropic_response_to_openai",
    "anthropic_response_to_responses",
    "converse_response_to_anthropic",
    "gemini_request_to_anthropic",
    "gemini_response_to_anthropic",
    "openai_request_to_anthropic",
    "openai_response_to_anthropic",
    "responses_error",
    "responses_request_to_anthropic",
    "responses_unsupported",
]
