"""A fake upstream MCP server: the official SDK's server on a real local port.

It serves both protocol revisions (the SDK's streamable HTTP app), guards
``/mcp`` with a bearer token like a real hosted server (a static token, or
the tokens its own ``/token`` endpoint hands out for the client-credentials
grant), and records the headers and calls it receives. Its tools:

- ``read_file`` / ``write_file`` / ``delete_file`` over an in-memory dict;
- ``echo`` answers with its text; ``big`` with ``size`` bytes of text;
- ``fail`` answers with ``isError`` set.
"""

from __future__ import annotations

import base64
import itertools
import socket
import threading
import time
from typing import Any

import orjson
import uvicorn
from mcp.server.mcpserver import MCPServer

STATIC_TOKEN = "upstream-static-token"
CLIENT_ID = "tollgate-client"
CLIENT_SECRET = "tollgate-client-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeMcpServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.files: dict[str, str] = {"readme.txt": "tollgate-mcp-readme-42"}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.tokens_issued = 0
        self._tokens = itertools.count(1)
        self._valid = {STATIC_TOKEN}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.headers.clear()
            self.files = {"readme.txt": "tollgate-mcp-readme-42"}

    def _record(self, name: str, args: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((name, args))

    def _app(self) -> Any:
        server = MCPServer("fake-files", version="1.0")

        @server.tool(description="Read a file by name.")
        def read_file(path: str) -> str:
            self._record("read_file", {"path": path})
            return self.files.get(path, f"no such file: {path}")

        @server.tool(description="Write a file.")
        def write_file(path: str, content: str) -> str:
            self._record("write_file", {"path": path, "content": content})
            self.files[path] = content
            return "written"

        @server.tool(description="Delete a file.")
        def delete_file(path: str) -> str:
            self._record("delete_file", {"path": path})
            self.files.pop(path, None)
            return "deleted"

        @server.tool(description="Echo the text back.")
        def echo(text: str) -> str:
            self._record("echo", {"text": text})
            return text

        @server.tool(description="Answer with size bytes of text.")
        def big(size: int) -> str:
            self._record("big", {"size": size})
            return "x" * size

        @server.tool(description="Fail as a tool does: isError set.")
        def fail() -> str:
            self._record("fail", {})
            raise ValueError("the fake tool failed on purpose")

        inner = server.streamable_http_app()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            if scope["path"] == "/token":
                await self._token(headers, receive, send)
                return
            with self._lock:
                self.headers.append(headers)
            token = headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self._valid:
                await _respond(send, 401, b'{"error":"invalid_token"}')
                return
            await inner(scope, receive, send)

        return app

    async def _token(self, headers: dict[str, str], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if headers.get("authorization") != expected or b"grant_type=client_credentials" not in body:
            await _respond(send, 401, b'{"error":"invalid_client"}')
            return
        token = f"oauth-token-{next(self._tokens)}"
        with self._lock:
            self._valid.add(token)
            self.tokens_issued += 1
        await _respond(send, 200, orjson.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 3600}))

    def start(self) -> FakeMcpServer:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake MCP server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake MCP server standalone (benchmarks).")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeMcpServer()
    if args.port:
        fake.port = args.port
    fake.start()
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
