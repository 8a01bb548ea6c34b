"""Teams and people: admins add, invite and move members through the services; others read."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from audit.models import AuditEvent
from governance import services
from governance.models import Membership


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_it_adds_a_person_who_gets_a_link_to_set_a_password(acme, bob) -> None:
    services.team_create(actor=None, organization=acme, name="Payments")
    form = {
        "org": "acme",
        "username": "grace",
        "email": "grace@example.com",
        "role": "developer",
        "team": "payments",
    }
    assert _browser(bob).post("/people/add/", form).status_code == 302
    grace = get_user_model().objects.get(username="grace")
    assert not grace.has_usable_password()
    membership = Membership.objects.get(user=grace)
    assert (membership.role, membership.team.slug) == ("developer", "payments")
    assert mail.outbox[0].to == ["grace@example.com"]
    assert re.search(r"/accounts/password/reset/key/\S+", mail.outbox[0].body)
    assert {"user.create", "membership.set"} <= set(
        AuditEvent.objects.filter(actor=bob).values_list("action", flat=True)
    )


def test_it_moves_a_member_between_teams_and_roles(acme, bob, charlie) -> None:
    services.team_create(actor=None, organization=acme, name="Payments")
    browser = _browser(bob)
    assert (
        browser.post(
            "/people/charlie/", {"org": "acme", "team": "payments", "role": "viewer"}
        ).status_code
        == 302
    )
    membership = Membership.objects.get(user=charlie)
    assert (membership.team.slug, membership.role) == ("payments", "viewer")
    page = browser.get("/people/").content.decode()
    assert 'data-member="charlie"' in page and '<option value="payments" selected>' in page


def test_it_creates_a_team(acme, bob) -> None:
    assert (
        _browser(bob).post("/people/teams/add/", {"org": "acme", "name": "Mobile Apps"}).status_code
        == 302
    )
    assert acme.teams.get().slug == "mobile-apps"


def test_it_shows_others_the_members_without_controls(acme, bob, charlie, dave) -> None:
    for user in (charlie, dave):
        browser = _browser(user)
        page = browser.get("/people/").content.decode()
        assert (
            'data-member="bob"' in page
            and "Add or invite" not in page
            and "Create team" not in page
        )
        assert (
            browser.post(
                "/people/add/",
                {"org": "acme", "username": "x", "email": "x@example.com", "role": "admin"},
            ).status_code
            == 403
        )
        assert browser.post("/people/charlie/", {"org": "acme", "role": "admin"}).status_code == 403
        assert (
            browser.post("/people/teams/add/", {"org": "acme", "name": "Mine"}).status_code == 403
        )
    assert Membership.objects.get(user=charlie).role == "developer"


def test_it_sets_a_members_role_and_team_through_the_api(
    client_for, acme, bob, charlie, dave
) -> None:
    services.team_create(actor=None, organization=acme, name="Payments")
    url = "/api/v1/organizations/acme/members/charlie/"
    answer = client_for(bob).put(url, {"role": "admin", "team": "payments"}, format="json")
    assert answer.status_code == 200 and answer.json() == {
        "username": "charlie",
        "role": "admin",
        "team": "payments",
    }
    assert client_for(dave).put(url, {"role": "viewer"}, format="json").status_code == 403
    assert (
        client_for(bob)
        .put("/api/v1/organizations/acme/members/nobody/", {"role": "viewer"}, format="json")
        .status_code
        == 400
    )
