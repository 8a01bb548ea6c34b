"""Model names from callers: what the gateway accepts, and how one goes into a URL.

A model name is client text that ends up in provider URLs (Gemini's
``/models/{model}:generateContent``, Azure's ``/deployments/{model}/``,
Anthropic's ``/v1/models/{id}``) next to Tollgate's own credential. So every
name is checked once at ingress against a closed character set, and every URL
is built with ``segment()``, never by pasting the name in: ``..``, ``%``,
``?``, ``#``, whitespace and control characters can't reach a provider path.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from dataplane.errors import GatewayError

MAX_LENGTH = 256
# Letters, digits and the punctuation real model ids use: Bedrock ARNs and
# profiles (``:`` ``/``), Vertex versions (``@``), OpenAI-compatible names
# (``org/model``, ``+``), Claude Code's context suffix (``[1m]``).
_ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+\-\[\]]*")


def invalid(name: str) -> str | None:
    """Why ``name`` is not an acceptable model name, or None."""
    if len(name) > MAX_LENGTH:
        return f"a model name is at most {MAX_LENGTH} characters"
    if not _ALLOWED.fullmatch(name):
        return "a model name has letters, digits and . _ : @ / + - [ ] only"
    if "/" in name and any(part in ("", ".", "..") for part in name.split("/")):
        return "a model name has no empty, '.' or '..' parts between slashes"
    return None


def checked(name: str, where: str = "model") -> str:
    """``name`` if acceptable, else a 400 that says what is wrong with it."""
    reason = invalid(name)
    if reason is not None:
        shown = name[:80].encode("unicode_escape").decode("ascii")
        raise GatewayError(400, f"{where}: '{shown}' is not a model name ({reason}).", retry=False)
    return name


# The first key of the body, when it is "model" (Claude Code and most SDKs put it there).
_LEADING_MODEL = re.compile(rb'\s*\{\s*"model"\s*:\s*"([^"\\]*)"')


def sole(body: bytes, model: str) -> None:
    """Refuse a body that names its model twice at the top level.

    Tollgate's parser keeps the last ``"model"``; a provider's parser that keeps
    the first would serve a model the allowlist and the price never saw, from
    the same bytes. When the body opens with the model that the parse kept, a
    first-wins and a last-wins reader agree, at the cost of one anchored match;
    only a body whose model comes later pays for a scan, and only one with two
    ``"model"`` tokens for an exact parse.
    """
    leading = _LEADING_MODEL.match(body)
    if leading is not None:
        if leading.group(1) == model.encode():
            return
    elif body.count(b'"model"') < 2:
        return
    if leading is not None or _duplicated_at_top(body, "model"):
        raise GatewayError(
            400, "model: the request body names its model more than once; send one \"model\" key.", retry=False
        )


def _duplicated_at_top(body: bytes, key: str) -> bool:
    """Whether the outermost object of ``body`` (already parsed once) repeats ``key``."""
    outermost: list[bool] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        outermost[:] = [sum(1 for name, _ in items if name == key) > 1]
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)  # the last object closed is the outermost
    except (ValueError, RecursionError):
        return True  # what can't be checked is not sent on
    return bool(outermost and outermost[0])


def segment(name: str) -> str:
    """One URL path segment: nothing in it can end the segment, the path or the query."""
    return quote(name, safe="-._~@")
