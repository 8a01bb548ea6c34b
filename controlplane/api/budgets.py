"""Hard USD budgets on an organization, a team, a member or a key, per period."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.pagination import paginated_response
from dataplane.limits import period_bounds
from governance import access, selectors, services
from governance.counters import COUNTER_STORE, REQUEST_LOG, BudgetUsage, budget_usage
from governance.models import Budget, Level, Period

SPENT_USD = serializers.DecimalField(max_digits=18, decimal_places=10, allow_null=True)
LEVEL_TARGETS_HELP = (
    "organization: none of team, user, key; team: a team slug; user: a member's username; "
    "key: a key id."
)


def _current_period_start(budget: Budget) -> datetime:
    start, _ = period_bounds(
        budget.period, budget.rolling, budget.anchor.timestamp(), timezone.now().timestamp()
    )
    # Built as budget_spend_persist builds BudgetSpend.period_start, so the two compare equal.
    return datetime.fromtimestamp(start, tz=UTC)


class _BudgetListSerializer(serializers.ListSerializer):
    def to_representation(self, data):  # type: ignore[no-untyped-def]
        budgets = list(data.all() if hasattr(data, "all") else data)
        # One counter read for the whole page, not one per budget.
        self.child.context["usage"] = {u.budget.pk: u for u in budget_usage(budgets=budgets)}
        return super().to_representation(budgets)


class BudgetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    level = serializers.ChoiceField(choices=Level.choices)
    organization = serializers.SlugField(source="organization.slug")
    team = serializers.SlugField(source="team.slug", allow_null=True, default=None)
    user = serializers.CharField(source="user.username", allow_null=True, default=None)
    key = serializers.IntegerField(source="key_id", allow_null=True)
    key_prefix = serializers.CharField(source="key.prefix", allow_null=True, default=None)
    amount_usd = serializers.DecimalField(max_digits=14, decimal_places=4)
    period = serializers.ChoiceField(choices=Period.choices)
    rolling = serializers.BooleanField(
        help_text="Rolling periods repeat from the anchor; others follow the UTC calendar."
    )
    anchor = serializers.DateTimeField()
    alert_thresholds = serializers.ListField(
        child=serializers.IntegerField(), help_text="Percentages of the amount at which alert channels are warned, once per period."
    )
    period_start = serializers.SerializerMethodField(help_text="Start of the current period.")
    spent_usd = serializers.SerializerMethodField(
        help_text="Spend of the current period as last persisted; null if none was yet."
    )
    spent = serializers.SerializerMethodField(help_text="Spend of the current period, live where the counters are readable.")
    reserved = serializers.SerializerMethodField(
        help_text="Held for requests in flight; null on the embedded default, whose counters live in the data plane."
    )
    remaining = serializers.SerializerMethodField(help_text="What is left: amount − spent − reserved, at least 0.")
    resets_at = serializers.SerializerMethodField(help_text="When the current period ends.")
    spend_source = serializers.SerializerMethodField(
        help_text="counter store: the live counters (Redis); request log: the embedded default, whose counters "
        "live in the data-plane process, read from the log the writer fills within a second."
    )
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Budget"
        list_serializer_class = _BudgetListSerializer

    def get_period_start(self, budget: Budget) -> datetime:
        return _current_period_start(budget)

    @extend_schema_field(SPENT_USD)
    def get_spent_usd(self, budget: Budget) -> str | None:
        # Set by selectors.budget_list; a budget just written has no spend yet.
        start = getattr(budget, "spent_period_start", None)
        spent = getattr(budget, "spent_usd_latest", None)
        if start is None or spent is None or start != _current_period_start(budget):
            return None
        return SPENT_USD.to_representation(spent)

    def _usage(self, budget: Budget) -> BudgetUsage:
        usages = self.context.setdefault("usage", {})
        if budget.pk not in usages:
            usages.update({u.budget.pk: u for u in budget_usage(budgets=[budget])})
        return usages[budget.pk]

    @extend_schema_field(serializers.DecimalField(max_digits=18, decimal_places=10))
    def get_spent(self, budget: Budget) -> str:
        return SPENT_USD.to_representation(self._usage(budget).spent)

    @extend_schema_field(SPENT_USD)
    def get_reserved(self, budget: Budget) -> str | None:
        usage = self._usage(budget)
        if usage.source == REQUEST_LOG:
            return None  # in flight inside the data-plane process: not visible from here
        return SPENT_USD.to_representation(usage.reserved)

    @extend_schema_field(serializers.DecimalField(max_digits=18, decimal_places=10))
    def get_remaining(self, budget: Budget) -> str:
        return SPENT_USD.to_representation(self._usage(budget).remaining)

    @extend_schema_field(serializers.DateTimeField())
    def get_resets_at(self, budget: Budget) -> datetime:
        return self._usage(budget).resets_at

    @extend_schema_field(serializers.ChoiceField(choices=[COUNTER_STORE, REQUEST_LOG]))
    def get_spend_source(self, budget: Budget) -> str:
        return self._usage(budget).source


class BudgetsApi(APIView):
    pagination_class = LimitOffsetPagination

    class InputSerializer(serializers.Serializer):
        level = serializers.ChoiceField(choices=Level.choices, help_text=LEVEL_TARGETS_HELP)
        team = serializers.SlugField(required=False, default=None, allow_null=True)
        user = serializers.CharField(required=False, default=None, allow_null=True, max_length=150)
        key = serializers.IntegerField(required=False, default=None, allow_null=True, min_value=1, max_value=2**63 - 1)
        amount_usd = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=0)
        period = serializers.ChoiceField(choices=Period.choices)
        rolling = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Repeat every 1, 7, 30 or 365 days from now rather than by the calendar.",
        )
        alert_thresholds = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=1000),
            required=False,
            default=None,
            allow_null=True,
            max_length=20,
            help_text="Percentages of the amount at which to warn (default 75, 90, 100; [] for none).",
        )

        class Meta:
            ref_name = "BudgetSet"

    @extend_schema(responses=BudgetOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        org = access.organization_access(user=request.user, slug=slug)
        owner = None if org.sees_every_key else request.user
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.budget_list(organization=org.organization, owner=owner),
            serializer_class=BudgetOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: BudgetOutputSerializer},
        description="Sets the budget of one target for one period: a second call for the same "
        "target and period changes it.",
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
        budget = services.budget_set(
            actor=request.user,
            level=values["level"],
            organization=org.organization,
            amount_usd=values["amount_usd"],
            period=values["period"],
            rolling=values["rolling"],
            alert_thresholds=values["alert_thresholds"],
            **targets,
        )
        return Response(BudgetOutputSerializer(budget).data, status=status.HTTP_201_CREATED)


class BudgetDeleteApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, budget_id: int) -> Response:
        budget = access.budget_for_change(user=request.user, budget_id=budget_id)
        services.budget_delete(actor=request.user, budget=budget)
        return Response(status=status.HTTP_204_NO_CONTENT)
