"""The MCP gateway: one ``/mcp`` endpoint serving the tools of every configured
MCP server, filtered per key, every call logged like a model request."""
