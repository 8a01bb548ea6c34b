"""``GET /api/v1/``: where each part of the API lives, for people and for clients exploring it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

# Entry points that take no argument; the rest are found from these (an
# organization's teams, keys, budgets… under its URL) and in the schema.
ENTRY_POINTS = (
    ("organizations", "api-organizations"),
    ("users", "api-users"),
    ("providers", "api-providers"),
    ("prices", "api-prices"),
    ("routes", "api-routes"),
    ("requests", "api-requests"),
    ("audit", "api-audit"),
    ("cost_report", "api-report-costs"),
    ("session_report", "api-report-sessions"),
    ("api_tokens", "api-tokens"),
    ("mcp_servers", "api-mcp-servers"),
    ("mcp_bundles", "api-mcp-bundles"),
    ("schema", "api-schema"),
    ("docs", "api-swagger"),
)


class ApiRootApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {
                "version": serializers.CharField(),
                "user": serializers.CharField(),
                "links": serializers.DictField(child=serializers.URLField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        links = {name: reverse(url_name, request=request) for name, url_name in ENTRY_POINTS}
        return Response({"version": "1", "user": request.user.get_username(), "links": links})
