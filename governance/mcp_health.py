"""Checking an MCP server from the control plane: connect as a worker would, list its tools.

An admin's "does this work?" before engineers depend on it; the data-plane
workers keep checking on their own (dataplane/mcp/upstream.py).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from dataplane.mcp.config import parse_mcp
from dataplane.mcp.upstream import close_resource, open_transport
from governance.models import McpServer
from governance.sealing import unseal
from governance.snapshot import mcp_server_document


def mcp_server_check(*, server: McpServer, timeout: float = 20.0) -> dict[str, Any]:
    """Connect to ``server`` with its stored configuration; report its tools or why it failed."""
    config = parse_mcp({"servers": [mcp_server_document(server)]}, unseal).servers[server.name]

    async def probe() -> dict[str, Any]:
        from mcp.client import Client

        with tempfile.TemporaryDirectory(prefix="tollgate-mcp-check-") as tmp:
            transport, resource = open_transport(config, Path(tmp))
            started = time.perf_counter()
            try:
                async with Client(transport, read_timeout_seconds=timeout, cache=None) as client:
                    listed = await client.list_tools()
                    return {
                        "healthy": True,
                        "protocol_version": client.protocol_version,
                        "tools": [f"{server.name}__{t.name}" for t in listed.tools],
                        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                        "error": "",
                    }
            finally:
                await close_resource(resource)

    try:
        return asyncio.run(asyncio.wait_for(probe(), timeout=timeout))
    except BaseException as exc:  # an ExceptionGroup from the SDK's task groups, too
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        return {"healthy": False, "protocol_version": "", "tools": [], "latency_ms": None,
                "error": f"{type(exc).__name__}: {exc}"[:500]}
