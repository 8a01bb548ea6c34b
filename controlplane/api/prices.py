from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services

USD_PER_MTOK = {"max_digits": 12, "decimal_places": 6, "min_value": 0}


class PriceOutputSerializer(serializers.Serializer):
    model = serializers.CharField()
    input_per_mtok = serializers.DecimalField(max_digits=12, decimal_places=6)
    output_per_mtok = serializers.DecimalField(max_digits=12, decimal_places=6)
    cache_write_per_mtok = serializers.DecimalField(max_digits=12, decimal_places=6)
    cache_read_per_mtok = serializers.DecimalField(max_digits=12, decimal_places=6)
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "ModelPrice"


class PricesApi(APIView):
    """USD per million tokens, per model; readable by every signed-in user."""

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
        input_per_mtok = serializers.DecimalField(**USD_PER_MTOK)
        output_per_mtok = serializers.DecimalField(**USD_PER_MTOK)
        cache_write_per_mtok = serializers.DecimalField(**USD_PER_MTOK, required=False, default=0)
        cache_read_per_mtok = serializers.DecimalField(**USD_PER_MTOK, required=False, default=0)

        class Meta:
            ref_name = "ModelPriceSet"

    @extend_schema(request=InputSerializer, responses=PriceOutputSerializer)
    def put(self, request: Request, model: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access.platform_admin_require(user=request.user)
        price = services.price_set(actor=request.user, model=model, **data.validated_data)
        return Response(PriceOutputSerializer(price).data)
