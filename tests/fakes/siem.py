"""Fake SIEM intakes on 127.0.0.1, each speaking its product's wire format.

- Elasticsearch ``POST /_bulk``: NDJSON action/document pairs; the answer has
  ``errors`` and one item per action, and ``refuse_seq`` makes that one
  document fail (429) while the ones before it are indexed, as a partial
  bulk failure does.
- Splunk HEC ``POST /services/collector/event`` with ``Authorization: Splunk
  <token>``: events as concatenated JSON objects, ``{"text": "Success",
  "code": 0, "ackId": n}``; ``POST /services/collector/ack`` answers an ack
  as true only after ``ack_after`` polls.
- Datadog ``POST /api/v2/logs`` with ``DD-API-KEY``: a JSON array, 202.
- A webhook ``POST /hook`` that checks the HMAC signature.
- Syslog over TCP (RFC 5424 messages, RFC 6587 octet counting), ``FakeSyslog``.

``down = True`` makes every HTTP intake answer 503 (a SIEM in maintenance).
What each accepted is kept in ``received[kind]`` in arrival order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeSiem:
    def __init__(self, *, hec_token: str = "hec-token-1", dd_key: str = "dd-key-1", hook_secret: str = "hook-secret-1") -> None:
        self.hec_token, self.dd_key, self.hook_secret = hec_token, dd_key, hook_secret
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.requests: dict[str, int] = defaultdict(int)
        self.headers: dict[str, dict[str, str]] = {}
        self.down = False
        self.refuse_seq: int | None = None
        self.ack_after = 0
        self._acks: dict[int, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.requests.clear()
            self.down, self.refuse_seq, self.ack_after = False, None, 0

    def seqs(self, kind: str) -> list[int]:
        return [int(d["seq"]) for d in self.received[kind]]

    def start(self) -> FakeSiem:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                path = self.path.split("?")[0]
                with fake._lock:
                    fake.requests[path] += 1
                    fake.headers[path] = {k.lower(): v for k, v in self.headers.items()}
                    if fake.down:
                        return self._answer(503, {"error": "maintenance"})
                    handler = {
                        "/_bulk": fake._bulk,
                        "/services/collector/event": fake._hec,
                        "/services/collector/ack": fake._hec_ack,
                        "/api/v2/logs": fake._datadog,
                        "/hook": fake._hook,
                    }.get(path)
                    if handler is None:
                        return self._answer(404, {"error": "no such intake"})
                    status, answer = handler(body, {k.lower(): v for k, v in self.headers.items()})
                self._answer(status, answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- intakes (called under the lock) ---

    def _bulk(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items, errors = [], False
        for action, doc in zip(lines[::2], lines[1::2], strict=True):
            meta = action["index"]
            if errors or doc["seq"] == self.refuse_seq:
                errors = True
                items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "status": 429,
                              "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}})
                continue
            self.received["elastic"].append({**doc, "_id": meta["_id"], "_index": meta["_index"]})
            items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "status": 201, "result": "created"}})
        if errors:
            self.refuse_seq = None  # the cluster recovers
        return 200, {"took": 1, "errors": errors, "items": items}

    def _hec(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("authorization") != f"Splunk {self.hec_token}":
            return 403, {"text": "Invalid token", "code": 4}
        decoder, text, at, events = json.JSONDecoder(), body.decode(), 0, []
        while at < len(text):
            while at < len(text) and text[at].isspace():
                at += 1
            if at >= len(text):
                break
            event, at = decoder.raw_decode(text, at)
            events.append(event)
        for event in events:
            self.received["splunk"].append({**event["event"], "_sourcetype": event["sourcetype"], "_time": event["time"]})
        ack_id = len(self._acks)
        self._acks[ack_id] = 0
        return 200, {"text": "Success", "code": 0, "ackId": ack_id}

    def _hec_ack(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        asked = json.loads(body)["acks"]
        answer = {}
        for ack_id in asked:
            self._acks[ack_id] = self._acks.get(ack_id, 0) + 1
            answer[str(ack_id)] = self._acks[ack_id] > self.ack_after
        return 200, {"acks": answer}

    def _datadog(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("dd-api-key") != self.dd_key:
            return 403, {"errors": ["Forbidden"]}
        for entry in json.loads(body):
            self.received["datadog"].append({**json.loads(entry["message"]), "_service": entry["service"]})
        return 202, {}

    def _hook(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        stamp = headers.get("x-tollgate-timestamp", "")
        expected = "sha256=" + hmac.new(self.hook_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-tollgate-signature", ""), expected):
            return 401, {"error": "bad signature"}
        self.received["webhook"].extend(json.loads(body)["events"])
        return 200, {"ok": True}


_RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<proc>\S+) (?P<msgid>\S+) "
    rb"(?P<sd>\[[^\]]*\]|-) (?P<msg>.*)$",
    re.S,
)


class FakeSyslog:
    """A syslog collector over TCP reading RFC 6587 octet-counted RFC 5424 messages."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> FakeSyslog:
        self._sock.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        data = b""
        with conn:
            while chunk := conn.recv(65536):
                data += chunk
        while data:
            length, _, rest = data.partition(b" ")
            size = int(length)
            frame, data = rest[:size], rest[size:]
            match = _RFC5424.match(frame)
            assert match, frame[:200]
            msg = match["msg"]
            assert msg.startswith(b"\xef\xbb\xbf")  # RFC 5424: UTF-8 MSG starts with a BOM
            with self._lock:
                self.messages.append({
                    "pri": int(match["pri"]), "timestamp": match["ts"].decode(), "app": match["app"].decode(),
                    "msgid": match["msgid"].decode(), "sd": match["sd"].decode(), "doc": json.loads(msg[3:]),
                })
