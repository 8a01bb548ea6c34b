from __future__ import annotations

from django.contrib.auth import password_validation
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services
from governance.models import Role


class MembershipSerializer(serializers.Serializer):
    organization = serializers.SlugField(source="organization.slug")
    role = serializers.ChoiceField(choices=Role.choices)
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)


class UsersApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        email = serializers.EmailField(required=False, default="")
        password = serializers.CharField(
            required=False,
            default=None,
            write_only=True,
            style={"input_type": "password"},
            help_text="Omit for a user who signs in only through SSO.",
        )
        organization = serializers.SlugField()
        role = serializers.ChoiceField(choices=Role.choices, default=Role.DEVELOPER)
        team = serializers.SlugField(required=False, default=None)

        class Meta:
            ref_name = "UserCreate"

        def validate_password(self, value: str | None) -> str | None:
            if value:
                password_validation.validate_password(value)
            return value

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.EmailField()
        is_superuser = serializers.BooleanField()
        is_active = serializers.BooleanField(
            help_text="False once deactivated: no sign-in, and every key of theirs is refused."
        )
        memberships = MembershipSerializer(many=True, source="visible_memberships")

        class Meta:
            ref_name = "User"

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.user_list(user=request.user),
            serializer_class=self.OutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = access.organization_access(
            user=request.user, slug=values["organization"], field="organization"
        )
        org.require_manage()
        team = access.team_in(access=org, slug=values["team"]) if values["team"] else None
        user = services.user_create(
            actor=request.user,
            username=values["username"],
            email=values["email"],
            password=values["password"],
            organization=org.organization,
            role=values["role"],
            team=team,
        )
        shown = selectors.user_list(user=request.user).get(pk=user.pk)
        return Response(self.OutputSerializer(shown).data, status=status.HTTP_201_CREATED)


def _set_active(request: Request, user_id: int, is_active: bool) -> Response:
    target = access.user_for_change(user=request.user, user_id=user_id)
    services.user_set_active(actor=request.user, user=target, is_active=is_active)
    shown = selectors.user_list(user=request.user).get(pk=target.pk)
    return Response(UsersApi.OutputSerializer(shown).data)


class UserDeactivateApi(APIView):
    @extend_schema(
        request=None,
        responses=UsersApi.OutputSerializer,
        description="Stops the user signing in and refuses each of their keys on every "
        "data-plane worker within a second.",
    )
    def post(self, request: Request, user_id: int) -> Response:
        return _set_active(request, user_id, False)


class UserActivateApi(APIView):
    @extend_schema(request=None, responses=UsersApi.OutputSerializer)
    def post(self, request: Request, user_id: int) -> Response:
        return _set_active(request, user_id, True)
