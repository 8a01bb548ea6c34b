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
from governance.models import KeyStatus, VirtualKey


class KeyOutputSerializer(serializers.Serializer):
    """A key as lists show it: the prefix identifies it; the secret and digest never leave."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    status = serializers.ChoiceField(choices=KeyStatus.choices)
    organization = serializers.SlugField(source="organization.slug")
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)
    user = serializers.CharField(source="user.username", allow_null=True, default=None)
    allowed_models = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(allow_null=True)
    admin_allowed_models = serializers.ListField(
        child=serializers.CharField(),
        help_text="The allowlist an admin set, which binds the owner (empty: none).",
    )
    admin_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="The latest expiry an admin allows the owner."
    )
    disabled_by_admin = serializers.BooleanField(
        help_text="Disabled by an admin: only an admin can enable it again."
    )
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        ref_name = "VirtualKey"


class KeyCreatedSerializer(KeyOutputSerializer):
    secret = serializers.SerializerMethodField(
        help_text="Shown this once; Tollgate keeps only a digest."
    )

    class Meta:
        ref_name = "VirtualKeyCreated"

    def get_secret(self, key: VirtualKey) -> str:
        return str(self.context["secret"])


class KeysApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        team = serializers.SlugField(
            required=False,
            allow_null=True,
            help_text="Omitted: the owner's team. null: no team, if the organization allows it.",
        )
        user = serializers.CharField(
            required=False,
            default=None,
            max_length=150,
            help_text="Username of the member who holds the key; a developer's keys are always their own.",
        )
        allowed_models = serializers.ListField(
            child=serializers.CharField(max_length=200),
            required=False,
            default=list,
            help_text='Glob patterns such as "claude-sonnet-*"; empty allows every model.',
        )
        expires_at = serializers.DateTimeField(required=False, default=None)

        class Meta:
            ref_name = "VirtualKeyCreate"

    @extend_schema(responses=KeyOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        owner = None if org.sees_every_key else request.user
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.key_list(organization=org.organization, owner=owner),
            serializer_class=KeyOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: KeyCreatedSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = access.organization_access(user=request.user, slug=slug)
        owner = access.key_owner_for_create(access=org, username=values["user"])
        team = access.key_team_for_create(
            access=org, owner=owner, slug=values.get("team"), given="team" in values
        )
        key, secret = services.key_create(
            actor=request.user,
            organization=org.organization,
            name=values["name"],
            team=team,
            user=owner,
            allowed_models=values["allowed_models"],
            expires_at=values["expires_at"],
        )
        body = KeyCreatedSerializer(key, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


class KeyDisableApi(APIView):
    @extend_schema(request=None, responses=KeyOutputSerializer)
    def post(self, request: Request, key_id: int) -> Response:
        key = access.key_for_change(user=request.user, key_id=key_id)
        key = services.key_disable(actor=request.user, key=key)
        return Response(KeyOutputSerializer(key).data)


class KeyEnableApi(APIView):
    @extend_schema(request=None, responses=KeyOutputSerializer)
    def post(self, request: Request, key_id: int) -> Response:
        key = access.key_for_change(user=request.user, key_id=key_id)
        key = services.key_enable(actor=request.user, key=key)
        return Response(KeyOutputSerializer(key).data)


class KeyApi(APIView):
    class InputSerializer(serializers.Serializer):
        allowed_models = serializers.ListField(
            child=serializers.CharField(max_length=200),
            required=False,
            help_text='Glob patterns such as "claude-sonnet-*"; empty allows every model the '
            "organization and team allow. An owner may narrow an admin's list, not widen it.",
        )
        expires_at = serializers.DateTimeField(
            required=False,
            allow_null=True,
            help_text="null: never. An owner may bring an admin's expiry forward, not postpone it.",
        )

        class Meta:
            ref_name = "VirtualKeyUpdate"

        def validate(self, attrs: dict) -> dict:
            if not attrs:
                raise serializers.ValidationError({"allowed_models": "Give allowed_models, expires_at or both."})
            return attrs

    @extend_schema(request=InputSerializer, responses=KeyOutputSerializer)
    def patch(self, request: Request, key_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key = access.key_for_change(user=request.user, key_id=key_id)
        with transaction.atomic():
            if "allowed_models" in values:
                key = services.allowed_models_set(
                    actor=request.user, target=key, patterns=values["allowed_models"]
                )
            if "expires_at" in values:
                key = services.key_expiry_set(
                    actor=request.user, key=key, expires_at=values["expires_at"]
                )
        return Response(KeyOutputSerializer(key).data)


class KeyRotatedSerializer(KeyCreatedSerializer):
    previous_valid_until = serializers.DateTimeField(
        allow_null=True, help_text="Until when the old secret still works; null if not at all."
    )

    class Meta:
        ref_name = "VirtualKeyRotated"


class KeyRotateApi(APIView):
    class InputSerializer(serializers.Serializer):
        grace_seconds = serializers.IntegerField(
            min_value=0,
            required=False,
            default=0,
            help_text="How long the old secret keeps working, so clients can switch over.",
        )

        class Meta:
            ref_name = "VirtualKeyRotate"

    @extend_schema(request=InputSerializer, responses=KeyRotatedSerializer)
    def post(self, request: Request, key_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = access.key_for_change(user=request.user, key_id=key_id)
        key, secret = services.key_rotate(
            actor=request.user, key=key, grace_seconds=data.validated_data["grace_seconds"]
        )
        return Response(KeyRotatedSerializer(key, context={"secret": secret}).data)
