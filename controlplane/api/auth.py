from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from controlplane.signin import signin_refusal
from governance import access, selectors, services


class SigninThrottled(exceptions.Throttled):
    default_detail = "Too many failed sign-ins for this account or from this address."


class ApiTokenOutputSerializer(serializers.Serializer):
    """A token as lists show it: the prefix names it; the secret was shown once and is not kept."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "ApiToken"


class TokenCreateApi(APIView):
    """Exchange a username and password for a new API token, used by automation."""

    authentication_classes = ()
    permission_classes = ()

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=1024, write_only=True, style={"input_type": "password"})
        name = serializers.CharField(max_length=200, required=False, default="", help_text="What the token is for.")
        expires_in_days = serializers.IntegerField(
            min_value=1,
            max_value=settings.API_TOKEN_MAX_DAYS,
            required=False,
            default=settings.API_TOKEN_DAYS,
        )

        class Meta:
            ref_name = "TokenCreate"

    class OutputSerializer(ApiTokenOutputSerializer):
        token = serializers.SerializerMethodField(help_text="Shown this once; Tollgate keeps only a digest.")

        class Meta:
            ref_name = "Token"

        def get_token(self, token: object) -> str:
            return str(self.context["secret"])

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        wait = signin_refusal(request=request._request, username=values["username"])
        if wait:
            raise SigninThrottled(wait=wait)
        user = authenticate(request._request, username=values["username"], password=values["password"])
        if user is None or not user.is_active:
            # 400, as DRF's own token view answers: with no authenticators here a 401 could not carry a challenge.
            raise exceptions.ValidationError({"detail": "Wrong username or password."})
        token, secret = services.api_token_issue(
            actor=user, name=values["name"], lifetime=timedelta(days=values["expires_in_days"])
        )
        return Response(self.OutputSerializer(token, context={"secret": secret}).data)


class ApiTokensApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema(responses=ApiTokenOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.api_token_list(user=request.user),
            serializer_class=ApiTokenOutputSerializer,
        )


class ApiTokenApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        token = access.api_token_for_change(user=request.user, token_id=token_id)
        services.api_token_revoke(actor=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
