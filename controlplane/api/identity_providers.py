"""Identity providers an organization's people sign in with, and their group mappings.
Admins of the organization only; the client secret is write-only."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import access
from governance.models import Role
from identity import access as identity_access
from identity import services
from identity.models import GroupMapping, IdentityProvider
from identity.presets import Preset


class _Fields(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    preset = serializers.ChoiceField(choices=Preset.choices, default=Preset.GENERIC)
    issuer = serializers.URLField(
        max_length=500, help_text="Exactly as the provider's ID tokens name it in iss."
    )
    client_id = serializers.CharField(max_length=255)
    client_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        default="",
        style={"input_type": "password"},
    )
    scopes = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    email_claim = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    groups_claim = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="Empty: the provider sends no groups. Left out: the preset's.",
    )
    allowed_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, default=list
    )
    groups_from_graph = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Entra ID: resolve a group overage through Microsoft Graph.",
    )
    enabled = serializers.BooleanField(required=False, default=True)


class IdentityProviderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    organization = serializers.SlugField(source="organization.slug")
    slug = serializers.SlugField()
    name = serializers.CharField()
    preset = serializers.ChoiceField(choices=Preset.choices)
    issuer = serializers.URLField()
    client_id = serializers.CharField()
    has_client_secret = serializers.SerializerMethodField()
    scopes = serializers.CharField()
    email_claim = serializers.CharField()
    groups_claim = serializers.CharField()
    allowed_domains = serializers.ListField(child=serializers.CharField())
    groups_from_graph = serializers.BooleanField()
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "IdentityProvider"

    def get_has_client_secret(self, idp: IdentityProvider) -> bool:
        return bool(idp.client_secret_sealed)


class IdentityProvidersApi(APIView):
    class InputSerializer(_Fields):
        slug = serializers.SlugField(max_length=100, required=False, default="")

        class Meta:
            ref_name = "IdentityProviderCreate"

    @extend_schema(responses=IdentityProviderOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        idps = IdentityProvider.objects.filter(organization=org.organization).select_related(
            "organization"
        )
        return Response(IdentityProviderOutput(idps.order_by("name", "id"), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: IdentityProviderOutput})
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        idp = services.identity_provider_create(
            actor=request.user, organization=org.organization, **data.validated_data
        )
        return Response(IdentityProviderOutput(idp).data, status=status.HTTP_201_CREATED)


class IdentityProviderApi(APIView):
    class InputSerializer(_Fields):
        class Meta:
            ref_name = "IdentityProviderUpdate"

    @extend_schema(responses=IdentityProviderOutput)
    def get(self, request: Request, idp_id: int) -> Response:
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        return Response(IdentityProviderOutput(idp).data)

    @extend_schema(request=InputSerializer(partial=True), responses=IdentityProviderOutput)
    def patch(self, request: Request, idp_id: int) -> Response:
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        # Only the fields sent change (a partial serializer still fills defaults in).
        changes = {k: v for k, v in data.validated_data.items() if k in request.data}
        if changes.get("groups_claim", "") is None:
            changes["groups_claim"] = ""
        idp = services.identity_provider_update(actor=request.user, idp=idp, **changes)
        return Response(IdentityProviderOutput(idp).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, idp_id: int) -> Response:
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        services.identity_provider_delete(actor=request.user, idp=idp)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupMappingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    group = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)

    class Meta:
        ref_name = "GroupMapping"


class GroupMappingsApi(APIView):
    class InputSerializer(serializers.Serializer):
        group = serializers.CharField(
            max_length=255, help_text="As the provider sends it; * for everyone it signs in."
        )
        role = serializers.ChoiceField(choices=Role.choices)
        team = serializers.SlugField(max_length=100, required=False, allow_null=True, default=None)

        class Meta:
            ref_name = "GroupMappingSet"

    @extend_schema(responses=GroupMappingOutput(many=True))
    def get(self, request: Request, idp_id: int) -> Response:
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        mappings = GroupMapping.objects.filter(identity_provider=idp).select_related("team")
        return Response(GroupMappingOutput(mappings, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: GroupMappingOutput})
    def post(self, request: Request, idp_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        org = access.OrganizationAccess(
            organization=idp.organization, user=request.user, role=Role.ADMIN
        )
        slug = data.validated_data["team"]
        team = access.team_in(access=org, slug=slug) if slug else None
        mapping = services.group_mapping_set(
            actor=request.user,
            idp=idp,
            group=data.validated_data["group"],
            role=data.validated_data["role"],
            team=team,
        )
        return Response(GroupMappingOutput(mapping).data, status=status.HTTP_201_CREATED)


class GroupMappingApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, idp_id: int, mapping_id: int) -> Response:
        mapping = identity_access.group_mapping_for_change(
            user=request.user, idp_id=idp_id, mapping_id=mapping_id
        )
        services.group_mapping_delete(actor=request.user, mapping=mapping)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScimTokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "ScimToken"


class ScimTokensApi(APIView):
    """Bearer tokens for the provider's SCIM client (base URL /scim/v2/); the secret is shown once."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "ScimTokenIssue"

    class IssuedSerializer(ScimTokenOutput):
        token = serializers.CharField()

        class Meta:
            ref_name = "ScimTokenIssued"

    @extend_schema(responses=ScimTokenOutput(many=True))
    def get(self, request: Request, idp_id: int) -> Response:
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        return Response(ScimTokenOutput(idp.scim_tokens.order_by("id"), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: IssuedSerializer})
    def post(self, request: Request, idp_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        token, secret = services.scim_token_issue(
            actor=request.user, idp=idp, **data.validated_data
        )
        body = ScimTokenOutput(token).data | {"token": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class ScimTokenApi(APIView):
    @extend_schema(responses=ScimTokenOutput)
    def delete(self, request: Request, idp_id: int, token_id: int) -> Response:
        idp = identity_access.identity_provider_for_change(user=request.user, idp_id=idp_id)
        token = idp.scim_tokens.filter(pk=token_id).first()
        if token is None:
            raise Http404("No such SCIM token.")
        return Response(
            ScimTokenOutput(services.scim_token_revoke(actor=request.user, token=token)).data
        )
