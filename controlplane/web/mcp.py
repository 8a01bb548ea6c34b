"""MCP servers and who may use their tools, for platform admins: add and remove
servers (secrets write-only), check one as a worker would, set an
organization's or a team's tool policy, and the line engineers paste."""

from __future__ import annotations

import shlex
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from governance import access, services
from governance.mcp_health import mcp_server_check
from governance.models import McpAuth, McpServer, McpToolPolicy, McpTransport, Organization, Team


def _patterns(raw: str) -> list[str]:
    return [p.strip() for p in raw.replace("\n", ",").split(",") if p.strip()]


def _problem(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@login_required
def mcp_page(request: HttpRequest) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    checks = request.session.pop("mcp_checks", {})
    servers = list(McpServer.objects.order_by("name"))
    context: dict[str, Any] = {
        "title": "MCP servers",
        "servers": [{"server": s, "check": checks.get(str(s.pk))} for s in servers],
        "policies": McpToolPolicy.objects.select_related("organization", "team", "user", "key").order_by(
            "organization__name", "level", "id"
        ),
        "organizations": Organization.objects.order_by("name"),
        "teams": Team.objects.select_related("organization").order_by("organization__name", "name"),
        "transports": McpTransport.choices,
        "gateway_url": settings.GATEWAY_PUBLIC_URL.rstrip("/"),
    }
    return render(request, "console/mcp.html", context)


@login_required
@require_POST
def mcp_server_add(request: HttpRequest) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    post = request.POST
    transport = post.get("transport", McpTransport.HTTP)
    fields: dict[str, Any] = {
        "name": post.get("name", "").strip(), "transport": transport, "description": post.get("description", "").strip(),
    }  # fmt: skip
    if transport == McpTransport.STDIO:
        fields["command"] = shlex.split(post.get("command", ""))
    else:
        fields["url"] = post.get("url", "").strip()
        header, value = post.get("header_name", "").strip(), post.get("header_value", "")
        if header and value:
            fields.update(auth=McpAuth.HEADERS, headers={header: value})
    try:
        server = services.mcp_server_create(actor=request.user, **fields)
    except ValidationError as exc:
        _problem(request, exc)
    else:
        messages.success(request, f"MCP server {server.name} added: its tools are {server.name}__<tool> on /mcp.")
    return redirect("mcp")


@login_required
@require_POST
def mcp_server_check_now(request: HttpRequest, server_id: int) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    server = McpServer.objects.filter(pk=server_id).first()
    if server is not None:
        checks = request.session.get("mcp_checks", {})
        checks[str(server.pk)] = mcp_server_check(server=server)
        request.session["mcp_checks"] = checks
    return redirect("mcp")


@login_required
@require_POST
def mcp_server_remove(request: HttpRequest, server_id: int) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    server = McpServer.objects.filter(pk=server_id).first()
    if server is not None:
        services.mcp_server_delete(actor=request.user, server=server)
        messages.success(request, f"MCP server {server.name} removed; its tools are gone from /mcp.")
    return redirect("mcp")


@login_required
@require_POST
def mcp_policy_set(request: HttpRequest) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    post = request.POST
    organization = Organization.objects.filter(slug=post.get("organization", "")).first()
    if organization is None:
        messages.error(request, "Pick an organization.")
        return redirect("mcp")
    team = None
    if post.get("team"):
        team = Team.objects.filter(organization=organization, slug=post["team"]).first()
        if team is None:
            messages.error(request, f"No team '{post['team']}' in {organization.name}.")
            return redirect("mcp")
    try:
        services.mcp_tool_policy_set(
            actor=request.user, level="team" if team else "organization", organization=organization, team=team,
            allowed=_patterns(post.get("allowed", "")), denied=_patterns(post.get("denied", "")),
        )  # fmt: skip
    except ValidationError as exc:
        _problem(request, exc)
    else:
        messages.success(request, f"Tool policy of {team.name if team else organization.name} saved.")
    return redirect("mcp")


@login_required
@require_POST
def mcp_policy_remove(request: HttpRequest, policy_id: int) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    policy = McpToolPolicy.objects.filter(pk=policy_id).first()
    if policy is not None:
        services.mcp_tool_policy_delete(actor=request.user, policy=policy)
        messages.success(request, "Tool policy removed.")
    return redirect("mcp")
