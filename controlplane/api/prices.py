from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services
from governance.models import ModelPrice, Provider

USD = {"max_digits": 12, "decimal_places": 6}
USD_IN = {**USD, "min_value": 0}


class PriceOutputSerializer(serializers.Serializer):
    model = serializers.CharField()
    # Null: the model's list price; else what that provider bills for it instead.
    provider = serializers.IntegerField(source="provider_id", allow_null=True)
    input_per_mtok = serializers.DecimalField(**USD)
    output_per_mtok = serializers.DecimalField(**USD)
    cache_write_per_mtok = serializers.DecimalField(**USD, help_text="5-minute cache write")
    cache_write_1h_per_mtok = serializers.DecimalField(**USD)
    cache_read_per_mtok = serializers.DecimalField(**USD)
    web_search_per_1k = serializers.DecimalField(**USD, help_text="USD per 1,000 web search calls")
    long_context_threshold = serializers.IntegerField(
        help_text="Above this many prompt tokens (input + cache reads + writes) the long_* rates apply; 0: none"
    )
    long_input_per_mtok = serializers.DecimalField(**USD)
    long_output_per_mtok = serializers.DecimalField(**USD)
    long_cache_write_per_mtok = serializers.DecimalField(**USD)
    long_cache_write_1h_per_mtok = serializers.DecimalField(**USD)
    long_cache_read_per_mtok = serializers.DecimalField(**USD)
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "ModelPrice"


_PROVIDER = OpenApiParameter("provider", int, description="a provider's own price for the model, not the list price")


class PricesApi(APIView):
    """Prices per model; readable by every signed-in user."""

    pagination_class = LimitOffsetPagination

    @extend_schema(responses=PriceOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.price_list(),
            serializer_class=PriceOutputSerializer,
        )


class PriceSetApi(APIView):
    class InputSerializer(serializers.Serializer):
        provider = serializers.PrimaryKeyRelatedField(queryset=Provider.objects.all(), required=False, allow_null=True, default=None)
        input_per_mtok = serializers.DecimalField(**USD_IN)
        output_per_mtok = serializers.DecimalField(**USD_IN)
        cache_write_per_mtok = serializers.DecimalField(**USD_IN, required=False, default=0)
        # Omitted: 1-hour writes cost the 5-minute rate.
        cache_write_1h_per_mtok = serializers.DecimalField(**USD_IN, required=False, allow_null=True, default=None)
        cache_read_per_mtok = serializers.DecimalField(**USD_IN, required=False, default=0)
        web_search_per_1k = serializers.DecimalField(**USD_IN, required=False, default=0)
        long_context_threshold = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)
        long_input_per_mtok = serializers.DecimalField(**USD_IN, required=False, default=0)
        long_output_per_mtok = serializers.DecimalField(**USD_IN, required=False, default=0)
        long_cache_write_per_mtok = serializers.DecimalField(**USD_IN, required=False, default=0)
        long_cache_write_1h_per_mtok = serializers.DecimalField(**USD_IN, required=False, allow_null=True, default=None)
        long_cache_read_per_mtok = serializers.DecimalField(**USD_IN, required=False, default=0)

        class Meta:
            ref_name = "ModelPriceSet"

    @extend_schema(request=InputSerializer, responses=PriceOutputSerializer)
    def put(self, request: Request, model: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access.platform_admin_require(user=request.user)
        price = services.price_set(actor=request.user, model=model, **data.validated_data)
        return Response(PriceOutputSerializer(price).data)

    @extend_schema(parameters=[_PROVIDER], responses={204: None})
    def delete(self, request: Request, model: str) -> Response:
        access.platform_admin_require(user=request.user)
        provider = request.query_params.get("provider")
        if provider is not None and not provider.isdigit():
            return Response({"provider": ["A provider id."]}, status=status.HTTP_400_BAD_REQUEST)
        price = get_object_or_404(ModelPrice, model=model, provider_id=int(provider) if provider else None)
        services.price_delete(actor=request.user, price=price)
        return Response(status=status.HTTP_204_NO_CONTENT)
