"""Serving ``/mcp`` and ``/mcp/<bundle>``: both MCP protocol revisions through
the official SDK's streamable HTTP session manager, in front of it the same
virtual keys as model traffic, behind it the configured upstream servers.

- The stateless revision (``2026-07-28``: ``server/discover``, ``mcp-method``
  headers, no session) and the session revision (``2025-11-25``:
  ``initialize``, ``mcp-session-id``, a GET event stream) are both the SDK's;
  the manager picks by the ``mcp-protocol-version`` header.
- Every request is authenticated against the current snapshot. Sessions are
  bound to the key that opened them, and a watcher re-checks every open
  request and session a few times a second, so a revoked key loses its
  streams and its sessions within a second, like its model traffic.
- Tools are ``<server>__<tool>``, sorted by that name so a key's listing is
  byte-for-byte stable (prompt caching); a tool the key may not use is absent
  from ``tools/list`` and refused on ``tools/call``.
- Every ``tools/call`` is a request-log row and counts against the key's
  request rate limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import (
    DEFAULT_SESSION_IDLE_TIMEOUT,
    StreamableHTTPSessionManager,
)
from mcp.shared.exceptions import MCPError

from dataplane.errors import GatewayError
from dataplane.exchange import Exchange
from dataplane.http import Receive, Scope, Send, send_response
from dataplane.limits import Refusal, plan_for
from dataplane.mcp.config import SEPARATOR, ToolFilter, header_level
from dataplane.mcp.upstream import Unavailable, Upstreams
from dataplane.snapshot import KeyEntry

log = logging.getLogger("tollgate.mcp")

# JSON-RPC error codes. Unknown tools are "invalid params", as the MCP
# specification asks; the rest are in the implementation-defined server range.
UNKNOWN_TOOL = types.INVALID_PARAMS
TOOL_DENIED = -32001
RATE_LIMITED = -32002
UPSTREAM_FAILED = -32003
RESULT_TOO_LARGE = -32004
UNAUTHORIZED = -32005

INCLUDE_HEADER = b"x-tollgate-mcp-include"
EXCLUDE_HEADER = b"x-tollgate-mcp-exclude"
_AUTH_HEADERS = (b"x-tollgate-key", b"x-api-key", b"authorization")
SESSION_HEADER = b"mcp-session-id"
WATCH_SECONDS = 0.2
# The SDK's own idle timeout for a session with no request in flight.
SESSION_IDLE_SECONDS = DEFAULT_SESSION_IDLE_TIMEOUT + 60


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as the handlers see it (put in the ASGI scope per request)."""

    key: KeyEntry
    tools: ToolFilter
    session_id: str
    user_agent: str


@dataclass(eq=False, slots=True)
class _Live:
    credentials: dict[bytes, bytes]
    cancel: anyio.CancelScope


def _jsonrpc_error(status: int, code: int, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}})


