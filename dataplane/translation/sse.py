"""Incremental server-sent-events parsing, robust to any chunk boundary.

Splitting happens on bytes (``\\n``), never on decoded text, so a chunk
boundary inside a multibyte UTF-8 character, inside ``\\r\\n`` or inside the
blank line that ends an event costs nothing special: the partial line stays
in the buffer until its end arrives.
"""

from __future__ import annotations


class SSEParser:
    """Feed bytes, get complete ``(event, data)`` pairs (``event`` may be ``b""``)."""

    __slots__ = ("_buf", "_event", "_data")

    def __init__(self) -> None:
        self._buf = b""
        self._event = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buf = self._buf + chunk if self._buf else chunk
        out: list[tuple[bytes, bytes]] = []
        start = 0
        find = buf.find
        while True:
            nl = find(b"\n", start)
            if nl < 0:
                break
            end = nl - 1 if nl > start and buf[nl - 1] == 13 else nl  # strip \r
            if end == start:
                if self._data:
                    data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                    out.append((self._event, data))
                    self._data = []
                self._event = b""
            else:
                line = buf[start:end]
                if line.startswith(b"data:"):
                    value = line[5:]
                    self._data.append(value[1:] if value[:1] == b" " else value)
                elif line.startswith(b"event:"):
                    value = line[6:]
                    self._event = value[1:] if value[:1] == b" " else value
                # comments (":") and other fields (id, retry) are ignored
            start = nl + 1
        self._buf = buf[start:] if start < len(buf) else b""
        return out

    def close(self) -> list[tuple[bytes, bytes]]:
        """Flush an event left without its terminating blank line."""
        out: list[tuple[bytes, bytes]] = []
        if self._buf:
            out = self.feed(b"\n\n")
        elif self._data:
            out = self.feed(b"\n")
        self._buf = b""
        return out
