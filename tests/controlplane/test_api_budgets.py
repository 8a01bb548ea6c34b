from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from governance import services
from governance.models import Budget, BudgetSpend, Level

BUDGETS = "/api/v1/organizations/acme/budgets/"


def budget_for(org, **kwargs) -> Budget:
    values = {"level": Level.ORGANIZATION, "amount_usd": Decimal(100), "period": "monthly"}
    return services.budget_set(actor=None, organization=org, **(values | kwargs))


def test_it_sets_an_organization_budget_and_changes_it_in_place(
    client_for, bob, acme, committed_snapshot
) -> None:
    client = client_for(bob)
    body = {"level": "organization", "amount_usd": "250.50", "period": "monthly"}
    response = client.post(BUDGETS, body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["level"] == "organization"
    assert (created["amount_usd"], created["period"], created["rolling"]) == (
        "250.5000",
        "monthly",
        False,
    )
    assert (created["team"], created["user"], created["key"]) == (None, None, None)
    assert created["spent_usd"] is None
    budget = Budget.objects.get()
    event = AuditEvent.objects.get(action="budget.set")
    assert (event.actor, event.target_id, event.before) == (bob, str(budget.pk), None)
    assert event.after["amount_usd"] == "250.5000"

    # The same target and period is the same budget: a second call changes its amount.
    response = client.post(BUDGETS, body | {"amount_usd": "300"}, format="json")
    assert response.json()["id"] == budget.pk
    assert Budget.objects.get().amount_usd == Decimal(300)
    second = AuditEvent.objects.filter(action="budget.set").order_by("-id").first()
    assert (second.before["amount_usd"], second.after["amount_usd"]) == ("250.5000", "300.0000")

    published = committed_snapshot()["budgets"]
    assert [(b["id"], b["amount_usd"]) for b in published] == [(budget.pk, "300.0000")]


def test_it_sets_budgets_on_a_team_a_member_and_a_key(client_for, bob, charlie, acme) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    key, _ = services.key_create(actor=None, organization=acme, name="ci", user=charlie)
    client = client_for(bob)
    for target in (
        {"level": "team", "team": "platform"},
        {"level": "user", "user": "charlie"},
        {"level": "key", "key": key.pk},
    ):
        body = target | {"amount_usd": "10", "period": "daily", "rolling": True}
        response = client.post(BUDGETS, body, format="json")
        assert response.status_code == 201, response.json()

    listed = {b["level"]: b for b in client.get(BUDGETS).json()["results"]}
    assert listed["team"]["team"] == team.slug
    assert listed["user"]["user"] == "charlie"
    assert (listed["key"]["key"], listed["key"]["key_prefix"]) == (key.pk, key.prefix)
    assert all(b["rolling"] for b in listed.values())
    assert AuditEvent.objects.filter(action="budget.set", actor=bob).count() == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"level": "team"}, "team"),
        ({"level": "organization", "team": "platform"}, "team"),
        ({"level": "user", "user": "charlie", "team": "platform"}, "team"),
        ({"level": "key"}, "key"),
        ({"level": "user", "user": "eve"}, "user"),
        ({"level": "team", "team": "nowhere"}, "team"),
        ({"level": "key", "key": 999999}, "key"),
        ({"level": "planet"}, "level"),
        ({"level": "organization", "amount_usd": "-1"}, "amount_usd"),
        ({"level": "organization", "amount_usd": "lots"}, "amount_usd"),
        ({"level": "organization", "period": "hourly"}, "period"),
    ],
)
def test_it_rejects_an_invalid_budget(client_for, bob, charlie, eve, acme, body, field) -> None:
    services.team_create(actor=None, organization=acme, name="Platform")
    full = {"amount_usd": "10", "period": "monthly"} | body
    response = client_for(bob).post(BUDGETS, full, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Budget.objects.exists()
    assert not AuditEvent.objects.filter(action="budget.set").exists()


def test_it_refuses_a_budget_on_another_organizations_key(client_for, bob, acme, globex) -> None:
    key, _ = services.key_create(actor=None, organization=globex, name="theirs")
    body = {"level": "key", "key": key.pk, "amount_usd": "1", "period": "daily"}
    response = client_for(bob).post(BUDGETS, body, format="json")
    assert response.status_code == 400
    assert response.json() == {"key": [f"No key {key.pk} in acme."]}


@pytest.mark.parametrize("persona", ["charlie", "dave"])
def test_it_refuses_budget_writes_to_developers_and_viewers(
    client_for, acme, persona, request
) -> None:
    budget = budget_for(acme)
    client = client_for(request.getfixturevalue(persona))
    body = {"level": "organization", "amount_usd": "1", "period": "daily"}
    assert client.post(BUDGETS, body, format="json").status_code == 403
    assert client.delete(f"/api/v1/budgets/{budget.pk}/").status_code == 403
    assert list(Budget.objects.values_list("period", flat=True)) == ["monthly"]


def test_it_hides_budgets_from_outsiders(client_for, acme, eve) -> None:
    budget = budget_for(acme)
    client = client_for(eve)
    assert client.get(BUDGETS).status_code == 404
    body = {"level": "organization", "amount_usd": "1", "period": "daily"}
    assert client.post(BUDGETS, body, format="json").status_code == 404
    assert client.delete(f"/api/v1/budgets/{budget.pk}/").status_code == 404
    assert Budget.objects.filter(pk=budget.pk).exists()


def test_it_asks_anonymous_callers_to_sign_in(anonymous, acme) -> None:
    budget = budget_for(acme)
    assert anonymous.get(BUDGETS).status_code == 401
    assert anonymous.delete(f"/api/v1/budgets/{budget.pk}/").status_code == 401


def test_it_shows_developers_the_budgets_that_concern_them(
    client_for, acme, bob, charlie, dave
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    mine, _ = services.key_create(actor=None, organization=acme, name="mine", user=charlie)
    theirs, _ = services.key_create(actor=None, organization=acme, name="theirs", user=bob)
    budget_for(acme)
    budget_for(acme, level=Level.TEAM, team=team)
    budget_for(acme, level=Level.USER, user=charlie)
    budget_for(acme, level=Level.USER, user=bob)
    budget_for(acme, level=Level.KEY, key=mine)
    hidden = budget_for(acme, level=Level.KEY, key=theirs)

    def seen(user) -> list[tuple[str, str | None, int | None]]:
        results = client_for(user).get(BUDGETS).json()["results"]
        return [(b["level"], b["user"], b["key"]) for b in results]

    assert seen(charlie) == [
        ("organization", None, None),
        ("team", None, None),
        ("user", "charlie", None),
        ("key", None, mine.pk),
    ]
    assert len(seen(dave)) == len(seen(bob)) == 6
    # What a developer cannot list, they cannot find by id either.
    assert client_for(charlie).delete(f"/api/v1/budgets/{hidden.pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_it_lets_admins_delete_a_budget(
    client_for, acme, persona, request, committed_snapshot
) -> None:
    actor = request.getfixturevalue(persona)
    budget = budget_for(acme)
    response = client_for(actor).delete(f"/api/v1/budgets/{budget.pk}/")
    assert response.status_code == 204
    assert not Budget.objects.exists()
    event = AuditEvent.objects.get(action="budget.delete")
    assert (event.actor, event.target_id) == (actor, str(budget.pk))
    assert event.before["amount_usd"] == "100.0000"
    assert committed_snapshot()["budgets"] == []


def test_it_answers_404_for_a_missing_budget(client_for, alice) -> None:
    assert client_for(alice).delete("/api/v1/budgets/999999/").status_code == 404


def test_it_shows_the_current_periods_persisted_spend(client_for, acme, bob) -> None:
    current = budget_for(acme, period="daily")
    stale = budget_for(acme, period="weekly")
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    BudgetSpend.objects.create(budget=current, period_start=today, spent_usd=Decimal("1.25"))
    BudgetSpend.objects.create(
        budget=current, period_start=today - timedelta(days=1), spent_usd=Decimal("9")
    )
    BudgetSpend.objects.create(
        budget=stale, period_start=today - timedelta(days=30), spent_usd=Decimal("7")
    )

    listed = {b["period"]: b for b in client_for(bob).get(BUDGETS).json()["results"]}
    assert Decimal(listed["daily"]["spent_usd"]) == Decimal("1.25")
    assert listed["daily"]["period_start"].startswith(today.date().isoformat())
    assert listed["weekly"]["spent_usd"] is None


def test_it_lists_budgets_in_constant_queries(
    client_for, acme, bob, charlie, django_assert_num_queries
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    for period in ("daily", "weekly", "monthly", "yearly"):
        budget_for(acme, period=period)
        budget_for(acme, level=Level.TEAM, team=team, period=period)
        budget_for(acme, level=Level.USER, user=charlie, period=period)
        for i in range(2):
            key, _ = services.key_create(actor=None, organization=acme, name=f"{period}{i}")
            budget = budget_for(acme, level=Level.KEY, key=key, period=period)
            BudgetSpend.objects.create(
                budget=budget, period_start=timezone.now(), spent_usd=Decimal(1)
            )
    client = client_for(bob)
    # token, membership, organization, count, page (targets joined, spend as subqueries),
    # then the spend of counters the store does not hold: the persisted copies, the
    # roll-up's state and the request log, one query each for every period start
    # (daily, weekly, monthly, yearly); the roll-up too once it holds settled days
    with django_assert_num_queries(8):
        response = client.get(BUDGETS)
    assert response.json()["count"] == 20
