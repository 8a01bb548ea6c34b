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


def test_it_verifies_the_chain_on_demand_and_shows_where_it_broke(acme, alice, charlie) -> None:
    from audit.models import AuditEvent
    from tests.audit.tamper import as_superuser, raw

    _changes(acme, alice, charlie)
    browser = _browser(alice)
    assert "Verify the chain now" in browser.get("/audit/").content.decode()
    page = browser.post("/audit/verify/", follow=True).content.decode()
    assert "badge ok\">intact" in page and "intact up to seq" in page
    victim = AuditEvent.objects.order_by("seq")[1]
    with as_superuser():
        raw("UPDATE audit_auditevent SET action = %s WHERE id = %s", ["key.enable", victim.pk])
    page = browser.post("/audit/verify/", follow=True).content.decode()
    assert "badge bad\">broken" in page and f"BROKEN at seq {victim.seq}" in page


def test_it_shows_each_exports_health(acme, alice, charlie) -> None:
    from audit.sinks import sink_create

    sink_create(actor=alice, name="splunk-main", kind="splunk", url="http://127.0.0.1:9/services/collector", secret="hec-token")
    _changes(acme, alice, charlie)
    page = _browser(alice).get("/audit/").content.decode()
    section = page[page.index('id="sinks"') :]
    assert "splunk-main" in section and "events" in section
