"""The MCP servers page: platform admins add, check and remove servers and set tool policies."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from governance import services
from governance.models import McpServer, McpToolPolicy
from governance.sealing import unseal


@pytest.fixture
def admin(db: None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.com", "root-password-1")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_platform_admin_adds_a_server_with_a_write_only_header_and_removes_it(admin) -> None:
    client = signed_in(admin)
    added = client.post(
        "/mcp/servers/add/",
        {"name": "github", "transport": "http", "url": "https://mcp.example.com/mcp", "header_name": "Authorization",
         "header_value": "Bearer s3cret-value"},
        follow=True,
    )  # fmt: skip
    assert added.status_code == 200 and "MCP server github added" in added.content.decode()
    server = McpServer.objects.get(name="github")
    assert server.auth == "headers" and "s3cret-value" not in server.secrets_sealed
    assert "s3cret-value" in unseal(server.secrets_sealed)
    page = client.get("/mcp/").content.decode()
    assert "github" in page and "s3cret-value" not in page and "claude mcp add --transport http tollgate" in page
    assert client.post(f"/mcp/servers/{server.pk}/remove/", follow=True).status_code == 200
    assert not McpServer.objects.exists()


def test_it_says_what_is_wrong_with_a_server_it_cannot_take(admin) -> None:
    answer = signed_in(admin).post("/mcp/servers/add/", {"name": "Bad__Name", "transport": "http", "url": "x"}, follow=True)
    assert answer.status_code == 200 and "message error" in answer.content.decode()
    assert not McpServer.objects.exists()


def test_it_sets_a_teams_tool_policy(admin, acme) -> None:
    team = services.team_create(actor=None, organization=acme, name="Payments")
    answer = signed_in(admin).post(
        "/mcp/policies/set/", {"organization": "acme", "team": team.slug, "allowed": "files, github__*", "denied": "files__delete_*"},
        follow=True,
    )  # fmt: skip
    assert "Tool policy of Payments saved" in answer.content.decode()
    policy = McpToolPolicy.objects.get()
    assert (policy.level, policy.team_id, policy.allowed, policy.denied) == ("team", team.pk, ["files", "github__*"], ["files__delete_*"])


def test_only_platform_admins_reach_it(bob, charlie) -> None:
    for user in (bob, charlie):
        assert signed_in(user).get("/mcp/").status_code == 403
        assert signed_in(user).post("/mcp/servers/add/", {"name": "x", "transport": "http"}).status_code == 403
    assert not McpServer.objects.exists()


def test_check_connects_as_a_worker_would_and_lists_the_tools(admin, mcp_upstream) -> None:
    from tests.fakes.mcp_server import STATIC_TOKEN

    server = services.mcp_server_create(
        actor=admin, name="files", transport="http", url=mcp_upstream.url, auth="headers",
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
    )  # fmt: skip
    page = signed_in(admin).post(f"/mcp/servers/{server.pk}/check/", follow=True).content.decode()
    assert "healthy" in page and "files__read_file" in page
