"""Where an organization's budget warnings go, and what became of each one."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, services
from governance.alerts import channel_destination
from governance.models import AlertChannel, AlertChannelKind, AlertDelivery, DeliveryStatus


class AlertChannelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=AlertChannelKind.choices)
    destination = serializers.SerializerMethodField(help_text="The address, or a URL's host: the rest of a URL is a credential.")
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "AlertChannel"

    def get_destination(self, channel: AlertChannel) -> str:
        return channel_destination(channel)


class AlertChannelCreatedSerializer(AlertChannelOutputSerializer):
    signing_secret = serializers.CharField(
        help_text="Webhooks only, shown once: X-Tollgate-Signature is t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>."
    )

    class Meta:
        ref_name = "AlertChannelCreated"


class AlertChannelsApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        kind = serializers.ChoiceField(choices=AlertChannelKind.choices)
        url = serializers.URLField(max_length=2000, required=False, default="", help_text="webhook and slack")
        email = serializers.EmailField(required=False, default="", help_text="email")

        class Meta:
            ref_name = "AlertChannelCreate"

    @extend_schema(responses=AlertChannelOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        return paginated_response(
            request=request,
            view=self,
            queryset=AlertChannel.objects.filter(organization=org.organization).order_by("id"),
            serializer_class=AlertChannelOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: AlertChannelCreatedSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        channel, secret = services.alert_channel_create(actor=request.user, organization=org.organization, **data.validated_data)
        channel.signing_secret = secret  # type: ignore[attr-defined]
        return Response(AlertChannelCreatedSerializer(channel).data, status=status.HTTP_201_CREATED)


class AlertChannelApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, channel_id: int) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        channel = get_object_or_404(AlertChannel, pk=channel_id, organization=org.organization)
        services.alert_channel_delete(actor=request.user, channel=channel)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertDeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    channel = serializers.CharField(source="channel.name")
    budget = serializers.IntegerField(source="alert.budget_id")
    threshold_percent = serializers.IntegerField(source="alert.threshold")
    period_start = serializers.DateTimeField(source="alert.period_start")
    spent_usd = serializers.DecimalField(source="alert.spent_usd", max_digits=18, decimal_places=10)
    fired_at = serializers.DateTimeField(source="alert.created_at")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    response_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    delivered_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "AlertDelivery"


class AlertDeliveriesApi(APIView):
    """Every budget warning sent to the organization's channels, newest first."""

    pagination_class = LimitOffsetPagination

    @extend_schema(responses=AlertDeliveryOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        deliveries = AlertDelivery.objects.filter(channel__organization=org.organization).select_related("channel", "alert")
        return paginated_response(
            request=request, view=self, queryset=deliveries.order_by("-id"), serializer_class=AlertDeliveryOutputSerializer
        )
