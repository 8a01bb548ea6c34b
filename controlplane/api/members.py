"""``PUT /api/v1/organizations/<slug>/members/<username>/``: a member's role and team."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import access, services
from governance.models import Role


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Role.choices)
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)

    class Meta:
        ref_name = "Member"


class MemberApi(APIView):
    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)
        team = serializers.SlugField(
            required=False, allow_null=True, default=None, help_text="null: no team."
        )

        class Meta:
            ref_name = "MemberSet"

    @extend_schema(request=InputSerializer, responses=MemberSerializer)
    def put(self, request: Request, slug: str, username: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        member = access.member_in(access=org, username=username)
        team = access.team_in(access=org, slug=values["team"]) if values["team"] else None
        membership = services.membership_set(
            actor=request.user,
            user=member,
            organization=org.organization,
            role=values["role"],
            team=team,
        )
        return Response(MemberSerializer(membership).data)
