from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services


class TeamsApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=100, required=False, default="")

        class Meta:
            ref_name = "TeamCreate"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        organization = serializers.SlugField(source="organization.slug")
        name = serializers.CharField()
        slug = serializers.SlugField()
        allowed_models = serializers.ListField(
            child=serializers.CharField(),
            help_text="Glob patterns the team's keys are held to, within the organization's.",
        )
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "Team"

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.team_list(organization=org.organization),
            serializer_class=self.OutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        team = services.team_create(
            actor=request.user, organization=org.organization, **data.validated_data
        )
        return Response(self.OutputSerializer(team).data, status=status.HTTP_201_CREATED)


class TeamApi(APIView):
    class InputSerializer(serializers.Serializer):
        allowed_models = serializers.ListField(
            child=serializers.CharField(max_length=200),
            help_text='Glob patterns such as "claude-sonnet-*"; empty allows every model the '
            "organization allows.",
        )

        class Meta:
            ref_name = "TeamUpdate"

    @extend_schema(request=InputSerializer, responses=TeamsApi.OutputSerializer)
    def patch(self, request: Request, slug: str, team_slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = access.organization_access(user=request.user, slug=slug)
        team = access.team_of(access=org, slug=team_slug)
        org.require_manage()
        team = services.allowed_models_set(
            actor=request.user, target=team, patterns=data.validated_data["allowed_models"]
        )
        return Response(TeamsApi.OutputSerializer(team).data)
