"""A fake Anthropic API that speaks the real wire format, on 127.0.0.1.

It checks ``x-api-key`` like the real API, answers Messages (streaming with the
documented event order, ``ping`` included, and non-streaming), count_tokens and
models, and records every request it receives so tests can assert on what
reached the provider. Behaviour is scripted by the conversation:

- the last user message contains ``[[bash: <command>]]`` and a ``Bash`` tool is
  offered → a ``tool_use`` turn calling Bash with that command;
- ``[[tool: <name> {json input}]]`` and a tool of that name is offered (an MCP
  tool, say) → a ``tool_use`` turn calling it with that input;
- the last user message carries a ``tool_result`` → a text answer quoting it;
- ``thinking`` enabled → a thinking block (with signature) before the text;
- otherwise a short text answer.

Failures are queued with ``fail_next`` (status + Anthropic error body, with
``x-should-retry``/``retry-after`` where the real API sends them) or
``cut_next_stream`` (the connection drops mid-stream). ``usage_next`` scripts
the next answer's ``usage`` (cache write split, server tool use…) as the real
API reports it: cache figures in ``message_start``, ``server_tool_use`` with the
final counts in ``message_delta``. ``event_delay`` slows a
stream down so a test can disconnect in the middle of one; ``hang_before_answer``
and ``gap_mid_stream`` make a provider that hangs, or thinks silently.

Run standalone for benchmarks: ``python -m tests.fakes.anthropic --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

_ids = itertools.count(1)
BASH = re.compile(r"\[\[bash:\s*(.+?)\]\]", re.S)
TOOL = re.compile(r"\[\[tool:\s*(\S+)\s*(\{.*?\})?\s*\]\]", re.S)
# "[[words: 20000]]": a long answer of that many words, one text delta each.
WORDS = re.compile(r"\[\[words:\s*(\d+)\s*\]\]")


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw: bytes
    body: Any


@dataclass
class Failure:
    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
    return "\n".join(parts)


def _tool_results(content: Any) -> list[str]:
    out = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                out.append(inner if isinstance(inner, str) else _text_of(inner))
    return out


def estimate_tokens(body: Any) -> int:
    return max(1, len(orjson.dumps(body.get("messages", []))) // 4 + len(orjson.dumps(body.get("system", ""))) // 4)


class FakeAnthropic:
    def __init__(self, api_key: str = "sk-ant-fake-provider-key", record: bool = True) -> None:
        self.api_key = api_key
        # Further keys this fake accepts (a provider with several credentials).
        self.extra_keys: set[str] = set()
        self.record = record
        self.received: list[Received] = []
        self.failures: list[Failure] = []
        self.usages: list[dict[str, Any]] = []
        self.cut_streams = 0
        self.event_delay = 0.0
        # A hung provider: seconds before answering at all (headers included),
        # and a silent gap in the middle of a stream (after its 3rd event).
        self.hang_before_answer = 0.0
        self.gap_mid_stream = 0.0
        self.port = 0
        self.streams_cancelled = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- control from tests --------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.failures.clear()
            self.usages.clear()
            self.cut_streams = 0
            self.event_delay = 0.0
            self.hang_before_answer = 0.0
            self.gap_mid_stream = 0.0
            self.streams_cancelled = 0
            self.extra_keys = set()

    def fail_next(self, status: int, error_type: str, message: str = "", **headers: str) -> None:
        with self._lock:
            self.failures.append(Failure(status, error_type, message or f"fake {error_type}", headers))

    def usage_next(self, usage: dict[str, Any]) -> None:
        """The next answer reports this usage (merged over the computed one)."""
        with self._lock:
            self.usages.append(usage)

    def cut_next_stream(self) -> None:
        with self._lock:
            self.cut_streams += 1

    def messages_received(self) -> list[Received]:
        return [r for r in self.received if r.path == "/v1/messages"]

    # --- server ----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model_id}", self.model)
        # Anything else (batches, files, organizations…) is recorded and refused
        # as the real API does, so a test sees every path that reached a provider.
        app.router.add_route("*", "/{tail:.*}", self.unknown)
        return app

    def start(self) -> FakeAnthropic:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._runner = web.AppRunner(self.app(), access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-anthropic", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # --- handlers --------------------------------------------------------------

    def _error(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": self._request_id()}
        hdrs = {"request-id": body["request_id"], **(headers or {})}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=hdrs)

    @staticmethod
    def _request_id() -> str:
        return f"req_fake{next(_ids):012d}"

    async def _record(self, request: web.Request) -> tuple[Received, web.Response | None]:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                # aiohttp undoes Content-Encoding itself; this is belt and braces.
                try:
                    body = orjson.loads(gzip.decompress(raw))
                except Exception:
                    body = None
        rec = Received(request.method, request.path, request.query_string, dict(request.headers), raw, body)
        with self._lock:
            if self.record:
                self.received.append(rec)
            failure = self.failures.pop(0) if self.failures else None
        presented = request.headers.get("x-api-key")
        if presented != self.api_key and presented not in self.extra_keys:
            return rec, self._error(401, "authentication_error", "invalid x-api-key")
        if failure is not None:
            return rec, self._error(failure.status, failure.error_type, failure.message, failure.headers)
        if raw and body is None:
            return rec, self._error(400, "invalid_request_error", "There was an issue with the JSON body")
        return rec, None

    async def unknown(self, request: web.Request) -> web.Response:
        _, refusal = await self._record(request)
        return refusal or self._error(404, "not_found_error", f"Not found: {request.path}")

    async def count_tokens(self, request: web.Request) -> web.Response:
        rec, refusal = await self._record(request)
        if refusal is not None:
            return refusal
        return web.json_response({"input_tokens": estimate_tokens(rec.body)}, dumps=lambda o: orjson.dumps(o).decode())

    async def models(self, request: web.Request) -> web.Response:
        _, refusal = await self._record(request)
        if refusal is not None:
            return refusal
        data = [self._model_doc(m) for m in ("claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")]
        doc = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    async def model(self, request: web.Request) -> web.Response:
        _, refusal = await self._record(request)
        if refusal is not None:
            return refusal
        return web.Response(body=orjson.dumps(self._model_doc(request.match_info["model_id"])), content_type="application/json")

    @staticmethod
    def _model_doc(model_id: str) -> dict[str, Any]:
        return {"type": "model", "id": model_id, "display_name": model_id, "created_at": "2025-09-29T00:00:00Z"}

    def _plan(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The content blocks of the answer, decided by the conversation."""
        # Claude Code also sends role "system" messages inside ``messages``;
        # the conversation's turn is the last *user* message.
        users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
        content = users[-1].get("content") if users else None
        blocks: list[dict[str, Any]] = []
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            blocks.append({"type": "thinking", "thinking": "Let me think about that.", "signature": "sig-fake-0123456789"})
        results = _tool_results(content)
        if results:
            blocks.append({"type": "text", "text": "The tool said: " + " | ".join(r.strip() for r in results)})
            return blocks
        text = _text_of(content)
        bash = BASH.search(text)
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        if bash and "Bash" in tools:
            blocks.append({"type": "text", "text": "I'll run that."})
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{next(_ids):010d}",
                    "name": "Bash",
                    "input": {"command": bash.group(1).strip(), "description": "Run the requested command"},
                }
            )
            return blocks
        tool = TOOL.search(text)
        if tool and tool.group(1) in tools:
            blocks.append({"type": "text", "text": f"I'll call {tool.group(1)}."})
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{next(_ids):010d}",
                    "name": tool.group(1),
                    "input": orjson.loads(tool.group(2) or "{}"),
                }
            )
            return blocks
        words = WORDS.search(text)
        if words:
            blocks.append({"type": "text", "text": " ".join(f"word{i}" for i in range(int(words.group(1))))})
            return blocks
        blocks.append({"type": "text", "text": "Hello from the fake Anthropic API. How can I help?"})
        return blocks

    @staticmethod
    def _usage(body: dict[str, Any]) -> dict[str, int]:
        cached = b"cache_control" in orjson.dumps(body)
        return {
            "input_tokens": estimate_tokens(body),
            "cache_creation_input_tokens": 1000 if cached else 0,
            "cache_read_input_tokens": 2000 if cached else 0,
            "output_tokens": 1,
        }

    async def messages(self, request: web.Request) -> web.StreamResponse:
        rec, refusal = await self._record(request)
        if refusal is not None:
            return refusal
        body = rec.body
        if not isinstance(body, dict) or "model" not in body or "max_tokens" not in body:
            return self._error(400, "invalid_request_error", "max_tokens: Field required")
        if self.hang_before_answer:
            await asyncio.sleep(self.hang_before_answer)
        blocks = self._plan(body)
        usage: dict[str, Any] = self._usage(body)
        output_tokens = sum(len(orjson.dumps(b)) // 8 + 1 for b in blocks)
        with self._lock:
            scripted = self.usages.pop(0) if self.usages else None
        final: dict[str, Any] = {}
        if scripted:
            scripted = dict(scripted)
            output_tokens = scripted.pop("output_tokens", output_tokens)
            if "server_tool_use" in scripted:
                final["server_tool_use"] = scripted.pop("server_tool_use")
            usage = usage | scripted
        stop_reason = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
        msg_id = f"msg_fake{next(_ids):012d}"
        headers = {
            "request-id": self._request_id(),
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
        }
        if not body.get("stream"):
            doc = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage | final | {"output_tokens": output_tokens},
            }
            return web.Response(body=orjson.dumps(doc), content_type="application/json", headers=headers)
        with self._lock:
            cut = self.cut_streams > 0
            if cut:
                self.cut_streams -= 1
        response = web.StreamResponse(status=200, headers=headers | {"cache-control": "no-cache"})
        response.content_type = "text/event-stream"
        await response.prepare(request)
        try:
            for i, event in enumerate(self._events(msg_id, body["model"], blocks, usage, output_tokens, stop_reason, final)):
                if cut and i == 4:
                    request.transport.close()  # type: ignore[union-attr]
                    return response
                await response.write(event)
                if i == 2 and self.gap_mid_stream:
                    await asyncio.sleep(self.gap_mid_stream)
                if self.event_delay:
                    await asyncio.sleep(self.event_delay)
        except (ConnectionResetError, asyncio.CancelledError):
            with self._lock:
                self.streams_cancelled += 1
            raise
        await response.write_eof()
        return response

    @staticmethod
    def _sse(kind: str, data: dict[str, Any]) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _events(
        self,
        msg_id: str,
        model: str,
        blocks: list[dict[str, Any]],
        usage: dict[str, Any],
        output_tokens: int,
        stop_reason: str,
        final: dict[str, Any] | None = None,
    ):
        sse = self._sse
        yield sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        )
        yield sse("ping", {"type": "ping"})
        for index, block in enumerate(blocks):
            kind = block["type"]
            if kind == "text":
                yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
                words = block["text"].split(" ")
                for n, word in enumerate(words):
                    piece = word if n == 0 else " " + word
                    yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})
            elif kind == "thinking":
                yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": block["thinking"]}})
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": block["signature"]}})
            elif kind == "tool_use":
                yield sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}},
                )
                args = orjson.dumps(block["input"]).decode()
                for start in range(0, len(args), 7):
                    yield sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": args[start : start + 7]}},
                    )
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
        yield sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": (final or {}) | {"output_tokens": output_tokens},
            },
        )
        yield sse("message_stop", {"type": "message_stop"})


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Anthropic API for benchmarks")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--api-key", default="sk-ant-fake-provider-key")
    args = parser.parse_args()
    fake = FakeAnthropic(api_key=args.api_key, record=False)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
