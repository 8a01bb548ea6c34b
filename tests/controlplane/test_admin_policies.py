from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from governance import services
from governance.keys import key_digest
from governance.models import Budget, BudgetSpend, Level, RateLimit, VirtualKey

BUDGETS = "/admin/governance/budget/"
LIMITS = "/admin/governance/ratelimit/"


@pytest.fixture
def staff(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def budget_form(**values) -> dict:
    form = {"level": "organization", "team": "", "user": "", "key": "", "period": "monthly"}
    return form | {"amount_usd": "100"} | values


def limit_form(**values) -> dict:
    form = {"level": "organization", "team": "", "user": "", "key": "", "provider": ""}
    return form | {"metric": "requests", "limit": "60", "window_seconds": "60"} | values


def test_it_adds_and_changes_a_budget_through_the_service(staff: Client, alice, acme) -> None:
    response = staff.post(f"{BUDGETS}add/", budget_form(organization=acme.pk, rolling="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    budget = Budget.objects.get()
    assert (budget.amount_usd, budget.rolling) == (Decimal(100), True)
    event = AuditEvent.objects.get(action="budget.set")
    assert (event.actor, event.target_id, event.before) == (alice, str(budget.pk), None)

    # Only the amount and rolling change here; the target and period name the budget.
    response = staff.post(f"{BUDGETS}{budget.pk}/change/", {"amount_usd": "40"})
    assert response.status_code == 302, response.content.decode()[:2000]
    budget.refresh_from_db()
    assert (budget.amount_usd, budget.rolling, budget.level) == (Decimal(40), False, "organization")
    changed = AuditEvent.objects.filter(action="budget.set").order_by("-id").first()
    amounts = (Decimal(changed.before["amount_usd"]), Decimal(changed.after["amount_usd"]))
    assert amounts == (Decimal(100), Decimal(40))


def test_it_refuses_a_budget_target_outside_the_organization(staff: Client, acme, globex) -> None:
    sales = services.team_create(actor=None, organization=globex, name="Sales")
    response = staff.post(
        f"{BUDGETS}add/", budget_form(organization=acme.pk, level="team", team=sales.pk)
    )
    assert response.status_code == 200
    assert "another organization" in response.content.decode()
    assert not Budget.objects.exists()


def test_it_refuses_a_budget_whose_level_does_not_match_its_target(staff: Client, acme) -> None:
    team = services.team_create(actor=None, organization=acme, name="Ops")
    response = staff.post(f"{BUDGETS}add/", budget_form(organization=acme.pk, team=team.pk))
    assert response.status_code == 200
    assert "budget_targets_its_level" in response.content.decode()
    response = staff.post(f"{BUDGETS}add/", budget_form(organization=acme.pk, amount_usd="-5"))
    assert response.status_code == 200
    assert not Budget.objects.exists()
    assert not AuditEvent.objects.filter(action="budget.set").exists()


def test_it_deletes_a_budget_and_its_spend_through_the_service(staff: Client, alice, acme) -> None:
    budget = services.budget_set(
        actor=None,
        level=Level.ORGANIZATION,
        organization=acme,
        amount_usd=Decimal(5),
        period="daily",
    )
    BudgetSpend.objects.create(budget=budget, period_start=timezone.now(), spent_usd=Decimal(1))
    # Persisted spend cannot be deleted on its own, which must not block deleting its budget.
    page = staff.get(f"{BUDGETS}{budget.pk}/delete/")
    assert page.status_code == 200
    assert "permission to delete" not in page.content.decode()
    response = staff.post(f"{BUDGETS}{budget.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Budget.objects.exists() and not BudgetSpend.objects.exists()
    event = AuditEvent.objects.get(action="budget.delete")
    assert (event.actor, event.target_id) == (alice, str(budget.pk))


def test_it_deletes_selected_budgets_through_the_service(staff: Client, alice, acme) -> None:
    ids = [
        services.budget_set(
            actor=None,
            level=Level.ORGANIZATION,
            organization=acme,
            amount_usd=Decimal(5),
            period=period,
        ).pk
        for period in ("daily", "weekly")
    ]
    response = staff.post(
        BUDGETS, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302
    assert not Budget.objects.exists()
    assert AuditEvent.objects.filter(action="budget.delete", actor=alice).count() == 2


def test_it_adds_changes_and_deletes_a_rate_limit_through_the_service(
    staff: Client, alice, acme, charlie
) -> None:
    response = staff.post(
        f"{LIMITS}add/",
        limit_form(organization=acme.pk, level="user", user=charlie.pk, model_pattern="claude-*"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rate = RateLimit.objects.get()
    assert (rate.user, rate.model_pattern) == (charlie, "claude-*")
    assert AuditEvent.objects.get(action="rate_limit.set").actor == alice

    response = staff.post(f"{LIMITS}{rate.pk}/change/", {"limit": "10"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RateLimit.objects.get().limit == 10
    changed = AuditEvent.objects.filter(action="rate_limit.set").order_by("-id").first()
    assert (changed.before["limit"], changed.after["limit"]) == (60, 10)

    response = staff.post(f"{LIMITS}{rate.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not RateLimit.objects.exists()
    assert AuditEvent.objects.get(action="rate_limit.delete").actor == alice


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"window_seconds": str(40 * 86400)}, "between 1 second and 31 days"),
        ({"window_seconds": "0"}, "ratelimit_window_positive"),
        ({"level": "key"}, "ratelimit_targets_its_level"),
    ],
)
def test_it_refuses_an_invalid_rate_limit(staff: Client, acme, values, message) -> None:
    response = staff.post(f"{LIMITS}add/", limit_form(organization=acme.pk, **values))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RateLimit.objects.exists()


def test_it_shows_persisted_spend_read_only(staff: Client, acme) -> None:
    budget = services.budget_set(
        actor=None,
        level=Level.ORGANIZATION,
        organization=acme,
        amount_usd=Decimal(5),
        period="daily",
    )
    spend = BudgetSpend.objects.create(
        budget=budget, period_start=timezone.now(), spent_usd=Decimal("1.5")
    )
    assert staff.get("/admin/governance/budgetspend/").status_code == 200
    page = staff.get(f"/admin/governance/budgetspend/{spend.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert staff.get("/admin/governance/budgetspend/add/").status_code == 403
    assert staff.post(f"/admin/governance/budgetspend/{spend.pk}/delete/").status_code == 403
    assert BudgetSpend.objects.filter(pk=spend.pk).exists()


def test_it_rotates_keys_with_an_admin_action_and_shows_each_secret_once(
    staff: Client, alice, acme
) -> None:
    keys = [services.key_create(actor=None, organization=acme, name=f"k{i}")[0] for i in range(2)]
    response = staff.post(
        "/admin/governance/virtualkey/",
        {"action": "rotate_keys", "_selected_action": [k.pk for k in keys]},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    secrets = [part.split("<", 1)[0].strip() for part in page.split("shown only now, is: ")[1:]]
    digests = set(VirtualKey.objects.values_list("digest", flat=True))
    assert {key_digest(s) for s in secrets} == digests
    assert digests.isdisjoint(k.digest for k in keys)
    assert AuditEvent.objects.filter(action="key.rotate", actor=alice).count() == 2
    assert not any(
        s in staff.get("/admin/governance/virtualkey/").content.decode() for s in secrets
    )


@pytest.mark.parametrize("model", ["budget", "ratelimit"])
def test_it_lists_policies_in_constant_queries(
    staff: Client, acme, charlie, model, django_assert_num_queries
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")

    def add(i: int) -> None:
        key, _ = services.key_create(actor=None, organization=acme, name=f"k{i}", user=charlie)
        targets = [
            {"level": Level.TEAM, "team": team},
            {"level": Level.USER, "user": charlie},
            {"level": Level.KEY, "key": key},
        ]
        for target in targets:
            if model == "budget":
                period = ("daily", "weekly", "monthly", "yearly")[i]
                services.budget_set(
                    actor=None, organization=acme, amount_usd=Decimal(1), period=period, **target
                )
            else:
                services.rate_limit_set(
                    actor=None,
                    organization=acme,
                    metric="requests",
                    limit=1,
                    window_seconds=60 + i,
                    **target,
                )

    url = f"/admin/governance/{model}/"
    add(0)
    staff.get(url)  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        staff.get(url)
    for i in range(1, 4):
        add(i)
    with django_assert_num_queries(len(few)):
        staff.get(url)


@pytest.mark.parametrize("model", ["budget", "ratelimit", "budgetspend"])
def test_it_lists_the_policy_models(staff: Client, model: str) -> None:
    assert staff.get(f"/admin/governance/{model}/").status_code == 200
