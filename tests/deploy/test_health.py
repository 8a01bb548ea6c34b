"""The control plane answers probes on its pod address over plain HTTP, in production."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client


@pytest.fixture
def strict(settings):
    settings.ALLOWED_HOSTS = ["tollgate.example.com"]
    settings.SECURE_SSL_REDIRECT = True


@pytest.mark.django_db
def test_it_answers_healthz_and_readyz_to_a_probe_at_any_address(strict):
    client = Client(HTTP_HOST="10.1.2.3:8000")
    assert client.get("/healthz").content == b"ok\n"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.content == b"ready\n"


@pytest.mark.django_db
def test_it_keeps_host_and_https_checks_for_everything_else(strict):
    assert Client(HTTP_HOST="10.1.2.3:8000").get("/accounts/login/").status_code == 400
    assert Client(HTTP_HOST="tollgate.example.com").get("/accounts/login/").status_code == 301


@pytest.mark.django_db
def test_it_reports_not_ready_when_the_database_is_gone(strict, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    ready = Client(HTTP_HOST="10.1.2.3:8000").get("/readyz")
    assert ready.status_code == 503 and b"database unreachable" in ready.content
