"""A fake OpenAI Chat Completions API on 127.0.0.1, in OpenAI's wire format.

Checks ``Authorization: Bearer`` (or Azure's ``api-key`` on deployment URLs),
answers streaming (``chat.completion.chunk`` events, tool-call arguments in
fragments, a final usage chunk when ``stream_options.include_usage``, then
``data: [DONE]``) and non-streaming. The conversation decides the answer the
same way as the fake Anthropic API: ``[[bash: cmd]]`` in the last user message
with a ``Bash`` tool offered → a tool call; a ``tool`` message last → a text
quoting it; otherwise a greeting.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.anthropic import BASH, Failure, Received

_ids = itertools.count(1)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


class FakeOpenAI:
    def __init__(self, api_key: str = "sk-fake-openai-key") -> None:
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

    def fail_next(self, status: int, error_type: str, message: str = "", **headers: str) -> None:
        with self._lock:
            self.failures.append(Failure(status, error_type, message or f"fake {error_type}", headers))

    def start(self) -> FakeOpenAI:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/v1/chat/completions", self.chat)
            app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
            app.router.add_route("*", "/{tail:.*}", self.unknown)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    @staticmethod
    def _error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": error_type}}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers or {})

    async def unknown(self, request: web.Request) -> web.Response:
        """Recorded and refused: a test sees every path that reached the provider."""
        raw = await request.read()
        with self._lock:
            self.received.append(Received(request.method, request.path, request.query_string, dict(request.headers), raw, None))
        return self._error(404, "invalid_request_error", f"Unknown path {request.path}")

    def _plan(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            results = [m.get("content") for m in messages[::-1] if m.get("role") == "tool"]
            return "The tool said: " + " | ".join(_text(r).strip() for r in results[::-1] if r), []
        users = [m for m in messages if m.get("role") == "user"]
        text = _text(users[-1].get("content")) if users else ""
        bash = BASH.search(text)
        tools = {t.get("function", {}).get("name") for t in body.get("tools") or []}
        if bash and "Bash" in tools:
            call = {
                "id": f"call_fake{next(_ids):08d}",
                "type": "function",
                "function": {"name": "Bash", "arguments": orjson.dumps({"command": bash.group(1).strip(), "description": "Run it"}).decode()},
            }
            return "", [call]
        return "Hello from the fake OpenAI API. How can I help?", []

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        with self._lock:
            self.received.append(Received(request.method, request.path, request.query_string, dict(request.headers), raw, body))
            failure = self.failures.pop(0) if self.failures else None
        azure = request.path.startswith("/openai/deployments/")
        presented = request.headers.get("api-key") if azure else request.headers.get("authorization", "").removeprefix("Bearer ")
        if presented != self.api_key:
            return self._error(401, "invalid_api_key", "Incorrect API key provided.")
        if failure is not None:
            return self._error(failure.status, failure.error_type, failure.message, failure.headers)
        if not isinstance(body, dict) or not body.get("messages"):
            return self._error(400, "invalid_request_error", "messages is required")
        model = request.match_info.get("deployment") or body.get("model", "")
        text, calls = self._plan(body)
        prompt = max(1, len(raw) // 4)
        completion = max(1, len(text) // 4 + sum(len(c["function"]["arguments"]) // 4 for c in calls))
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                 "prompt_tokens_details": {"cached_tokens": 0}}
        finish = "tool_calls" if calls else "stop"
        cid = f"chatcmpl-fake{next(_ids):08d}"
        created = int(time.time())
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = calls
            doc = {"id": cid, "object": "chat.completion", "created": created, "model": model,
                   "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
            return web.Response(body=orjson.dumps(doc), content_type="application/json")
        response = web.StreamResponse(headers={"cache-control": "no-cache"})
        response.content_type = "text/event-stream"
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
            doc = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra}
            return b"data: " + orjson.dumps(doc) + b"\n\n"

        await response.write(chunk({"role": "assistant", "content": ""}))
        for n, word in enumerate(text.split(" ") if text else []):
            await response.write(chunk({"content": word if n == 0 else " " + word}))
        for i, call in enumerate(calls):
            args = call["function"]["arguments"]
            await response.write(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                                         "function": {"name": "Bash", "arguments": ""}}]}))
            for start in range(0, len(args), 5):
                await response.write(chunk({"tool_calls": [{"index": i, "function": {"arguments": args[start:start + 5]}}]}))
        await response.write(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            doc = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": usage}
            await response.write(b"data: " + orjson.dumps(doc) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
