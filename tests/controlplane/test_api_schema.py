from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_it_generates_the_schema_without_warnings(tmp_path) -> None:
    # --fail-on-warn turns every drf-spectacular warning or error into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
    text = (tmp_path / "s.yaml").read_text()
    for path in ("/api/v1/organizations/{slug}/keys/", "/api/v1/keys/{key_id}/disable/"):
        assert path in text


def test_it_serves_the_schema_to_a_signed_in_user(client_for, bob) -> None:
    response = client_for(bob).get("/api/v1/schema/")
    assert response.status_code == 200


@pytest.mark.django_db
def test_it_keeps_the_schema_from_anonymous_callers(anonymous: APIClient) -> None:
    assert anonymous.get("/api/v1/schema/").status_code == 401
