"""MCP servers, tool policies and bundles through the API, into the snapshot."""

from __future__ import annotations

import orjson

from audit.models import AuditEvent
from dataplane.mcp.config import parse_mcp
from governance import services
from governance.models import McpServer
from governance.sealing import unseal

SERVERS = "/api/v1/mcp/servers/"
POLICIES = "/api/v1/organizations/acme/mcp-policies/"


def test_it_registers_an_http_server_with_sealed_headers(client_for, alice, committed_snapshot) -> None:
    response = client_for(alice).post(
        SERVERS,
        {"name": "github", "transport": "http", "url": "https://mcp.example.com/mcp", "auth": "headers",
         "headers": {"Authorization": "Bearer ghp-secret"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["has_secrets"] is True and "headers" not in body
    server = McpServer.objects.get(name="github")
    assert "ghp-secret" not in server.secrets_sealed
    event = AuditEvent.objects.get(action="mcp_server.create")
    assert event.after["header_names"] == ["Authorization"]
    assert "ghp-secret" not in orjson.dumps(event.after).decode()
    doc = committed_snapshot()
    assert "ghp-secret" not in orjson.dumps(doc).decode()
    config = parse_mcp(doc["mcp"], unseal)
    assert config.servers["github"].headers == {"Authorization": "Bearer ghp-secret"}


def test_it_registers_a_stdio_server_with_its_command(client_for, alice) -> None:
    response = client_for(alice).post(
        SERVERS,
        {"name": "files", "transport": "stdio", "command": ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv"],
         "env": {"TOKEN": "x"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["command"][0] == "npx"


def test_it_refuses_bad_server_definitions(client_for, alice) -> None:
    client = client_for(alice)
    cases = [
        ({"name": "two__parts", "transport": "http", "url": "https://x.example.com"}, "name"),
        ({"name": "web", "transport": "http"}, "url"),
        ({"name": "files", "transport": "stdio"}, "command"),
        ({"name": "web", "transport": "http", "url": "https://x.example.com", "auth": "oauth_client_credentials"}, "token_url"),
        ({"name": "web", "transport": "http", "url": "https://x.example.com", "auth": "headers"}, "headers"),
    ]
    for body, field in cases:
        response = client.post(SERVERS, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), (body, response.json())
    assert not McpServer.objects.exists()


def test_it_keeps_servers_to_platform_admins(client_for, bob) -> None:
    response = client_for(bob).post(SERVERS, {"name": "web", "transport": "http", "url": "https://x.example.com"}, format="json")
    assert response.status_code == 403
    assert client_for(bob).get(SERVERS).status_code == 403


def test_it_updates_a_server_keeping_secrets_not_given(client_for, alice) -> None:
    server = services.mcp_server_create(
        actor=alice, name="web", transport="http", url="https://x.example.com", auth="headers", headers={"X-Token": "t1"}
    )
    response = client_for(alice).patch(f"{SERVERS}{server.id}/", {"timeout_seconds": 5}, format="json")
    assert response.status_code == 200, response.content
    server.refresh_from_db()
    assert server.timeout_seconds == 5
    assert orjson.loads(unseal(server.secrets_sealed))["headers"] == {"X-Token": "t1"}
    event = AuditEvent.objects.filter(action="mcp_server.update").get()
    assert event.before["timeout_seconds"] == 60 and event.after["timeout_seconds"] == 5
    assert client_for(alice).delete(f"{SERVERS}{server.id}/").status_code == 204
    assert AuditEvent.objects.filter(action="mcp_server.delete").exists()


def test_it_sets_tool_policies_per_level_and_they_reach_the_snapshot(
    client_for, alice, bob, charlie, acme, committed_snapshot
) -> None:
    services.mcp_server_create(actor=alice, name="files", transport="stdio", command=["server-files"])
    key, _ = services.key_create(actor=bob, organization=acme, user=charlie, name="laptop")
    client = client_for(bob)
    org = client.post(POLICIES, {"level": "organization", "allowed": ["files"], "denied": ["files__delete_*"]}, format="json")
    assert org.status_code == 201, org.content
    mine = client.post(POLICIES, {"level": "key", "key": key.id, "allowed": ["files__read_*", "files__delete_file"]}, format="json")
    assert mine.status_code == 201, mine.content
    assert AuditEvent.objects.filter(action="mcp_policy.set").count() == 2
    config = parse_mcp(committed_snapshot()["mcp"], unseal)
    tools = config.filter_for(key.id, charlie.id, None, acme.id, None)
    assert tools.permits("files__read_file")
    assert not tools.permits("files__write_file")  # not on the key's list
    assert not tools.permits("files__delete_file")  # the organization denies it
    assert tools.refusal("files__delete_file") == "your organization's MCP tool policy"
    other, _ = services.key_create(actor=bob, organization=acme, user=charlie, name="ci")
    assert config.filter_for(other.id, charlie.id, None, acme.id, None).permits("files__write_file")


def test_it_refuses_a_policy_from_a_developer_and_hides_other_organizations(client_for, charlie, eve) -> None:
    assert client_for(charlie).post(POLICIES, {"level": "organization", "allowed": []}, format="json").status_code == 403
    assert client_for(eve).get(POLICIES).status_code == 404


def test_it_sets_a_bundle(client_for, alice, committed_snapshot) -> None:
    response = client_for(alice).post(
        "/api/v1/mcp/bundles/", {"name": "review", "tools": ["github__get_*", "files__read_*"]}, format="json"
    )
    assert response.status_code == 201, response.content
    config = parse_mcp(committed_snapshot()["mcp"], unseal)
    assert config.filter_for(1, None, None, 1, "review").permits("github__get_issue")
    assert not config.filter_for(1, None, None, 1, "review").permits("github__create_issue")
    assert client_for(alice).delete("/api/v1/mcp/bundles/review/").status_code == 204


def test_it_checks_a_server_by_listing_its_tools(client_for, alice, mcp_upstream) -> None:
    from tests.fakes.mcp_server import STATIC_TOKEN

    good = services.mcp_server_create(
        actor=alice, name="files", transport="http", url=mcp_upstream.url, auth="headers",
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
    )
    response = client_for(alice).post(f"{SERVERS}{good.id}/check/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["healthy"] is True and "files__read_file" in body["tools"] and body["error"] == ""
    wrong = services.mcp_server_create(
        actor=alice, name="wrong", transport="http", url=mcp_upstream.url, auth="headers",
        headers={"Authorization": "Bearer not-the-token"},
    )
    refused = client_for(alice).post(f"{SERVERS}{wrong.id}/check/").json()
    assert refused["healthy"] is False and refused["tools"] == [] and refused["error"]


def test_it_checks_a_stdio_server(client_for, alice) -> None:
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "fakes" / "mcp_stdio.py"
    server = services.mcp_server_create(actor=alice, name="notes", transport="stdio", command=[sys.executable, str(script)])
    body = client_for(alice).post(f"{SERVERS}{server.id}/check/").json()
    assert body["healthy"] is True and "notes__read_note" in body["tools"]
