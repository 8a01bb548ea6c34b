"""The real Claude Code CLI using Tollgate's /mcp as its MCP server, with the same key as its model traffic."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from governance import services
from tests.e2e.test_claude_code import CLAUDE, result_of
from tests.fakes.mcp_server import STATIC_TOKEN


def run_claude_mcp(gateway, secret: str, prompt: str, tmp_path: Path, path: str = "/mcp", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert CLAUDE.exists(), f"Claude Code CLI missing at {CLAUDE}: run `make test`, which installs it"
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    # What an engineer's `claude mcp add --transport http tollgate URL -H 'Authorization: Bearer …'` writes.
    config = {"mcpServers": {"tollgate": {"type": "http", "url": f"{gateway.url}{path}", "headers": {"Authorization": f"Bearer {secret}"}}}}
    config_file = tmp_path / "mcp.json"
    config_file.write_bytes(orjson.dumps(config))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": f"{gateway.url}/anthropic",
        "ANTHROPIC_AUTH_TOKEN": secret,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        # Offer every MCP tool in the request instead of through ToolSearch, so
        # the model's view of the tools is the request's own ``tools`` list.
        "ENABLE_TOOL_SEARCH": "false",
    }
    return subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", "--mcp-config", str(config_file),
         "--strict-mcp-config", "--allowedTools", "mcp__tollgate"],
        cwd=work, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def offered_tools(anthropic_upstream) -> set[str]:
    names: set[str] = set()
    for call in anthropic_upstream.messages_received():
        names |= {t.get("name") for t in (call.body or {}).get("tools") or [] if isinstance(t, dict)}
    return names


@pytest.fixture
def files_server(world, mcp_upstream, publish):
    services.mcp_server_create(
        actor=world.alice, name="files", transport="http", url=mcp_upstream.url, auth="headers",
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
    )
    services.mcp_tool_policy_set(
        actor=world.alice, level="key", organization=world.acme, key=world.key, allowed=["files"], denied=["files__delete_*"],
    )
    publish()


def test_it_calls_an_mcp_tool_through_the_gateway_and_answers_with_its_result(
    gateway, world, files_server, mcp_upstream, anthropic_upstream, ledger, tmp_path
):
    prompt = 'Please [[tool: mcp__tollgate__files__read_file {"path": "readme.txt"}]] and tell me what it says.'
    proc = run_claude_mcp(gateway, world.secret, prompt, tmp_path)
    result = result_of(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "The tool said:" in result["result"] and "tollgate-mcp-readme-42" in result["result"], result
    assert mcp_upstream.calls == [("read_file", {"path": "readme.txt"})]
    offered = offered_tools(anthropic_upstream)
    assert "mcp__tollgate__files__read_file" in offered
    # Denied to this key: never offered to the model.
    assert "mcp__tollgate__files__delete_file" not in offered
    rows = ledger(1, key_prefix=world.key.prefix, endpoint="mcp_tool_call")
    assert [(r.mcp_server, r.mcp_tool, r.status) for r in rows] == [("files", "read_file", 200)]
    assert rows[0].user_agent and rows[0].user_id == world.charlie.id


def test_it_cannot_call_a_denied_tool_even_when_the_model_asks(gateway, world, files_server, mcp_upstream, anthropic_upstream, tmp_path):
    prompt = 'Please [[tool: mcp__tollgate__files__delete_file {"path": "readme.txt"}]] now.'
    proc = run_claude_mcp(gateway, world.secret, prompt, tmp_path)
    result = result_of(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Not offered, so the model's tool_use is never issued as a call.
    assert "Hello from the fake Anthropic API" in result["result"], result
    assert mcp_upstream.calls == [] and mcp_upstream.files["readme.txt"]
