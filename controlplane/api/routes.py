"""Routes: which providers serve the models matching a pattern, for the gateway, an
organization, a team or a key."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from governance import access, selectors, services
from governance.models import ProviderKind, Route

SCOPES = ("gateway", "organization", "team", "key")
REPLACES = (
    "Sets the route for a model pattern: a second call for the same scope and pattern "
    "replaces its targets."
)


class RouteTargetInputSerializer(serializers.Serializer):
    provider = serializers.CharField(max_length=100, help_text="A provider's name.")
    model = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=200,
        help_text="The model id the provider knows; empty keeps the requested one.",
    )
    weight = serializers.IntegerField(
        required=False,
        default=1,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Share among the targets of a tier.",
    )
    tier = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=2**15 - 1,
        help_text="Tier 0 first; each next tier is the fallback when the one before fails.",
    )

    class Meta:
        ref_name = "RouteTargetSet"


def _targets_field() -> RouteTargetInputSerializer:
    return RouteTargetInputSerializer(many=True, allow_empty=False)


def _model_pattern_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=200, help_text='Glob of the requested models, such as "claude-opus-*".'
    )


class RouteTargetOutputSerializer(serializers.Serializer):
    provider = serializers.CharField(source="provider.name")
    # A plain string: as a second enum of the provider kinds the schema would warn of two names
    # for one choice set.
    provider_kind = serializers.CharField(
        source="provider.kind", help_text=f"One of {', '.join(ProviderKind.values)}."
    )
    model = serializers.CharField(help_text="Empty keeps the requested model.")
    weight = serializers.IntegerField()
    tier = serializers.IntegerField()

    class Meta:
        ref_name = "RouteTarget"


class RouteOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.SerializerMethodField(
        help_text="The most specific of key, team and organization the route names; "
        "gateway when it names none."
    )
    organization = serializers.SlugField(source="organization.slug", allow_null=True, default=None)
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)
    key = serializers.IntegerField(source="key_id", allow_null=True)
    key_prefix = serializers.CharField(source="key.prefix", allow_null=True, default=None)
    model_pattern = serializers.CharField()
    targets = RouteTargetOutputSerializer(source="targets.all", many=True)
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Route"

    @extend_schema_field(serializers.ChoiceField(choices=SCOPES))
    def get_scope(self, route: Route) -> str:
        # The order the data plane files a route under.
        if route.key_id is not None:
            return "key"
        if route.team_id is not None:
            return "team"
        return "organization" if route.organization_id is not None else "gateway"


def _created(route: Route) -> Response:
    return Response(RouteOutputSerializer(route).data, status=status.HTTP_201_CREATED)


class GatewayRoutesApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        model_pattern = _model_pattern_field()
        targets = _targets_field()

        class Meta:
            ref_name = "GatewayRouteSet"

    @extend_schema(
        responses=RouteOutputSerializer(many=True),
        description="Routes that apply when no organization, team or key route matches.",
    )
    def get(self, request: Request) -> Response:
        access.platform_admin_require(user=request.user)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.route_list(organization=None),
            serializer_class=RouteOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer, responses={201: RouteOutputSerializer}, description=REPLACES
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        access.platform_admin_require(user=request.user)
        route = services.route_set(
            actor=request.user,
            model_pattern=values["model_pattern"],
            targets=access.route_targets(targets=values["targets"]),
        )
        return _created(route)


class OrganizationRoutesApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        model_pattern = _model_pattern_field()
        team = serializers.SlugField(
            required=False, default=None, allow_null=True, help_text="Route only this team's keys."
        )
        key = serializers.IntegerField(
            required=False, default=None, allow_null=True, help_text="Route only this key."
        )
        targets = _targets_field()

        class Meta:
            ref_name = "RouteSet"

    @extend_schema(
        responses=RouteOutputSerializer(many=True),
        description="Routes of the organization, its teams and its keys; a developer sees "
        "the key routes of their own keys only.",
    )
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        owner = None if org.sees_every_key else request.user
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.route_list(organization=org.organization, owner=owner),
            serializer_class=RouteOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer, responses={201: RouteOutputSerializer}, description=REPLACES
    )
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        org = access.organization_access(user=request.user, slug=slug)
        org.require_manage()
        scope = access.route_scope(access=org, team=values["team"], key=values["key"])
        route = services.route_set(
            actor=request.user,
            model_pattern=values["model_pattern"],
            targets=access.route_targets(targets=values["targets"]),
            **scope,
        )
        return _created(route)


class RouteDeleteApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, route_id: int) -> Response:
        route = access.route_for_change(user=request.user, route_id=route_id)
        services.route_delete(actor=request.user, route=route)
        return Response(status=status.HTTP_204_NO_CONTENT)
