"""The audit log viewer and ``/api/v1/audit/``: the same filters, for platform admins."""

from __future__ import annotations

from django.test import Client

from governance import services


def _table(response) -> str:
    page = response.content.decode()
    return page[page.index('<table class="table" id="audit">') :] if 'id="audit"' in page else ""


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _changes(acme, alice, charlie):
    key, _ = services.key_create(actor=alice, organization=acme, name="charlie laptop", user=charlie)
    services.key_disable(actor=alice, key=key)
    Client().post("/accounts/login/", {"login": "charlie", "password": "wrong"})
    return key


def test_it_shows_who_did_what_with_filters(acme, alice, charlie) -> None:
    _changes(acme, alice, charlie)
    browser = _browser(alice)
    page = _table(browser.get("/audit/"))
    assert "key.create" in page and "key.disable" in page and "auth.signin_failed" in page
    keys_only = _table(browser.get("/audit/", {"action": "key."}))
    assert "key.disable" in keys_only and "auth.signin_failed" not in keys_only
    by_actor = _table(browser.get("/audit/", {"actor": "anonymous"}))
    assert "auth.signin_failed" in by_actor and "key.create" not in by_actor
    by_target = _table(browser.get("/audit/", {"target": "laptop"}))
    assert "key.create" in by_target and "auth.signin_failed" not in by_target


def test_it_answers_the_api_with_the_same_filters(client_for, acme, alice, charlie) -> None:
    key = _changes(acme, alice, charlie)
    body = client_for(alice).get("/api/v1/audit/", {"action": "key.", "limit": 1}).json()
    (first,) = body["results"]
    assert (first["action"], first["actor"], first["target_id"]) == ("key.disable", "alice", str(key.pk))
    assert first["before"]["status"] == "active" and first["after"]["status"] == "disabled"
    second = client_for(alice).get(body["next"]).json()["results"]
    assert [e["action"] for e in second] == ["key.create"]


def test_it_keeps_the_trail_from_everyone_but_platform_admins(client_for, acme, alice, bob, charlie) -> None:
    _changes(acme, alice, charlie)
    assert _browser(bob).get("/audit/").status_code == 403
    assert client_for(bob).get("/api/v1/audit/").status_code == 403
    assert 'href="/audit/"' not in _browser(bob).get("/").content.decode()
