from __future__ import annotations

import pytest

from audit.models import AuditEvent
from governance import services
from governance.models import Level, RateLimit

LIMITS = "/api/v1/organizations/acme/rate-limits/"


def limit_for(org, **kwargs) -> RateLimit:
    values = {"level": Level.ORGANIZATION, "metric": "requests", "limit": 60, "window_seconds": 60}
    return services.rate_limit_set(actor=None, organization=org, **(values | kwargs))


@pytest.fixture
def upstream(db: None):
    return services.provider_create(
        actor=None,
        name="anthropic-main",
        kind="anthropic",
        base_url="https://api.anthropic.com",
        credential="sk-ant-test",
    )


def test_it_sets_a_rate_limit_and_changes_it_in_place(
    client_for, bob, acme, upstream, committed_snapshot
) -> None:
    client = client_for(bob)
    body = {
        "level": "organization",
        "metric": "tokens",
        "limit": 100000,
        "window": "minute",
        "model_pattern": "claude-opus-*",
        "provider": "anthropic-main",
    }
    response = client.post(LIMITS, body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["metric"], created["limit"], created["window_seconds"]) == (
        "tokens",
        100000,
        60,
    )
    assert (created["model_pattern"], created["provider"]) == ("claude-opus-*", "anthropic-main")
    rate = RateLimit.objects.get()
    event = AuditEvent.objects.get(action="rate_limit.set")
    assert (event.actor, event.target_id, event.before) == (bob, str(rate.pk), None)
    assert event.after["limit"] == 100000

    # Same target, metric, window, pattern and provider: the same limit, changed.
    response = client.post(LIMITS, body | {"limit": 5000, "window": 60}, format="json")
    assert response.json()["id"] == rate.pk
    assert RateLimit.objects.get().limit == 5000
    second = AuditEvent.objects.filter(action="rate_limit.set").order_by("-id").first()
    assert (second.before["limit"], second.after["limit"]) == (100000, 5000)

    # Another window is another limit.
    client.post(LIMITS, body | {"window": "hour"}, format="json")
    assert sorted(RateLimit.objects.values_list("window_seconds", flat=True)) == [60, 3600]

    published = committed_snapshot()["limits"]
    assert sorted(r["window_seconds"] for r in published) == [60, 3600]


