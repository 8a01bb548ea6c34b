"""This worker's connections to the configured MCP servers.

Each server gets one supervised client session from the official SDK: a
streamable HTTP connection (static headers or an OAuth client-credentials
token) or a stdio process the worker starts itself. A session that fails, a
process that exits, or a health check that does not answer brings a
reconnect (or a restart) with backoff; meanwhile the server's tools are left
out of listings and its calls are refused with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from dataplane.mcp.config import ServerConfig

log = logging.getLogger("tollgate.mcp")

HEALTH_SECONDS = 30.0
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Unavailable(Exception):
    """The server is not connected right now."""


class ClientCredentials(httpx2.Auth):
    """OAuth 2.0 client-credentials tokens for an upstream, fetched and cached
    until shortly before they expire; a 401 fetches a fresh one once."""

    requires_response_body = True

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.token = ""
        self.expires = 0.0
        self.lock = asyncio.Lock()

    async def _fetch(self) -> None:
        data = {"grant_type": "client_credentials"}
        if self.config.scope:
            data["scope"] = self.config.scope
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(
                self.config.token_url, data=data, auth=(self.config.client_id, self.config.client_secret)
            )
        response.raise_for_status()
        body = response.json()
        self.token = body["access_token"]
        self.expires = time.monotonic() + float(body.get("expires_in") or 3600) - 30

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        async with self.lock:
            if not self.token or time.monotonic() >= self.expires:
                await self._fetch()
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            async with self.lock:
                await self._fetch()
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request


def open_transport(c: ServerConfig, log_dir: Path) -> tuple[Any, Any]:
    """The SDK transport to one server, and what to close after it (its HTTP client or stderr file)."""
    if c.transport == "stdio":
        log_dir.mkdir(parents=True, exist_ok=True)
        # The server's stderr goes to its own file, not the worker's log.
        errlog = open(log_dir / f"mcp-{c.name}.stderr.log", "a")  # noqa: SIM115 (closed with the session)
        params = StdioServerParameters(command=c.command[0], args=list(c.command[1:]), env=c.env or None, cwd=c.cwd or None)
        return stdio_client(params, errlog=errlog), errlog
    auth = ClientCredentials(c) if c.auth == "oauth_client_credentials" else None
    http = httpx2.AsyncClient(
        headers=c.headers if c.auth == "headers" else None,
        auth=auth,
        timeout=httpx2.Timeout(c.timeout_seconds, connect=5.0),
    )
    return streamable_http_client(c.url, http_client=http), http


async def close_resource(resource: Any) -> None:
    with contextlib.suppress(Exception):
        result = (getattr(resource, "aclose", None) or resource.close)()
        if asyncio.iscoroutine(result):
            await result


class Upstream:
    def __init__(self, config: ServerConfig, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.client: Client | None = None
        self.tools: list[types.Tool] = []
        self.healthy = False
        self.last_error = ""
        self.restarts = 0
        self._ready = asyncio.Event()
        self._broken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            transport, resource = open_transport(self.config, self.log_dir)
            try:
                async with Client(
                    transport, read_timeout_seconds=self.config.timeout_seconds, cache=None,
                    message_handler=self._on_message,
                ) as client:
                    self.client = client
                    await self._list()
                    self.healthy = True
                    self.last_error = ""
                    self._ready.set()
                    attempt = 0
                    log.info("MCP server %s connected: %d tools", self.config.name, len(self.tools))
                    while not self._broken.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._broken.wait(), timeout=HEALTH_SECONDS)
                        if not self._broken.is_set():
                            # The health check: a fresh listing, which also picks up new tools.
                            await asyncio.wait_for(self._list(), timeout=min(self.config.timeout_seconds, 30))
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # an ExceptionGroup from the SDK's task groups, too
                self.last_error = _describe(exc)
                log.warning("MCP server %s unavailable: %s", self.config.name, self.last_error)
            finally:
                self.client = None
                self.healthy = False
                self._broken.clear()
                await close_resource(resource)
            # Whoever waits for the first connection gets an answer now, not at its timeout.
            self._ready.set()
            self.restarts += 1
            await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            attempt += 1
            self._ready.clear()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            asyncio.get_running_loop().create_task(self._relist())

    async def _relist(self) -> None:
        with contextlib.suppress(Exception):
            await self._list()

    async def _list(self) -> None:
        client = self.client
        if client is None:
            return
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(100):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = tools

    async def listed(self, wait: float) -> list[types.Tool]:
        """The server's tools, waiting up to ``wait`` seconds for a first connection."""
        if not self.healthy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout=wait)
        return self.tools if self.healthy else []

    async def call(self, tool: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        client = self.client
        if client is None or not self.healthy:
            raise Unavailable(self.last_error or "not connected yet")
        try:
            return await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code != types.CONNECTION_CLOSED:
                raise  # the server's own answer
            # The process exited or the connection dropped: reconnect (restart) now.
            self._broken.set()
            raise Unavailable("the connection closed during the call") from None
        except Exception:
            # Not an answer from the server: the connection is in doubt.
            self._broken.set()
            raise


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:500]


class Upstreams:
    """The worker's upstreams, reconciled with each snapshot's server list."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.by_name: dict[str, Upstream] = {}

    async def reconcile(self, servers: dict[str, ServerConfig]) -> None:
        for name, upstream in list(self.by_name.items()):
            wanted = servers.get(name)
            if wanted is None or wanted.fingerprint != upstream.config.fingerprint:
                del self.by_name[name]
                await upstream.stop()
        for name, config in servers.items():
            if name not in self.by_name:
                upstream = Upstream(config, self.log_dir)
                self.by_name[name] = upstream
                upstream.start()

    async def close(self) -> None:
        for upstream in self.by_name.values():
            await upstream.stop()
        self.by_name.clear()
