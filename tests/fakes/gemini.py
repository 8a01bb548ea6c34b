"""A fake Gemini API (generateContent, streamGenerateContent?alt=sse) on 127.0.0.1.

Checks ``x-goog-api-key``; the conversation decides the answer like the other
fakes: ``[[bash: cmd]]`` in the last user turn with a ``Bash`` function
declared → a functionCall; a functionResponse last → a text quoting it;
otherwise a greeting. Usage comes in ``usageMetadata`` (the last chunk of a
stream).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.anthropic import BASH, Failure, Received


class FakeGemini:
    def __init__(self, api_key: str = "fake-gemini-key") -> None:
        self.api_key = api_key
        self.received: list[Received] = []
        self.failures: list[Failure] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.failures.clear()

    def fail_next(self, status: int, google_status: str, message: str = "") -> None:
        with self._lock:
            self.failures.append(Failure(status, google_status, message or google_status))

    def start(self) -> FakeGemini:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post(r"/v1beta/models/{model}:{method}", self.generate)
            app.router.add_route("*", "/{tail:.*}", self.unknown)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=run, name="fake-gemini", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    @staticmethod
    def _error(status: int, google_status: str, message: str) -> web.Response:
        body = {"error": {"code": status, "message": message, "status": google_status}}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")

    async def unknown(self, request: web.Request) -> web.Response:
        """Recorded and refused: a test sees every path that reached the provider."""
        raw = await request.read()
        with self._lock:
            self.received.append(Received(request.method, request.path, request.query_string, dict(request.headers), raw, None))
        return self._error(404, "NOT_FOUND", f"Unknown path {request.path}")

    @staticmethod
    def _parts(body: dict[str, Any]) -> list[dict[str, Any]]:
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        parts = last.get("parts") or []
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        if responses:
            said = [orjson.dumps(r.get("response")).decode() if not isinstance(r.get("response"), dict) else str(
                r["response"].get("content", r["response"].get("output", r["response"]))) for r in responses]
            return [{"text": "The tool said: " + " | ".join(s.strip() for s in said)}]
        text = "\n".join(p.get("text", "") for p in parts if "text" in p)
        declared = {f.get("name") for t in body.get("tools") or [] for f in t.get("functionDeclarations") or []}
        bash = BASH.search(text)
        if bash and "Bash" in declared:
            return [{"text": "I'll run that."}, {"functionCall": {"name": "Bash", "args": {"command": bash.group(1).strip()}}}]
        return [{"text": "Hello from the fake Gemini API. How can I help?"}]

    async def generate(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        with self._lock:
            self.received.append(Received(request.method, request.path, request.query_string, dict(request.headers), raw, body))
            failure = self.failures.pop(0) if self.failures else None
        if request.headers.get("x-goog-api-key") != self.api_key:
            return self._error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if failure is not None:
            return self._error(failure.status, failure.error_type, failure.message)
        if request.match_info["method"] == "countTokens" and isinstance(body, dict):
            # Either the turns alone, or a whole generateContentRequest (system, tools included).
            counted = body.get("generateContentRequest") or body
            if not counted.get("contents"):
                return self._error(400, "INVALID_ARGUMENT", "* CountTokensRequest.contents: contents is not specified")
            return web.Response(body=orjson.dumps({"totalTokens": max(1, len(orjson.dumps(counted)) // 4)}), content_type="application/json")
        if not isinstance(body, dict) or not body.get("contents"):
            return self._error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        model = request.match_info["model"]
        parts = self._parts(body)
        prompt = max(1, len(raw) // 4)
        output = max(1, sum(len(orjson.dumps(p)) // 4 for p in parts))
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}
        finish = "STOP"
        if request.match_info["method"] == "generateContent":
            doc = {
                "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": "fake-response-1",
            }
            return web.Response(body=orjson.dumps(doc), content_type="application/json")
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        await response.prepare(request)
        chunks: list[list[dict[str, Any]]] = []
        for part in parts:
            if "text" in part:
                words = part["text"].split(" ")
                chunks += [[{"text": (w if i == 0 else " " + w)}] for i, w in enumerate(words)]
            else:
                chunks.append([part])
        for i, chunk_parts in enumerate(chunks):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": chunk_parts}, "index": 0}
            doc: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response-1"}
            if i == len(chunks) - 1:
                candidate["finishReason"] = finish
                doc["usageMetadata"] = usage
            await response.write(b"data: " + orjson.dumps(doc) + b"\r\n\r\n")
        await response.write_eof()
        return response
