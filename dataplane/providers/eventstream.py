"""AWS event stream framing (``application/vnd.amazon.eventstream``), both ways.

A message is a 12-byte prelude (total length, headers length, CRC32 of those
eight bytes), the headers, the payload, and a CRC32 of everything before it;
all integers big-endian:
https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream

``EventStreamDecoder.feed`` takes bytes cut anywhere and returns the whole
messages they complete. ``encode_message`` exists for the fake and the tests.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
# The limits botocore's parser enforces: a frame claiming more is corrupt.
MAX_MESSAGE = 16 * 1024 * 1024
MAX_HEADERS = 128 * 1024
_MIN_MESSAGE = 16  # prelude + message CRC

# Header value types: fixed width (struct) or u16-length-prefixed (bytes, string).
_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)
_FIXED = {
    _BYTE: struct.Struct(">b"),
    _SHORT: struct.Struct(">h"),
    _INT: struct.Struct(">i"),
    _LONG: struct.Struct(">q"),
    _TIMESTAMP: struct.Struct(">q"),
}

Message = tuple[dict[str, Any], bytes]


class EventStreamError(ValueError):
    """The stream is corrupt (bad CRC or impossible lengths); it cannot resync."""


def _headers(buf: memoryview) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos, end = 0, len(buf)
    while pos < end:
        size = buf[pos]
        name = bytes(buf[pos + 1 : pos + 1 + size]).decode("utf-8")
        pos += 1 + size
        kind = buf[pos]
        pos += 1
        value: Any
        if kind == _TRUE:
            value = True
        elif kind == _FALSE:
            value = False
        elif kind in (_STRING, _BYTES):
            (length,) = _U16.unpack_from(buf, pos)
            raw = bytes(buf[pos + 2 : pos + 2 + length])
            pos += 2 + length
            value = raw.decode("utf-8") if kind == _STRING else raw
        elif kind == _UUID:
            value = bytes(buf[pos : pos + 16])
            pos += 16
        elif kind in _FIXED:
            fmt = _FIXED[kind]
            (value,) = fmt.unpack_from(buf, pos)
            pos += fmt.size
        else:
            raise EventStreamError(f"unknown header type {kind}")
        out[name] = value
    if pos != end:
        raise EventStreamError("headers overrun their declared length")
    return out


class EventStreamDecoder:
    """Incremental: keeps the unfinished tail, returns each completed message.

    The headers dicts it returns are shared between messages whose header bytes
    are identical (every Bedrock ``chunk`` event has the same three), so callers
    must not modify them.
    """

    __slots__ = ("_buf", "_seen")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._seen: dict[bytes, dict[str, Any]] = {}

    @property
    def pending(self) -> int:
        """Bytes of an unfinished message held back (non-zero at the end means a cut)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out: list[Message] = []
        start = 0
        size = len(buf)
        view = memoryview(buf)
        try:
            while size - start >= 12:
                total, hlen, crc = _PRELUDE.unpack_from(buf, start)
                if zlib.crc32(view[start : start + 8]) != crc:
                    raise EventStreamError("prelude CRC mismatch")
                if (
                    total < _MIN_MESSAGE
                    or total > MAX_MESSAGE
                    or hlen > MAX_HEADERS
                    or hlen + _MIN_MESSAGE > total
                ):
                    raise EventStreamError(
                        f"impossible frame lengths: total {total}, headers {hlen}"
                    )
                if size - start < total:
                    break
                end = start + total
                (msg_crc,) = _U32.unpack_from(buf, end - 4)
                if zlib.crc32(view[start : end - 4]) != msg_crc:
                    raise EventStreamError("message CRC mismatch")
                raw = bytes(view[start + 12 : start + 12 + hlen])
                headers = self._seen.get(raw)
                if headers is None:
                    headers = _headers(memoryview(raw))
                    if len(self._seen) < 16:
                        self._seen[raw] = headers
                out.append((headers, bytes(view[start + 12 + hlen : end - 4])))
                start = end
        finally:
            view.release()
        if start:
            del buf[:start]
        return out


def _encode_header(name: str, value: Any) -> bytes:
    raw_name = name.encode("utf-8")
    head = bytes([len(raw_name)]) + raw_name
    if value is True:
        return head + bytes([_TRUE])
    if value is False:
        return head + bytes([_FALSE])
    if isinstance(value, int):
        return head + bytes([_LONG]) + _FIXED[_LONG].pack(value)
    raw, kind = (
        (value.encode("utf-8"), _STRING) if isinstance(value, str) else (bytes(value), _BYTES)
    )
    return head + bytes([kind]) + _U16.pack(len(raw)) + raw


def encode_message(headers: dict[str, Any], payload: bytes) -> bytes:
    block = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = 12 + len(block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(block))
    prelude += _U32.pack(zlib.crc32(prelude))
    message = prelude + block + payload
    return message + _U32.pack(zlib.crc32(message))
