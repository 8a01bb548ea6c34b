from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from ledger.models import RequestLog


@pytest.fixture
def staff(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def row(db: None) -> RequestLog:
    return RequestLog.objects.create(
        request_id="req-1",
        created_at=timezone.now(),
        endpoint="anthropic.messages",
        key_prefix="tg-0123abcd",
        model_requested="claude-sonnet-4-5",
        status=200,
    )


def test_it_shows_the_request_log(staff: Client, row: RequestLog) -> None:
    page = staff.get("/admin/ledger/requestlog/?status__exact=200")
    assert page.status_code == 200
    assert "tg-0123abcd" in page.content.decode()


def test_it_keeps_the_request_log_read_only(staff: Client, row: RequestLog) -> None:
    assert staff.get("/admin/ledger/requestlog/add/").status_code == 403
    change = staff.get(f"/admin/ledger/requestlog/{row.pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert (
        staff.post(f"/admin/ledger/requestlog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert RequestLog.objects.filter(pk=row.pk).exists()
