"""MCP servers, policies and bundles in the Django admin, written through the services."""

from __future__ import annotations

import orjson
import pytest
from django.test import Client

from audit.models import AuditEvent
from governance import sealing
from governance.models import McpBundle, McpServer, McpToolPolicy

TOKEN = "Bearer admin-form-upstream-token"


@pytest.fixture
def staff(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def server_form(**overrides: str) -> dict[str, str]:
    return {
        "name": "github", "description": "", "transport": "http", "url": "https://mcp.example.com/mcp",
        "auth": "headers", "token_url": "", "client_id": "", "scope": "", "command": "[]", "cwd": "",
        "timeout_seconds": "60", "is_active": "on", "headers": orjson.dumps({"Authorization": TOKEN}).decode(),
        "client_secret": "", "env": "",
    } | overrides


def test_it_adds_an_mcp_server_with_sealed_headers(staff: Client, alice) -> None:
    response = staff.post("/admin/governance/mcpserver/add/", server_form())
    assert response.status_code == 302, response.content.decode()[-2000:]
    server = McpServer.objects.get(name="github")
    assert TOKEN not in server.secrets_sealed
    assert orjson.loads(sealing.unseal(server.secrets_sealed))["headers"] == {"Authorization": TOKEN}
    assert AuditEvent.objects.get(action="mcp_server.create").actor == alice
    page = staff.get(f"/admin/governance/mcpserver/{server.pk}/change/").content.decode()
    assert TOKEN not in page and server.secrets_sealed not in page
    # Saving without re-entering the headers keeps them.
    changed = staff.post(f"/admin/governance/mcpserver/{server.pk}/change/", server_form(headers="", timeout_seconds="9"))
    assert changed.status_code == 302, changed.content.decode()[-2000:]
    server.refresh_from_db()
    assert server.timeout_seconds == 9
    assert orjson.loads(sealing.unseal(server.secrets_sealed))["headers"] == {"Authorization": TOKEN}


def test_it_shows_the_services_rules_as_form_errors(staff: Client) -> None:
    response = staff.post("/admin/governance/mcpserver/add/", server_form(name="two__parts"))
    assert response.status_code == 200
    assert "single" in response.content.decode()
    assert not McpServer.objects.exists()


def test_it_sets_a_tool_policy_and_a_bundle(staff: Client, acme) -> None:
    response = staff.post(
        "/admin/governance/mcptoolpolicy/add/",
        {"level": "organization", "organization": acme.pk, "allowed": '["files"]', "denied": '["files__delete_*"]'},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert McpToolPolicy.objects.get().denied == ["files__delete_*"]
    assert AuditEvent.objects.filter(action="mcp_policy.set").exists()
    bundle = staff.post("/admin/governance/mcpbundle/add/", {"name": "review", "description": "", "tools": '["github__get_*"]'})
    assert bundle.status_code == 302, bundle.content.decode()[-2000:]
    assert McpBundle.objects.get().tools == ["github__get_*"]
    for model in ("mcpserver", "mcptoolpolicy", "mcpbundle"):
        assert staff.get(f"/admin/governance/{model}/").status_code == 200
