"""The Keys page: what each role sees and may do, decided by the API's access functions."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from governance import services
from governance.keys import key_digest
from governance.models import KeyStatus, VirtualKey
from ledger.models import RequestLog
from ledger.services import usage_rollup
from tests.ledger.factories import log_row

KEYS = "/keys/"


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _secret(page: str) -> str:
    return re.search(r'<code id="new-secret">([^<]+)</code>', page).group(1)


def test_it_creates_a_key_and_shows_its_secret_once(bob, charlie) -> None:
    browser = _browser(bob)
    response = browser.post(KEYS, {"org": "acme", "name": "charlie laptop", "user": "charlie"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    secret = _secret(page)
    key = VirtualKey.objects.get(name="charlie laptop")
    assert key.digest == key_digest(secret) and key.user == charlie
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8080/anthropic" in page
    assert f"export ANTHROPIC_AUTH_TOKEN={secret}" in page
    assert AuditEvent.objects.get(action="key.create").actor == bob

    again = browser.get(KEYS).content.decode()
    assert secret not in again and key.prefix in again


def test_it_lets_a_developer_create_only_their_own_key(bob, charlie) -> None:
    browser = _browser(charlie)
    assert browser.post(KEYS, {"org": "acme", "name": "mine", "user": "charlie"}).status_code == 201
    assert VirtualKey.objects.get(name="mine").user == charlie
    # A developer's owner list holds only themselves; naming someone else anyway is refused.
    response = browser.post(KEYS, {"org": "acme", "name": "for bob", "user": "bob"})
    assert response.status_code == 403
    assert not VirtualKey.objects.filter(name="for bob").exists()


def test_it_shows_a_developer_only_their_own_keys(acme, bob, charlie) -> None:
    services.key_create(actor=None, organization=acme, name="bob's", user=bob)
    services.key_create(actor=None, organization=acme, name="charlie's", user=charlie)
    page = _browser(charlie).get(KEYS).content.decode()
    assert "charlie&#x27;s" in page and "bob&#x27;s" not in page
    assert "Your keys in Acme" in page


def test_it_shows_a_viewer_every_key_and_no_write_controls(acme, charlie, dave) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="charlie's", user=charlie)
    browser = _browser(dave)
    page = browser.get(KEYS).content.decode()
    assert "charlie&#x27;s" in page
    assert "New key" not in page and "Disable" not in page and "Rotate" not in page
    assert browser.post(KEYS, {"org": "acme", "name": "sneaky"}).status_code == 403
    assert browser.post(f"/keys/{key.pk}/disable/").status_code == 403
    assert VirtualKey.objects.get(pk=key.pk).status == KeyStatus.ACTIVE


def test_it_hides_an_organization_from_outsiders(acme, bob, eve) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="acme's", user=bob)
    browser = _browser(eve)
    assert browser.get(KEYS + "?org=acme").status_code == 404
    assert browser.post(f"/keys/{key.pk}/disable/").status_code == 404


def test_it_disables_and_enables_a_key_in_place(acme, bob, charlie) -> None:
    key, _ = services.key_create(actor=None, organization=acme, name="laptop", user=charlie)
    browser = _browser(bob)
    row = browser.post(f"/keys/{key.pk}/disable/", HTTP_HX_REQUEST="true").content.decode()
    assert row.startswith(f'\n<tr id="key-{key.pk}">') or f'<tr id="key-{key.pk}">' in row
    assert "disabled" in row and "Enable" in row
    assert VirtualKey.objects.get(pk=key.pk).status == KeyStatus.DISABLED
    row = browser.post(f"/keys/{key.pk}/enable/", HTTP_HX_REQUEST="true").content.decode()
    assert "active" in row and "Disable" in row
    assert [e.action for e in AuditEvent.objects.filter(target_id=str(key.pk)).order_by("id")][
        -2:
    ] == [
        "key.disable",
        "key.enable",
    ]


def test_it_rotates_a_key_with_a_day_of_grace_by_default(acme, bob, charlie) -> None:
    key, old = services.key_create(actor=None, organization=acme, name="laptop", user=charlie)
    browser = _browser(bob)
    response = browser.post(f"/keys/{key.pk}/rotate/", {"grace_hours": "24"})
    assert response.status_code == 200
    new = _secret(response.content.decode())
    key.refresh_from_db()
    assert key.digest == key_digest(new) and key.previous_digest == key_digest(old)
    grace = key.previous_valid_until - timezone.now()
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(hours=24)
    assert "The old secret keeps working until" in response.content.decode()
    assert browser.post(f"/keys/{key.pk}/rotate/", {"grace_hours": "-1"}).status_code == 400


def test_it_lists_keys_in_constant_queries(acme, bob, charlie) -> None:
    browser = _browser(bob)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(KEYS).status_code == 200
        return len(queries)

    services.key_create(actor=None, organization=acme, name="k0", user=charlie)
    few = count()
    for i in range(1, 12):
        services.key_create(actor=None, organization=acme, name=f"k{i}", user=charlie)
    assert count() == few
    assert few <= 16, few


def test_it_shows_when_each_key_was_last_used(acme, bob, charlie) -> None:
    recent, _ = services.key_create(actor=None, organization=acme, name="recent", user=charlie)
    idle, _ = services.key_create(actor=None, organization=acme, name="idle", user=charlie)
    unused, _ = services.key_create(actor=None, organization=acme, name="unused", user=charlie)
    now = timezone.now()
    long_ago = now - timedelta(days=5)
    RequestLog.objects.bulk_create(
        [
            log_row(organization_id=acme.pk, key_id=recent.pk, created_at=now - timedelta(hours=3)),
            log_row(
                organization_id=acme.pk, key_id=recent.pk, created_at=now - timedelta(hours=30)
            ),
            log_row(organization_id=acme.pk, key_id=idle.pk, created_at=long_ago),
        ]
    )
    usage_rollup(day=long_ago.date())
    page = _browser(bob).get(KEYS).content.decode()

    def last_used(key: VirtualKey) -> str:
        row = re.search(rf'<tr id="key-{key.pk}">(.*?)</tr>', page, re.S).group(1)
        return re.findall(r'<td class="small">([^<]*)</td>', row)[-1]

    # The instant within the last two days, the day (from the roll-up) before that.
    assert last_used(recent) == "3\xa0hours ago"
    assert last_used(idle) == f"on {long_ago:%b} {long_ago.day}"
    assert last_used(unused) == "never"
