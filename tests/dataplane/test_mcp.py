"""The MCP gateway at /mcp, driven by the official SDK's client on both protocol revisions."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from governance import services
from tests.fakes.mcp_server import CLIENT_ID, CLIENT_SECRET, STATIC_TOKEN

STDIO_SERVER = Path(__file__).resolve().parents[1] / "fakes" / "mcp_stdio.py"
REVISIONS = ["legacy", "2026-07-28"]


@pytest.fixture
def files_server(world, mcp_upstream, publish):
    server = services.mcp_server_create(
        actor=world.alice, name="files", transport="http", url=mcp_upstream.url, auth="headers",
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
    )
    publish()
    return server


def connect(gateway, secret: str, mode: str = "legacy", path: str = "/mcp", **headers: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}", **headers}, timeout=30)
    return Client(streamable_http_client(f"{gateway.url}{path}", http_client=http), mode=mode, cache=None)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def tool_names(client: Client) -> list[str]:
    return [t.name for t in (await client.list_tools()).tools]


@pytest.mark.parametrize("mode", REVISIONS)
def test_it_lists_and_calls_upstream_tools_on_both_revisions(gateway, world, files_server, mcp_upstream, ledger, mode):
    async def go() -> tuple[list[str], Any, str]:
        async with connect(gateway, world.secret, mode) as client:
            names = await tool_names(client)
            result = await client.call_tool("files__read_file", {"path": "readme.txt"})
            return names, result, client.protocol_version

    names, result, version = run(go())
    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert names == sorted(names)
    assert {"files__read_file", "files__write_file", "files__delete_file", "files__echo"} <= set(names)
    assert result.content[0].text == "tollgate-mcp-readme-42"
    assert mcp_upstream.calls == [("read_file", {"path": "readme.txt"})]
    # The static header reached the upstream; the caller's Tollgate key did not.
    assert all(h["authorization"] == f"Bearer {STATIC_TOKEN}" for h in mcp_upstream.headers)
    rows = ledger(1, key_prefix=world.key.prefix, endpoint="mcp_tool_call")
    assert len(rows) == 1
    row = rows[0]
    assert (row.key_id, row.user_id, row.team_id) == (world.key.id, world.charlie.id, world.payments.id)
    assert (row.mcp_server, row.mcp_tool, row.status, row.model_requested) == ("files", "read_file", 200, "files__read_file")
    assert row.request_bytes > 0 and row.response_bytes > len("tollgate-mcp-readme-42")
    assert row.latency_ms > 0 and row.cost_usd == 0


@pytest.mark.parametrize("mode", REVISIONS)
def test_it_hides_and_refuses_a_denied_tool(gateway, world, files_server, mcp_upstream, publish, ledger, mode):
    services.mcp_tool_policy_set(
        actor=world.alice, level="team", organization=world.acme, team=world.payments,
        allowed=["files"], denied=["files__delete_*", "files__write_*"],
    )
    publish()

    async def go() -> tuple[list[str], MCPError]:
        async with connect(gateway, world.secret, mode) as client:
            names = await tool_names(client)
            with pytest.raises(MCPError) as refused:
                await client.call_tool("files__delete_file", {"path": "readme.txt"})
            return names, refused.value

    names, refused = run(go())
    assert "files__read_file" in names and "files__delete_file" not in names and "files__write_file" not in names
    assert refused.code == -32001
    assert "Tool 'files__delete_file' is not allowed by your team's MCP tool policy" in refused.message
    assert mcp_upstream.files["readme.txt"] and not mcp_upstream.calls
    row = ledger(1, key_prefix=world.key.prefix, endpoint="mcp_tool_call")[0]
    assert (row.status, row.error_type, row.mcp_tool) == (403, "tool_denied", "delete_file")


def test_it_narrows_per_request_and_per_bundle(gateway, world, files_server, publish):
    services.mcp_bundle_set(actor=world.alice, name="readonly", tools=["files__read_*", "files__echo"])
    publish()

    async def go() -> tuple[list[str], list[str], list[str]]:
        async with connect(gateway, world.secret, path="/mcp/readonly") as client:
            bundle = await tool_names(client)
        async with connect(gateway, world.secret, **{"x-tollgate-mcp-exclude": "files__echo,files__big"}) as client:
            excluded = await tool_names(client)
        async with connect(gateway, world.secret, **{"x-tollgate-mcp-include": "files__write_*"}) as client:
            included = await tool_names(client)
        return bundle, excluded, included

    bundle, excluded, included = run(go())
    assert bundle == ["files__echo", "files__read_file"]
    assert "files__echo" not in excluded and "files__big" not in excluded and "files__read_file" in excluded
    assert included == ["files__write_file"]
    missing = httpx.post(f"{gateway.url}/mcp/nope", headers={"Authorization": f"Bearer {world.secret}"}, json={})
    assert missing.status_code == 404 and "no MCP tool bundle 'nope'" in missing.json()["error"]["message"]


def test_it_answers_bad_input_with_jsonrpc_errors_never_a_500(gateway, world, files_server, publish):
    headers = {
        "Authorization": f"Bearer {world.secret}", "content-type": "application/json",
        "accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
    }
    garbage = httpx.post(f"{gateway.url}/mcp", headers=headers, content=b"{not json")
    assert 400 <= garbage.status_code < 500, garbage.text
    assert "error" in garbage.json()
    nobody = httpx.post(f"{gateway.url}/mcp", headers={**headers, "Authorization": "Bearer tg-nobody"}, content=b"{}")
    assert nobody.status_code == 401 and nobody.json()["error"]["code"] == -32005
    assert "does not recognise" in nobody.json()["error"]["message"]

    async def go() -> tuple[MCPError, MCPError, Any]:
        async with connect(gateway, world.secret) as client:
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("files__no_such_tool", {})
            with pytest.raises(MCPError) as too_big:
                await client.call_tool("files__big", {"size": 5 * 1024 * 1024})
            failed = await client.call_tool("files__fail", {})
            return unknown.value, too_big.value, failed

    unknown, too_big, failed = run(go())
    assert unknown.code == -32602 and "lists no tool 'no_such_tool'" in unknown.message
    assert too_big.code == -32004 and "more than this gateway's limit" in too_big.message
    assert failed.is_error is True


def test_it_authenticates_upstream_with_oauth_client_credentials(gateway, world, mcp_upstream, publish):
    services.mcp_server_create(
        actor=world.alice, name="vault", transport="http", url=mcp_upstream.url, auth="oauth_client_credentials",
        token_url=mcp_upstream.token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
    )
    publish()

    async def go() -> Any:
        async with connect(gateway, world.secret) as client:
            return await client.call_tool("vault__echo", {"text": "via-oauth"})

    assert run(go()).content[0].text == "via-oauth"
    assert mcp_upstream.tokens_issued >= 1
    assert any(h.get("authorization", "").startswith("Bearer oauth-token-") for h in mcp_upstream.headers)


def test_it_counts_tool_calls_against_rate_limits(gateway, world, files_server, publish, ledger):
    services.rate_limit_set(
        actor=world.alice, level="key", organization=world.acme, key=world.key,
        metric="requests", limit=1, window_seconds=60, model_pattern="mcp/*",
    )
    publish()

    async def go() -> MCPError:
        async with connect(gateway, world.secret) as client:
            await client.call_tool("files__echo", {"text": "one"})
            with pytest.raises(MCPError) as limited:
                await client.call_tool("files__echo", {"text": "two"})
            return limited.value

    limited = run(go())
    assert limited.code == -32002
    statuses = [r.status for r in ledger(2, key_prefix=world.key.prefix, endpoint="mcp_tool_call")]
    assert statuses == [200, 429]


def test_it_runs_a_stdio_server_and_restarts_it_when_it_dies(gateway, world, publish, ledger):
    services.mcp_server_create(
        actor=world.alice, name="notes", transport="stdio", command=[sys.executable, str(STDIO_SERVER)],
    )
    publish()

    async def go() -> tuple[str, str, str]:
        async with connect(gateway, world.secret) as client:
            note = (await client.call_tool("notes__read_note", {"name": "todo"})).content[0].text
            first = (await client.call_tool("notes__pid", {})).content[0].text
            with pytest.raises(MCPError):
                await client.call_tool("notes__crash", {})
            second = ""
            for _ in range(100):
                try:
                    second = (await client.call_tool("notes__pid", {})).content[0].text
                    break
                except MCPError:
                    await asyncio.sleep(0.1)
            return note, first, second

    note, first, second = run(go())
    assert note == "tollgate-stdio-note-7"
    assert first != second and second.isdigit()
    rows = ledger(4, key_prefix=world.key.prefix, endpoint="mcp_tool_call", mcp_server="notes")
    assert [r.status for r in rows][:3] == [200, 200, 502]


def test_it_ends_the_session_of_a_revoked_key_within_a_second(gateway, world, files_server, publish):
    """A session (2025-11-25) with its GET event stream open: revoking the key closes
    the stream and ends the session on the worker within a second."""
    import threading
    import time

    headers = {
        "Authorization": f"Bearer {world.secret}", "content-type": "application/json",
        "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25",
    }
    init = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=10) as http:
        opened = http.post("/mcp", json=init)
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        http.headers["mcp-session-id"] = session
        assert http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
        stream_closed: list[float] = []

        def listen() -> None:
            with httpx.Client(base_url=gateway.url, headers=dict(http.headers), timeout=10) as other:
                try:
                    with other.stream("GET", "/mcp") as events:
                        for _ in events.iter_bytes():
                            pass
                except httpx.HTTPError:
                    pass
            stream_closed.append(time.monotonic())

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(0.3)
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        assert http.post("/mcp", json=listing).status_code == 200
        revoked = time.monotonic()
        services.key_disable(actor=world.alice, key=world.key)
        publish()
        listener.join(3)
        assert stream_closed, "the event stream stayed open"
        assert stream_closed[0] - revoked < 1.0
        refused = http.post("/mcp", json=listing)
        assert refused.status_code == 401 and "is disabled" in refused.json()["error"]["message"]
    # The session itself is gone too: re-enabled, the key cannot resume it.
    services.key_enable(actor=world.alice, key=world.key)
    publish()
    resumed = httpx.post(f"{gateway.url}/mcp", headers={**headers, "mcp-session-id": session}, json=listing)
    assert resumed.status_code == 404, resumed.text


def signed_in_bearer(user: Any) -> tuple[str, Any]:
    """A device signed in through the gateway's device flow, as Claude Code's /login leaves it."""
    from devicelogin import services as device
    from devicelogin.models import DeviceSignin

    auth, device_code = device.device_start()
    device.device_approve(user=user, user_code=auth.user_code)
    tokens = device.token_for_device(device_code=device_code)
    return tokens.access_token, DeviceSignin.objects.select_related("key").get(user=user)


@pytest.mark.parametrize("mode", REVISIONS)
def test_a_signed_in_devices_bearer_works_on_mcp_and_stops_when_it_signs_out(
    gateway, world, files_server, publish, ledger, mode
):
    from devicelogin import services as device

    bearer, signin = signed_in_bearer(world.charlie)
    publish()

    async def call() -> Any:
        async with connect(gateway, bearer, mode) as client:
            return await client.call_tool("files__read_file", {"path": "readme.txt"})

    assert run(call()).content[0].text == "tollgate-mcp-readme-42"
    (row,) = ledger(1, key_id=signin.key_id, endpoint="mcp_tool_call")
    assert (row.user_id, row.team_id, row.mcp_tool) == (world.charlie.id, world.payments.id, "read_file")

    device.token_revoke(token=bearer)
    publish()
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    refused = httpx.post(
        f"{gateway.url}/mcp", json=listing, timeout=10,
        headers={"Authorization": f"Bearer {bearer}", "accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28"},
    )  # fmt: skip
    assert refused.status_code == 401 and "signed out" in refused.text