class McpGateway:
    def __init__(self, gateway: Any, request_id: Callable[[], str]) -> None:
        # The data plane's Gateway: its snapshot holder, counters, events, metrics.
        self.gateway = gateway
        self.request_id = request_id
        self.upstreams: Upstreams
        self.manager: StreamableHTTPSessionManager
        self._live: set[_Live] = set()
        self._sessions: dict[str, tuple[int, dict[bytes, bytes]]] = {}
        # When each session last saw a request: the SDK ends idle ones on its own, and so we forget them.
        self._session_seen: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._running = asyncio.Event()
        self._seen_version = -1
        self._sync_lock = asyncio.Lock()
        self.started = False

    # --- lifespan -------------------------------------------------------------

    async def start(self) -> None:
        from django.conf import settings

        config = self.gateway.config
        self.max_result_bytes = int(settings.MCP_MAX_RESULT_BYTES)
        self.list_wait = float(settings.MCP_LIST_WAIT_SECONDS)
        self.upstreams = Upstreams(config.snapshot_file.parent / "mcp")
        server: Server[Any] = Server(
            "tollgate", version="1", instructions="Tools of the MCP servers your Tollgate key may use.",
            on_list_tools=self._list_tools, on_call_tool=self._call_tool,
        )
        self.manager = StreamableHTTPSessionManager(server, max_request_body_size=config.max_body_bytes)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run_manager()), loop.create_task(self._watch())]
        await asyncio.wait_for(self._running.wait(), timeout=10)
        self.started = True

    async def _run_manager(self) -> None:
        async with self.manager.run():
            self._running.set()
            await self._stopping.wait()

    async def stop(self) -> None:
        if not self.started:
            return
        self._stopping.set()
        for task in self._tasks:
            if task is not self._tasks[0]:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=5)
        await self.upstreams.close()

    async def _watch(self) -> None:
        """Reconcile upstreams with the snapshot; cut what a revoked key holds open."""
        while True:
            try:
                await self._sync(self.gateway.holder.current)
                for live in list(self._live):
                    if not self._admitted(live.credentials):
                        live.cancel.cancel()
                idle_before = time.monotonic() - SESSION_IDLE_SECONDS
                for session_id, (key_id, credentials) in list(self._sessions.items()):
                    if not self._admitted(credentials):
                        await self._end_session(session_id, key_id)
                    elif self._session_seen.get(session_id, 0.0) < idle_before:
                        self._forget(session_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("MCP watcher step failed")
            await asyncio.sleep(WATCH_SECONDS)

    async def _sync(self, snapshot: Any) -> None:
        """Bring the upstreams in line with ``snapshot`` (once per version)."""
        if snapshot.version == self._seen_version:
            return
        async with self._sync_lock:
            if snapshot.version != self._seen_version:
                await self.upstreams.reconcile(snapshot.mcp.servers)
                self._seen_version = snapshot.version

    def _admitted(self, credentials: dict[bytes, bytes]) -> bool:
        try:
            self.gateway.authenticate(credentials)
        except GatewayError:
            return False
        return True

    def _forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._session_seen.pop(session_id, None)

    async def _end_session(self, session_id: str, key_id: int) -> None:
        """Terminate a session the way a client would (DELETE), so the SDK tears it down."""
        self._forget(session_id)
        scope: dict[str, Any] = {
            "type": "http", "method": "DELETE", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
            "headers": [(SESSION_HEADER, session_id.encode()), (b"mcp-protocol-version", b"2025-11-25")],
            "scheme": "http", "server": ("127.0.0.1", 0), "client": ("127.0.0.1", 0), "root_path": "",
            "http_version": "1.1", "user": _principal(key_id),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            return None

        with contextlib.suppress(Exception):
            await self.manager.handle_request(scope, receive, send)
        log.info("MCP session %s ended: its key is no longer valid", session_id[:12])

    # --- requests -------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        snapshot = self.gateway.holder.current
        # A request may arrive between a snapshot swap and the watcher's next step.
        await self._sync(snapshot)
        headers = dict(scope["headers"])
        bundle: str | None = path[5:].strip("/") or None
        if bundle is not None and bundle not in snapshot.mcp.bundles:
            status, body = _jsonrpc_error(404, types.INVALID_REQUEST, f"Tollgate has no MCP tool bundle '{bundle}'.")
            await send_response(send, status, [(b"content-type", b"application/json")], body)
            return
        try:
            key = self.gateway.authenticate(headers)
        except GatewayError as err:
            status, body = _jsonrpc_error(401, UNAUTHORIZED, err.message)
            await send_response(send, status, [(b"content-type", b"application/json")], body)
            return
        narrowed = header_level(
            "this request's include/exclude headers", _text(headers.get(INCLUDE_HEADER)), _text(headers.get(EXCLUDE_HEADER))
        )
        tools = snapshot.mcp.filter_for(key.id, key.user_id, key.team_id, key.organization_id, bundle)
        if narrowed is not None:
            tools = ToolFilter((*tools.levels, narrowed))
        session_id = _text(headers.get(SESSION_HEADER)) or _text(headers.get(b"x-claude-code-session-id")) or ""
        scope["tollgate.mcp"] = Caller(key, tools, session_id[:100], (_text(headers.get(b"user-agent")) or "")[:300])
        # The SDK binds a session to the principal that opened it: the key, whatever secret of it was sent.
        scope["user"] = _principal(key.id)
        credentials = {name: headers[name] for name in _AUTH_HEADERS if name in headers}
        live = _Live(credentials, anyio.CancelScope())
        opening = SESSION_HEADER not in headers

        async def watched_send(message: Any) -> None:
            if opening and message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == SESSION_HEADER:
                        self._sessions[value.decode("latin-1")] = (key.id, credentials)
                        self._session_seen[value.decode("latin-1")] = time.monotonic()
            await send(message)

        if not opening:
            session = headers[SESSION_HEADER].decode("latin-1")
            if scope["method"] == "DELETE":
                self._forget(session)
            elif session in self._sessions:
                self._session_seen[session] = time.monotonic()
        self._live.add(live)
        try:
            with live.cancel:
                await self.manager.handle_request(scope, receive, watched_send)
        finally:
            self._live.discard(live)

    # --- MCP handlers ---------------------------------------------------------

    async def _catalog(self, caller: Caller) -> list[tuple[str, str, types.Tool]]:
        """(aggregated name, upstream tool name, tool) the caller may use, in name order."""
        snapshot = self.gateway.holder.current
        names = [n for n in snapshot.mcp.servers if n in self.upstreams.by_name]
        listed = await asyncio.gather(*(self.upstreams.by_name[n].listed(self.list_wait) for n in names))
        out = []
        for server, tools in zip(names, listed, strict=True):
            for tool in tools:
                name = f"{server}{SEPARATOR}{tool.name}"
                if caller.tools.permits(name):
                    out.append((name, tool.name, tool))
        out.sort(key=lambda item: item[0])
        return out

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        caller = _caller(ctx)
        tools = [tool.model_copy(update={"name": name}) for name, _, tool in await self._catalog(caller)]
        return types.ListToolsResult(tools=tools)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        caller = _caller(ctx)
        snapshot = self.gateway.holder.current
        name = params.name
        server, sep, tool = name.partition(SEPARATOR)
        x = Exchange(self.request_id(), "mcp_tool_call")
        x.key = caller.key
        x.model = name
        x.session_id = caller.session_id
        x.user_agent = caller.user_agent
        x.free = True
        request_bytes = len(orjson.dumps(params.arguments or {}))
        response_bytes = 0
        try:
            upstream = self.upstreams.by_name.get(server) if sep and server in snapshot.mcp.servers else None
            if upstream is None:
                raise _Refused(404, "unknown_tool", UNKNOWN_TOOL, f"Unknown tool '{name}': Tollgate serves no such MCP server or tool.")
            refusal = caller.tools.refusal(name)
            if refusal is not None:
                raise _Refused(
                    403, "tool_denied", TOOL_DENIED,
                    f"Tool '{name}' is not allowed by {refusal}. Ask your platform admin if you need it.",
                )
            if not any(t.name == tool for t in await upstream.listed(self.list_wait)):
                raise _Refused(404, "unknown_tool", UNKNOWN_TOOL, f"Unknown tool '{name}': MCP server '{server}' lists no tool '{tool}'.")
            plan = await self._admit(x, name)
            x.upstream_started = time.perf_counter()
            try:
                result = await upstream.call(tool, params.arguments)
            except Unavailable as exc:
                raise _Refused(502, "upstream_unavailable", UPSTREAM_FAILED, f"MCP server '{server}' is unavailable right now ({exc}).") from None
            except MCPError as exc:
                raise _Refused(502, "upstream_error", exc.code, f"MCP server '{server}' refused the call: {exc.message}") from None
            except Exception as exc:
                raise _Refused(502, "upstream_unavailable", UPSTREAM_FAILED, f"MCP server '{server}' failed the call: {type(exc).__name__}.") from None
            finally:
                x.upstream_ended = time.perf_counter()
                if plan is not None:
                    await self._settle(plan)
            response_bytes = len(result.model_dump_json(by_alias=True, exclude_none=True))
            if response_bytes > self.max_result_bytes:
                raise _Refused(
                    502, "result_too_large", RESULT_TOO_LARGE,
                    f"Tool '{name}' returned {response_bytes} bytes, more than this gateway's limit of "
                    f"{self.max_result_bytes} (TOLLGATE_MCP_MAX_RESULT_BYTES).",
                )
            x.status = 200
            if result.is_error:
                x.error_type = "tool_error"
            return result
        except _Refused as refused:
            x.fail(refused.status, refused.error_type, refused.message)
            raise MCPError(refused.code, refused.message) from None
        finally:
            event = x.event(snapshot)
            event["mcp_server"] = server if sep else ""
            event["mcp_tool"] = tool if sep else name
            event["request_bytes"] = request_bytes
            event["response_bytes"] = response_bytes
            self.gateway.events.emit(event)
            self.gateway.metrics.inc("tollgate_mcp_tool_calls_total", code=str(x.status))

    async def _admit(self, x: Exchange, name: str) -> Any:
        """Count the call against the key chain's request windows (tool calls cost no tokens)."""
        key = x.key
        assert key is not None
        limits = tuple(rule for rule in key.limits if rule.metric == "requests")
        if not limits:
            return None
        now = time.time()
        plan = plan_for(
            prefix=self.gateway.config.redis_prefix, request_id=x.request_id, budgets=(), limits=limits,
            model=f"mcp/{name}", provider_id=None, reserve_nano=0, now=now,
        )
        if plan.empty:
            return None
        try:
            await self.gateway.counters.admit(plan, now)
        except Refusal as refusal:
            raise _Refused(refusal.status, "rate_limited", RATE_LIMITED, refusal.message) from None
        except Exception:
            if self.gateway.config.counters_fail_open:
                return None
            raise _Refused(
                503, "counters_unavailable", RATE_LIMITED,
                "Tollgate cannot check rate limits right now (its counter store is unreachable); retry in a moment.",
            ) from None
        return plan

    async def _settle(self, plan: Any) -> None:
        with contextlib.suppress(Exception):
            await self.gateway.counters.settle(plan, 0, 0)


class _Refused(Exception):
    def __init__(self, status: int, error_type: str, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.message = message


def _principal(key_id: int) -> AuthenticatedUser:
    return AuthenticatedUser(AccessToken(token="", client_id=f"tollgate-key-{key_id}", scopes=[]))


def _caller(ctx: Any) -> Caller:
    request = getattr(ctx, "request", None)
    caller = request.scope.get("tollgate.mcp") if request is not None else None
    if not isinstance(caller, Caller):
        raise MCPError(UNAUTHORIZED, "This MCP request carries no Tollgate key.")
    return caller


def _text(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None
