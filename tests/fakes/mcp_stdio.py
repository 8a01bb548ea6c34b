"""A small stdio MCP server (the official SDK's), run by the gateway as a child process.

``crash`` exits the process, so a test can watch the gateway restart it;
``pid`` tells which process answered.
"""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("fake-notes", version="1.0")
NOTES = {"todo": "tollgate-stdio-note-7"}


@server.tool(description="Read a note.")
def read_note(name: str) -> str:
    return NOTES.get(name, f"no note {name}")


@server.tool(description="Delete a note.")
def delete_note(name: str) -> str:
    NOTES.pop(name, None)
    return "deleted"


@server.tool(description="The server's process id.")
def pid() -> str:
    return str(os.getpid())


@server.tool(description="Exit the server process at once.")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    server.run()
