"""Plain-ASGI request and response helpers for the hot path."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from dataplane.errors import GatewayError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def read_body(receive: Receive, limit: int, content_length: bytes | None, timeout: float = 60.0) -> bytes:
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise GatewayError(400, "The Content-Length header is not a number.") from None
        if declared > limit:
            raise GatewayError(413, _too_large(limit), retry=False)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise GatewayError(413, _too_large(limit), retry=False)
        return body
    parts = [body]
    size = len(body)
    # A body in several pieces gets a deadline: a client trickling bytes must
    # not hold a worker's connection and memory for ever.
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise GatewayError(413, _too_large(limit), retry=False)
                parts.append(chunk)
                if not message.get("more_body"):
                    return b"".join(parts)
    except TimeoutError:
        raise GatewayError(
            408, f"The request body did not arrive within {timeout:g} s; check the connection and send it again."
        ) from None


MAX_HEADERS = 128
MAX_HEADER_BYTES = 64 * 1024


def headers_too_large(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why the request's headers are refused, or None. The load balancer in
    front should bound them first (the ASGI server here does not)."""
    if len(headers) > MAX_HEADERS:
        return f"The request has {len(headers)} headers; Tollgate takes at most {MAX_HEADERS}."
    size = 0
    for k, v in headers:
        size += len(k) + len(v)
    if size > MAX_HEADER_BYTES:
        return f"The request's headers are {size // 1024} KiB; Tollgate takes at most {MAX_HEADER_BYTES // 1024} KiB."
    return None


def decode_body(raw: bytes, encoding: bytes | None, limit: int) -> bytes:
    """Undo Content-Encoding (Claude Code gzips large bodies), bounded against zip bombs."""
    if not encoding or encoding == b"identity":
        return raw
    enc = encoding.strip().lower()
    if enc in (b"gzip", b"x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif enc == b"deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise GatewayError(
            415,
            f"Content-Encoding '{enc.decode('latin-1')}' is not supported; send gzip, deflate or plain JSON.",
            retry=False,
        )
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise GatewayError(413, _too_large(limit, after_decompression=True), retry=False)
        out += inflater.flush()
    except zlib.error as exc:
        raise GatewayError(
            400, f"The request body is not valid {enc.decode('latin-1')} data ({exc}).", retry=False
        ) from None
    if not inflater.eof:
        raise GatewayError(400, "The compressed request body is truncated.", retry=False)
    if len(out) > limit:
        raise GatewayError(413, _too_large(limit, after_decompression=True), retry=False)
    return out


def _too_large(limit: int, after_decompression: bool = False) -> str:
    where = " once decompressed" if after_decompression else ""
    return (
        f"The request body is larger than this gateway's limit of {limit // (1024 * 1024)} MiB{where}. "
        "Shorten the conversation (for Claude Code: /compact) or ask your platform admin to raise "
        "TOLLGATE_MAX_BODY_BYTES."
    )


async def send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
