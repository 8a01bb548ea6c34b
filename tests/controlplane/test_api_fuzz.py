"""The admin API under generated requests: every route needs credentials, none
answers 500 (schemathesis, from the API's own OpenAPI schema), and request
validation takes any JSON without crashing (hypothesis). Bounded: a few
examples per operation, derandomized, so a run takes seconds and repeats."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from governance import services

# The sign-in exchange is the one route open to anyone.
PUBLIC = {("POST", "/api/v1/auth/token/")}
BOUNDED = settings(
    max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def _document() -> dict[str, Any]:
    doc = SchemaGenerator().get_schema(request=None, public=True)
    return orjson.loads(OpenApiJsonRenderer().render(doc))


def test_it_requires_credentials_on_every_route_of_the_schema(db, anonymous: APIClient) -> None:
    doc = _document()
    seen = 0
    for path, item in doc["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in ("get", "post", "put", "patch", "delete"):
            if method not in item or (method.upper(), path) in PUBLIC:
                continue
            response = getattr(anonymous, method)(url, {}, format="json")
            assert response.status_code in (401, 403), (method, path, response.status_code)
            seen += 1
    assert seen >= 30  # the schema really lists the API


@pytest.fixture
def fuzzed_world(alice, acme, bob, charlie, globex) -> str:
    team = services.team_create(actor=None, organization=acme, name="Payments")
    services.membership_set(actor=None, user=charlie, organization=acme, role="developer", team=team)
    services.key_create(actor=None, organization=acme, name="c", user=charlie, team=team)
    services.provider_create(actor=None, name="anthropic", kind="anthropic", credential="sk-test")
    _, secret = services.api_token_issue(actor=alice)
    return secret


@pytest.fixture
def in_process_calls():
    """Keep the test's database connection across WSGI calls, as Django's test client
    does: otherwise each request's end closes it (PostgreSQL) mid-test."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_it_answers_no_500_to_generated_requests(fuzzed_world: str, in_process_calls: None) -> None:
    schema = schemathesis.openapi.from_dict(_document())
    schema.app = get_wsgi_application()
    headers = {"Authorization": f"Token {fuzzed_world}"}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @BOUNDED
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                case.method, case.formatted_path, case.query, case.body, response.text[:800]
            )

        call()
    assert operations >= 30


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
KEY_FIELDS = ["name", "team", "user", "allowed_models", "expires_at"]


@BOUNDED
@given(body=st.dictionaries(st.sampled_from(KEY_FIELDS), JSON, max_size=5))
def test_it_validates_any_key_request_without_crashing(body: dict[str, Any]) -> None:
    from controlplane.api.keys import KeysApi

    data = KeysApi.InputSerializer(data=body)
    if data.is_valid():
        assert isinstance(data.validated_data["name"], str)
    else:
        assert isinstance(data.errors, dict) and data.errors


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800"}',  # a lone surrogate: PostgreSQL cannot store it
        b'{"name": "x\\u0000y"}',  # NUL
        b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # deep nesting
        b'{"name": "k", "expires_at": 1' + b"0" * 400 + b"}",  # a huge number
        b'{"name": "a", "name": "b", "allowed_models": ["x"]',  # truncated
    ],
)
def test_it_answers_400_to_hostile_json(client_for, bob, raw: bytes) -> None:
    response = client_for(bob).generic(
        "POST", "/api/v1/organizations/acme/keys/", raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content


@BOUNDED
@given(name=st.text(min_size=1, max_size=40))
def test_it_stores_any_key_name_it_accepts(client_for, bob, name: str) -> None:
    response = client_for(bob).post("/api/v1/organizations/acme/keys/", {"name": name}, format="json")
    assert response.status_code in (201, 400), response.content
    if response.status_code == 201:
        assert response.json()["name"] == name.strip()
