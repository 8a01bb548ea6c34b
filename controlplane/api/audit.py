"""``GET /api/v1/audit/``: the audit trail, filtered as the console's viewer filters it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.audit_log import AuditFilter, audit_event_rows, audit_read_require


class AuditCursor(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


class AuditQuerySerializer(serializers.Serializer):
    actor = serializers.CharField(
        required=False, max_length=200, help_text="A username, or anonymous / system."
    )
    action = serializers.CharField(
        required=False, max_length=100, help_text='"key.create", or a prefix such as "key.".'
    )
    target = serializers.CharField(
        required=False, max_length=300, help_text="Words of the target's name, or its type."
    )
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False, help_text="Exclusive.")

    class Meta:
        ref_name = "AuditQuery"


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_label")
    action = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    target = serializers.CharField(source="target_label")
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    request_id = serializers.CharField()
    ip = serializers.IPAddressField(allow_null=True)

    class Meta:
        ref_name = "AuditEvent"


class AuditEventsApi(APIView):
    pagination_class = AuditCursor

    @extend_schema(parameters=[AuditQuerySerializer], responses=AuditEventSerializer(many=True))
    def get(self, request: Request) -> Response:
        audit_read_require(user=request.user)
        query = AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            audit_event_rows(flt=AuditFilter(**query.validated_data)), request, view=self
        )
        return paginator.get_paginated_response(AuditEventSerializer(page, many=True).data)
