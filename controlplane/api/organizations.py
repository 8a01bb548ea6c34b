from __future__ import annotations

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
