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
from governance.models import Provider, ProviderCredential, ProviderKind


class ProvidersApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        kind = serializers.ChoiceField(choices=ProviderKind.choices)
        # Optional where the kind has a well-known URL (Anthropic, OpenAI, a preset).
        base_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
        credential = serializers.CharField(write_only=True, style={"input_type": "password"})
        # Region, project_id/location, api_version, beta_allowlist, preset…
        settings = serializers.DictField(required=False, default=dict)
        is_active = serializers.BooleanField(default=True)
        # Its bill relative to list prices where it has no price of its own (1.1: regional endpoint).
        price_multiplier = serializers.DecimalField(max_digits=6, decimal_places=4, required=False, default=1)

        class Meta:
            ref_name = "ProviderCreate"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        kind = serializers.ChoiceField(choices=ProviderKind.choices)
        base_url = serializers.URLField()
        settings = serializers.DictField()
        is_active = serializers.BooleanField()
        price_multiplier = serializers.DecimalField(max_digits=6, decimal_places=4)
        # The credential is write-only: the API says whether one is set, never what it is.
        has_credential = serializers.SerializerMethodField()
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "Provider"

        def get_has_credential(self, provider: Provider) -> bool:
            return bool(provider.credential_sealed)

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        access.platform_admin_require(user=request.user)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.provider_list(),
            serializer_class=self.OutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access.platform_admin_require(user=request.user)
        provider = services.provider_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(provider).data, status=status.HTTP_201_CREATED)


class ProviderCredentialsApi(APIView):
    """Further credentials a provider's traffic is spread over, by weight."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        credential = serializers.CharField(write_only=True, style={"input_type": "password"})
        weight = serializers.IntegerField(min_value=1, default=1)

        class Meta:
            ref_name = "ProviderCredentialCreate"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        weight = serializers.IntegerField()
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "ProviderCredential"

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request, provider_id: int) -> Response:
        access.platform_admin_require(user=request.user)
        provider = get_object_or_404(Provider, pk=provider_id)
        return Response(self.OutputSerializer(provider.credentials.all(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, provider_id: int) -> Response:
        access.platform_admin_require(user=request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        provider = get_object_or_404(Provider, pk=provider_id)
        extra = services.provider_credential_add(actor=request.user, provider=provider, **data.validated_data)
        return Response(self.OutputSerializer(extra).data, status=status.HTTP_201_CREATED)


class ProviderCredentialApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, provider_id: int, credential_id: int) -> Response:
        access.platform_admin_require(user=request.user)
        extra = get_object_or_404(ProviderCredential, pk=credential_id, provider_id=provider_id)
        services.provider_credential_remove(actor=request.user, credential=extra)
        return Response(status=status.HTTP_204_NO_CONTENT)
