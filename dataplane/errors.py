"""Errors the gateway itself raises, rendered in the caller's API shape."""

from __future__ import annotations

import re
from typing import Any

import orjson

# https://docs.anthropic.com/en/api/errors
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    431: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class GatewayError(Exception):
    """A refusal with a status, a type and a message that says what to do.

    ``retry=False`` adds ``x-should-retry: false``: Claude Code then stops at
    once instead of retrying for minutes a request that cannot succeed.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        retry: bool | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        key: Any = None,
    ) -> None:
        super().__init__(message)
        # The key that was refused (disabled, expired), so the attempt is logged against it.
        self.key = key
        self.status = status
        self.message = message
        self.error_type = error_type or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        self.retry = retry
        self.headers = headers


def anthropic_error_body(error_type: str, message: str, request_id: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    )


def anthropic_sse_error(error_type: str, message: str) -> bytes:
    """The event Anthropic sends when a stream fails after it has started."""
    data = orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})
    return b"event: error\ndata: " + data + b"\n\n"


def sse_error(shape: str, status: int, error_type: str, message: str) -> bytes:
    """The last event of a stream that failed after it started, in the caller's
    shape: Anthropic's ``error`` event; for OpenAI callers a ``data:`` chunk with
    an ``error`` object (the OpenAI SDKs raise it); for Gemini callers Google's
    error JSON as a chunk."""
    if shape == "openai":
        return b"data: " + openai_error_body(status, message) + b"\n\n"
    if shape == "gemini":
        body = {"error": {"code": status, "message": message, "status": "UNAVAILABLE" if status >= 500 else "ABORTED"}}
        return b"data: " + orjson.dumps(body) + b"\n\n"
    return anthropic_sse_error(error_type, message)


# Claude Code compacts the conversation and retries when a provider says the
# prompt is too long, matching on these messages: they must arrive word for word.
_CONTEXT_TOO_LONG = re.compile(r"^\s*(prompt is too long|input is too long)", re.IGNORECASE)
_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:[^\s\"',]+")
_ACCOUNT = re.compile(r"(?<!\d)\d{12}(?!\d)")
_GCP_PROJECT = re.compile(r"projects/[^/\s\"']+")


def context_too_long(message: str) -> bool:
    return _CONTEXT_TOO_LONG.match(message) is not None


def hide_cloud_ids(message: str) -> str:
    """A provider's error as the caller may see it: no AWS account ids or ARNs,
    no GCP project ids (they name the company's cloud accounts)."""
    message = _ARN.sub("arn:aws:…", message)
    message = _ACCOUNT.sub("…", message)
    return _GCP_PROJECT.sub("projects/…", message)


# https://platform.openai.com/docs/guides/error-codes
_OPENAI_TYPES = {
    401: ("authentication_error", "invalid_api_key"),
    402: ("insufficient_quota", "budget_exceeded"),
    403: ("permission_error", "model_not_allowed"),
    404: ("invalid_request_error", "not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def openai_error_body(status: int, message: str) -> bytes:
    error_type, code = _OPENAI_TYPES.get(
        status, ("invalid_request_error" if status < 500 else "server_error", None)
    )
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}})


def anthropic_error_to_openai(status: int, body: bytes) -> bytes:
    """An Anthropic error body, re-said in OpenAI's shape."""
    try:
        doc = orjson.loads(body)
        message = str(doc["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = body[:500].decode("utf-8", "replace")
    return openai_error_body(status, message)
