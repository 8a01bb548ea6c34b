from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services


class OrganizationsApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=100, required=False, default="")

        class Meta:
            ref_name = "OrganizationCreate"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.SlugField()
        allowed_models = serializers.ListField(
            child=serializers.CharField(),
            help_text="Glob patterns every key here is held to; empty allows every model.",
        )
        allow_teamless_keys = serializers.BooleanField(
            help_text="Whether members of a team may hold keys outside it."
        )
        created_at = serializers.DateTimeField()
        role = serializers.CharField(
            allow_null=True,
            default=None,
            help_text="The requester's role here; null if not a member.",
        )

        class Meta:
            ref_name = "Organization"

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.organization_list(user=request.user),
            serializer_class=self.OutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access.platform_admin_require(user=request.user)
        org = services.organization_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(org).data, status=status.HTTP_201_CREATED)


class OrganizationApi(APIView):
    class InputSerializer(serializers.Serializer):
        allowed_models = serializers.ListField(
            child=serializers.CharField(max_length=200),
            required=False,
            help_text='Glob patterns such as "claude-*"; empty allows every model.',
        )
        allow_teamless_keys = serializers.BooleanField(
            required=False,
            help_text="Let members of a team hold keys with no team (off by default, so team "
            "budgets and allowlists hold).",
        )

        class Meta:
            ref_name = "OrganizationUpdate"

        def validate(self, attrs: dict) -> dict:
            if not attrs:
                raise serializers.ValidationError({"allowed_models": "Give allowed_models, allow_teamless_keys or both."})
            return attrs

    @extend_schema(request=InputSerializer, responses=OrganizationsApi.OutputSerializer)
    def patch(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        values = data.validated_data
        with transaction.atomic():
            if "allowed_models" in values:
                services.allowed_models_set(
                    actor=request.user, target=org.organization, patterns=values["allowed_models"]
                )
            if "allow_teamless_keys" in values:
                services.organization_update(
                    actor=request.user,
                    organization=org.organization,
                    allow_teamless_keys=values["allow_teamless_keys"],
                )
        # Read back through the list's selector so the requester's role comes with it.
        updated = selectors.organization_list(user=request.user).get(pk=org.organization.pk)
        return Response(OrganizationsApi.OutputSerializer(updated).data)
