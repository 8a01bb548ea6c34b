"""Real MCP servers from npm behind the gateway: server-everything over streamable
HTTP (the 2025-11-25 session path upstream) and server-filesystem over stdio."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from governance import services
from tests.conftest import ROOT, free_port
from tests.dataplane.test_mcp import connect, run, tool_names

BIN = ROOT / ".cache" / "mcp-servers" / "node_modules" / ".bin"


@pytest.fixture(scope="session")
def everything() -> Iterator[str]:
    assert (BIN / "mcp-server-everything").exists(), "run `make test`: it installs the npm MCP servers"
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "mcp-server-everything"), "streamableHttp"], env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("server-everything did not start") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(10)


def test_it_serves_server_everything_over_streamable_http(gateway, world, everything, publish, ledger):
    services.mcp_server_create(actor=world.alice, name="everything", transport="http", url=everything)
    publish()

    async def go() -> tuple[list[str], str]:
        async with connect(gateway, world.secret, "2026-07-28") as client:
            names = await tool_names(client)
            echoed = await client.call_tool("everything__echo", {"message": "through tollgate"})
            return names, echoed.content[0].text

    names, echoed = run(go())
    assert {"everything__echo", "everything__get-sum"} <= set(names) and names == sorted(names)
    assert echoed == "Echo: through tollgate"
    row = ledger(1, key_prefix=world.key.prefix, endpoint="mcp_tool_call")[0]
    assert (row.mcp_server, row.mcp_tool, row.status) == ("everything", "echo", 200)


def test_it_runs_server_filesystem_over_stdio_reading_but_not_writing(gateway, world, publish, tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("tollgate-fs-note-9")
    services.mcp_server_create(
        actor=world.alice, name="fs", transport="stdio", command=[str(BIN / "mcp-server-filesystem"), str(shared)],
    )
    services.mcp_tool_policy_set(
        actor=world.alice, level="organization", organization=world.acme, allowed=["fs__read_*", "fs__list_*"],
    )
    publish()

    async def go() -> tuple[list[str], str, MCPError]:
        async with connect(gateway, world.secret) as client:
            names = await tool_names(client)
            text = (await client.call_tool("fs__read_text_file", {"path": str(shared / "notes.txt")})).content[0].text
            with pytest.raises(MCPError) as refused:
                await client.call_tool("fs__write_file", {"path": str(shared / "x.txt"), "content": "no"})
            return names, text, refused.value

    names, text, refused = run(go())
    assert "fs__read_text_file" in names and "fs__list_directory" in names
    assert "fs__write_file" not in names and "fs__move_file" not in names
    assert text == "tollgate-fs-note-9"
    assert refused.code == -32001 and "your organization's MCP tool policy" in refused.message
    assert not (shared / "x.txt").exists()
