from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import services


class TokenCreateApi(APIView):
    """Exchange a username and password for the API token used by automation."""

    authentication_classes = ()
    permission_classes = ()

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(write_only=True, style={"input_type": "password"})

        class Meta:
            ref_name = "TokenCreate"

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(source="key")

        class Meta:
            ref_name = "Token"

    @extend_schema(request=InputSerializer, responses=OutputSerializer, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None or not user.is_active:
            # 400, as DRF's own token view answers: with no authenticators here a 401 could not carry a challenge.
            raise exceptions.ValidationError({"detail": "Wrong username or password."})
        token = services.api_token_issue(actor=user)
        return Response(self.OutputSerializer(token).data)