@pytest.mark.parametrize(
    ("window", "seconds"), [("minute", 60), ("hour", 3600), ("day", 86400), (90, 90), ("15", 15)]
)
def test_it_reads_a_window_by_name_or_in_seconds(client_for, bob, acme, window, seconds) -> None:
    body = {"level": "organization", "metric": "requests", "limit": 10, "window": window}
    response = client_for(bob).post(LIMITS, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["window_seconds"] == seconds


def test_it_sets_limits_on_a_team_a_member_and_a_key(client_for, bob, charlie, acme) -> None:
    services.team_create(actor=None, organization=acme, name="Platform")
    key, _ = services.key_create(actor=None, organization=acme, name="ci", user=charlie)
    client = client_for(bob)
    for target in (
        {"level": "team", "team": "platform"},
        {"level": "user", "user": "charlie"},
        {"level": "key", "key": key.pk},
    ):
        body = target | {"metric": "requests", "limit": 5, "window": "minute"}
        assert client.post(LIMITS, body, format="json").status_code == 201

    listed = {r["level"]: r for r in client.get(LIMITS).json()["results"]}
    assert listed["team"]["team"] == "platform"
    assert listed["user"]["user"] == "charlie"
    assert (listed["key"]["key"], listed["key"]["key_prefix"]) == (key.pk, key.prefix)
    assert all(r["provider"] is None for r in listed.values())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"level": "team"}, "team"),
        ({"level": "organization", "user": "charlie"}, "user"),
        ({"level": "key", "key": 999999}, "key"),
        ({"level": "user", "user": "eve"}, "user"),
        ({"metric": "dollars"}, "metric"),
        ({"limit": -1}, "limit"),
        ({"window": 0}, "window"),
        ({"window": -60}, "window"),
        ({"window": "fortnight"}, "window"),
        ({"window": True}, "window"),
        ({"window": 40 * 86400}, "window_seconds"),
        ({"provider": "nowhere"}, "provider"),
    ],
)
def test_it_rejects_an_invalid_rate_limit(client_for, bob, charlie, eve, body, field) -> None:
    full = {"level": "organization", "metric": "requests", "limit": 10, "window": 60} | body
    response = client_for(bob).post(LIMITS, full, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not RateLimit.objects.exists()


@pytest.mark.parametrize("persona", ["charlie", "dave"])
def test_it_refuses_rate_limit_writes_to_developers_and_viewers(
    client_for, acme, persona, request
) -> None:
    rate = limit_for(acme)
    client = client_for(request.getfixturevalue(persona))
    body = {"level": "organization", "metric": "requests", "limit": 1, "window": "day"}
    assert client.post(LIMITS, body, format="json").status_code == 403
    assert client.delete(f"/api/v1/rate-limits/{rate.pk}/").status_code == 403
    assert client.get(LIMITS).status_code == 200
    assert list(RateLimit.objects.values_list("limit", flat=True)) == [60]


def test_it_hides_rate_limits_from_outsiders(client_for, acme, eve) -> None:
    rate = limit_for(acme)
    client = client_for(eve)
    assert client.get(LIMITS).status_code == 404
    body = {"level": "organization", "metric": "requests", "limit": 1, "window": "day"}
    assert client.post(LIMITS, body, format="json").status_code == 404
    assert client.delete(f"/api/v1/rate-limits/{rate.pk}/").status_code == 404
    assert RateLimit.objects.filter(pk=rate.pk).exists()


def test_it_asks_anonymous_callers_to_sign_in(anonymous, acme) -> None:
    rate = limit_for(acme)
    assert anonymous.get(LIMITS).status_code == 401
    assert anonymous.delete(f"/api/v1/rate-limits/{rate.pk}/").status_code == 401


def test_it_shows_developers_the_limits_that_concern_them(client_for, acme, bob, charlie) -> None:
    mine, _ = services.key_create(actor=None, organization=acme, name="mine", user=charlie)
    theirs, _ = services.key_create(actor=None, organization=acme, name="theirs", user=bob)
    limit_for(acme)
    limit_for(acme, level=Level.USER, user=charlie)
    limit_for(acme, level=Level.USER, user=bob)
    limit_for(acme, level=Level.KEY, key=mine)
    hidden = limit_for(acme, level=Level.KEY, key=theirs)

    results = client_for(charlie).get(LIMITS).json()["results"]
    assert [(r["level"], r["user"], r["key"]) for r in results] == [
        ("organization", None, None),
        ("user", "charlie", None),
        ("key", None, mine.pk),
    ]
    assert client_for(charlie).delete(f"/api/v1/rate-limits/{hidden.pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_it_lets_admins_delete_a_rate_limit(
    client_for, acme, persona, request, committed_snapshot
) -> None:
    actor = request.getfixturevalue(persona)
    rate = limit_for(acme)
    response = client_for(actor).delete(f"/api/v1/rate-limits/{rate.pk}/")
    assert response.status_code == 204
    assert not RateLimit.objects.exists()
    event = AuditEvent.objects.get(action="rate_limit.delete")
    assert (event.actor, event.target_id) == (actor, str(rate.pk))
    assert event.before["limit"] == 60
    assert committed_snapshot()["limits"] == []


def test_it_answers_404_for_a_missing_rate_limit(client_for, alice) -> None:
    assert client_for(alice).delete("/api/v1/rate-limits/999999/").status_code == 404


def test_it_lists_rate_limits_in_constant_queries(
    client_for, acme, bob, charlie, upstream, django_assert_num_queries
) -> None:
    team = services.team_create(actor=None, organization=acme, name="Platform")
    for window in (60, 3600, 86400, 120, 300):
        limit_for(acme, window_seconds=window, provider=upstream)
        limit_for(acme, level=Level.TEAM, team=team, window_seconds=window)
        limit_for(acme, level=Level.USER, user=charlie, window_seconds=window)
        key, _ = services.key_create(actor=None, organization=acme, name=f"k{window}")
        limit_for(acme, level=Level.KEY, key=key, window_seconds=window, model_pattern="claude-*")
    client = client_for(bob)
    # token, membership, organization, count, page (targets and provider joined)
    with django_assert_num_queries(5):
        response = client.get(LIMITS)
    assert response.json()["count"] == 20
