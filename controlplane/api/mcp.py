"""The MCP gateway's configuration: servers, per-level tool policies, named bundles."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services
from governance.mcp_health import mcp_server_check
from governance.models import Level, McpAuth, McpBundle, McpServer, McpTransport


class McpServerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    transport = serializers.ChoiceField(choices=McpTransport.choices)
    url = serializers.CharField()
    auth = serializers.ChoiceField(choices=McpAuth.choices)
    token_url = serializers.CharField()
    client_id = serializers.CharField()
    scope = serializers.CharField()
    command = serializers.ListField(child=serializers.CharField())
    cwd = serializers.CharField()
    # Secrets are write-only: the API says which are set, never what they are.
    has_secrets = serializers.SerializerMethodField()
    timeout_seconds = serializers.IntegerField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "McpServer"

    def get_has_secrets(self, server: McpServer) -> bool:
        return bool(server.secrets_sealed)




class McpServersApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=40, help_text="The tool prefix: tools are served as <name>__<tool>.")
        description = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
        transport = serializers.ChoiceField(choices=McpTransport.choices)
        url = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
        auth = serializers.ChoiceField(choices=McpAuth.choices, default=McpAuth.NONE)
        headers = serializers.DictField(
            child=serializers.CharField(), required=False, default=dict, write_only=True,
            help_text="Static headers sent upstream on every request (auth 'headers').",
        )
        token_url = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
        client_id = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
        client_secret = serializers.CharField(required=False, default="", allow_blank=True, write_only=True)
        scope = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
        command = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        cwd = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
        env = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict, write_only=True)
        timeout_seconds = serializers.IntegerField(min_value=1, max_value=3600, default=60)
        is_active = serializers.BooleanField(default=True)

        class Meta:
            ref_name = "McpServerCreate"

    @extend_schema(responses=McpServerOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        access.platform_admin_require(user=request.user)
        return paginated_response(
            request=request, view=self, queryset=selectors.mcp_server_list(), serializer_class=McpServerOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: McpServerOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access.platform_admin_require(user=request.user)
        server = services.mcp_server_create(actor=request.user, **data.validated_data)
        return Response(McpServerOutputSerializer(server).data, status=status.HTTP_201_CREATED)


class McpServerApi(APIView):
    class InputSerializer(serializers.Serializer):
        description = serializers.CharField(max_length=300, required=False, allow_blank=True)
        url = serializers.CharField(max_length=500, required=False, allow_blank=True)
        auth = serializers.ChoiceField(choices=McpAuth.choices, required=False)
        headers = serializers.DictField(child=serializers.CharField(), required=False, write_only=True)
        token_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
        client_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
        client_secret = serializers.CharField(required=False, allow_blank=True, write_only=True)
        scope = serializers.CharField(max_length=500, required=False, allow_blank=True)
        command = serializers.ListField(child=serializers.CharField(), required=False)
        cwd = serializers.CharField(max_length=500, required=False, allow_blank=True)
        env = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, write_only=True)
        timeout_seconds = serializers.IntegerField(min_value=1, max_value=3600, required=False)
        is_active = serializers.BooleanField(required=False)

        class Meta:
            ref_name = "McpServerUpdate"

    @extend_schema(responses=McpServerOutputSerializer)
    def get(self, request: Request, server_id: int) -> Response:
        access.platform_admin_require(user=request.user)
        return Response(McpServerOutputSerializer(get_object_or_404(McpServer, pk=server_id)).data)

    @extend_schema(request=InputSerializer, responses=McpServerOutputSerializer)
    def patch(self, request: Request, server_id: int) -> Response:
        access.platform_admin_require(user=request.user)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        server = get_object_or_404(McpServer, pk=server_id)
        server = services.mcp_server_update(actor=request.user, server=server, **data.validated_data)
        return Response(McpServerOutputSerializer(server).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, server_id: int) -> Response:
        access.platform_admin_require(user=request.user)
        services.mcp_server_delete(actor=request.user, server=get_object_or_404(McpServer, pk=server_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class McpServerCheckApi(APIView):
    """Connect to the server as a data-plane worker would and list its tools."""

    class OutputSerializer(serializers.Serializer):
        healthy = serializers.BooleanField()
        protocol_version = serializers.CharField()
        tools = serializers.ListField(child=serializers.CharField(), help_text="As served: <server>__<tool>.")
        latency_ms = serializers.FloatField(allow_null=True)
        error = serializers.CharField()

        class Meta:
            ref_name = "McpServerCheck"

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request: Request, server_id: int) -> Response:
        access.platform_admin_require(user=request.user)
        server = get_object_or_404(McpServer, pk=server_id)
        return Response(self.OutputSerializer(mcp_server_check(server=server)).data)


class McpPolicyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    level = serializers.ChoiceField(choices=Level.choices)
    organization = serializers.SlugField(source="organization.slug")
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)
    user = serializers.CharField(source="user.username", allow_null=True, default=None)
    key = serializers.IntegerField(source="key_id", allow_null=True)
    allowed = serializers.ListField(child=serializers.CharField())
    denied = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "McpToolPolicy"


class McpPoliciesApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        level = serializers.ChoiceField(choices=Level.choices)
        team = serializers.SlugField(required=False, default=None, allow_null=True)
        user = serializers.CharField(required=False, default=None, allow_null=True, max_length=150)
        key = serializers.IntegerField(required=False, default=None, allow_null=True, min_value=1, max_value=2**63 - 1)
        allowed = serializers.ListField(
            child=serializers.CharField(), default=list,
            help_text="Globs over <server>__<tool> ('files__read_*'; 'github' is every github tool); empty: every tool.",
        )
        denied = serializers.ListField(child=serializers.CharField(), default=list)

        class Meta:
            ref_name = "McpToolPolicySet"

    @extend_schema(responses=McpPolicyOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        owner = None if org.sees_every_key else request.user
        return paginated_response(
            request=request, view=self,
            queryset=selectors.mcp_policy_list(organization=org.organization, owner=owner),
            serializer_class=McpPolicyOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: McpPolicyOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        targets = access.policy_targets(access=org, team=values["team"], user=values["user"], key=values["key"])
        policy = services.mcp_tool_policy_set(
            actor=request.user, level=values["level"], organization=org.organization,
            allowed=values["allowed"], denied=values["denied"], **targets,
        )
        return Response(McpPolicyOutputSerializer(policy).data, status=status.HTTP_201_CREATED)


class McpPolicyApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, policy_id: int) -> Response:
        policy = access.mcp_policy_for_change(user=request.user, policy_id=policy_id)
        services.mcp_tool_policy_delete(actor=request.user, policy=policy)
        return Response(status=status.HTTP_204_NO_CONTENT)


class McpBundleOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    tools = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "McpBundle"


class McpBundlesApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=60, help_text="Served at /mcp/<name>.")
        description = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
        tools = serializers.ListField(child=serializers.CharField(), min_length=1)

        class Meta:
            ref_name = "McpBundleSet"

    @extend_schema(responses=McpBundleOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        access.platform_admin_require(user=request.user)
        return paginated_response(
            request=request, view=self, queryset=selectors.mcp_bundle_list(), serializer_class=McpBundleOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: McpBundleOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access.platform_admin_require(user=request.user)
        bundle = services.mcp_bundle_set(actor=request.user, **data.validated_data)
        return Response(McpBundleOutputSerializer(bundle).data, status=status.HTTP_201_CREATED)


class McpBundleApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        access.platform_admin_require(user=request.user)
        services.mcp_bundle_delete(actor=request.user, bundle=get_object_or_404(McpBundle, name=name))
        return Response(status=status.HTTP_204_NO_CONTENT)
