"""Claude Code's managed settings, per organization or team: what a device
signed in through the gateway gets from ``GET /managed/settings``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devicelogin.models import ManagedSettings
from devicelogin.settings_policy import checksum, managed_settings_set
from governance import access


class ManagedSettingsSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(read_only=True)
    team = serializers.CharField(read_only=True, allow_null=True)
    settings = serializers.JSONField(help_text="Claude Code settings: availableModels, env, permissions, …")
    checksum = serializers.CharField(read_only=True, help_text="sha256:<hex> of the settings, sorted keys, no whitespace")
    updated_at = serializers.DateTimeField(read_only=True)

    class Meta:
        ref_name = "ManagedSettings"


def _out(row: ManagedSettings) -> dict[str, Any]:
    return {
        "uuid": row.uuid, "team": row.team.slug if row.team else None, "settings": row.settings,
        "checksum": checksum(row.settings), "updated_at": row.updated_at,
    }  # fmt: skip


TEAM = OpenApiParameter("team", str, description="a team's slug: its settings, which replace the organization's")


class ManagedSettingsApi(APIView):
    @extend_schema(parameters=[TEAM], responses=ManagedSettingsSerializer)
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        team = access.team_in(access=org, slug=request.query_params["team"]) if request.query_params.get("team") else None
        row = ManagedSettings.objects.filter(organization=org.organization, team=team).select_related("team").first()
        if row is None:
            return Response({"detail": "No managed settings here yet."}, status=404)
        return Response(ManagedSettingsSerializer(_out(row)).data)

    @extend_schema(parameters=[TEAM], request=ManagedSettingsSerializer, responses=ManagedSettingsSerializer)
    def put(self, request: Request, slug: str) -> Response:
        data = ManagedSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        team = access.team_in(access=org, slug=request.query_params["team"]) if request.query_params.get("team") else None
        row = managed_settings_set(
            actor=request.user, organization=org.organization, team=team, document=data.validated_data["settings"]
        )
        return Response(ManagedSettingsSerializer(_out(row)).data)
