"""Request and token rate limits on an organization, a team, a member or a key."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services
from governance.models import Level, Metric

WINDOWS = {"minute": 60, "hour": 3600, "day": 86400}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": list(WINDOWS)},
            {"type": "integer", "minimum": 1},
        ],
        "description": 'A named window ("minute", "hour", "day") or a number of seconds.',
    }
)
class WindowField(serializers.Field):
    """A window given by name or in seconds; the service bounds its length."""

    default_error_messages = {
        "invalid": 'Use "minute", "hour", "day" or a positive number of seconds.',
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and data in WINDOWS:
            return WINDOWS[data]
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str) and data.isdigit():
            data = int(data)
        if not isinstance(data, int) or data < 1:
            self.fail("invalid")
        return data

    def to_representation(self, value: int) -> int:
        return value


class RateLimitOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    level = serializers.ChoiceField(choices=Level.choices)
    organization = serializers.SlugField(source="organization.slug")
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)
    user = serializers.CharField(source="user.username", allow_null=True, default=None)
    key = serializers.IntegerField(source="key_id", allow_null=True)
    key_prefix = serializers.CharField(source="key.prefix", allow_null=True, default=None)
    metric = serializers.ChoiceField(choices=Metric.choices)
    limit = serializers.IntegerField()
    window_seconds = serializers.IntegerField()
    model_pattern = serializers.CharField(help_text="Glob; empty applies to every model.")
    provider = serializers.CharField(source="provider.name", allow_null=True, default=None)
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "RateLimit"


class RateLimitsApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        level = serializers.ChoiceField(
            choices=Level.choices,
            help_text="organization: none of team, user, key; team: a team slug; "
            "user: a member's username; key: a key id.",
        )
        team = serializers.SlugField(required=False, default=None, allow_null=True)
        user = serializers.CharField(required=False, default=None, allow_null=True, max_length=150)
        key = serializers.IntegerField(required=False, default=None, allow_null=True, min_value=1, max_value=2**63 - 1)
        metric = serializers.ChoiceField(choices=Metric.choices)
        limit = serializers.IntegerField(min_value=0)
        window = WindowField()
        model_pattern = serializers.CharField(
            required=False,
            default="",
            allow_blank=True,
            max_length=200,
            help_text='Only models matching this glob, such as "claude-opus-*".',
        )
        provider = serializers.CharField(
            required=False,
            default=None,
            allow_null=True,
            max_length=100,
            help_text="Only traffic to the provider of this name.",
        )

        class Meta:
            ref_name = "RateLimitSet"

    @extend_schema(responses=RateLimitOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        owner = None if org.sees_every_key else request.user
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.rate_limit_list(organization=org.organization, owner=owner),
            serializer_class=RateLimitOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: RateLimitOutputSerializer},
        description="Sets a limit: a second call for the same target, metric, window, model "
        "pattern and provider changes its limit.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        targets = access.policy_targets(
            access=org, team=values["team"], user=values["user"], key=values["key"]
        )
        provider = access.provider_named(name=values["provider"]) if values["provider"] else None
        rate_limit = services.rate_limit_set(
            actor=request.user,
            level=values["level"],
            organization=org.organization,
            metric=values["metric"],
            limit=values["limit"],
            window_seconds=values["window"],
            model_pattern=values["model_pattern"],
            provider=provider,
            **targets,
        )
        body = RateLimitOutputSerializer(rate_limit).data
        return Response(body, status=status.HTTP_201_CREATED)


class RateLimitDeleteApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, rate_limit_id: int) -> Response:
        rate_limit = access.rate_limit_for_change(user=request.user, rate_limit_id=rate_limit_id)
        services.rate_limit_delete(actor=request.user, rate_limit=rate_limit)
        return Response(status=status.HTTP_204_NO_CONTENT)
