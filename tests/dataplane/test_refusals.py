"""Every refusal is an Anthropic-shaped error with the right status; nothing 500s or hangs."""

from __future__ import annotations

import gzip
import socket
import time
from datetime import timedelta

import httpx
import orjson
import pytest
from django.utils import timezone

from governance import services

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def post(gateway, secret: str | None, body: bytes | None = None, **headers: str) -> httpx.Response:
    hdrs = {"content-type": "application/json", "anthropic-version": "2023-06-01", **headers}
    if secret is not None:
        hdrs["authorization"] = f"Bearer {secret}"
    return httpx.post(f"{gateway.url}/v1/messages", content=orjson.dumps(BODY) if body is None else body, headers=hdrs, timeout=10)


def assert_error(
    response: httpx.Response, status: int, error_type: str, *, retry: bool | None = None, ours: bool = True
) -> str:
    assert response.status_code == status, response.text
    doc = response.json()
    assert doc["type"] == "error"
    assert doc["error"]["type"] == error_type
    if ours:
        assert doc["request_id"] == response.headers["x-tollgate-request-id"]
    if retry is False:
        assert response.headers["x-should-retry"] == "false"
    return doc["error"]["message"]


def test_it_refuses_a_missing_or_unknown_key_without_retry(gateway, world):
    message = assert_error(post(gateway, None), 401, "authentication_error", retry=False)
    assert "ANTHROPIC_AUTH_TOKEN" in message
    message = assert_error(post(gateway, "tg-deadbeef-nope"), 401, "authentication_error", retry=False)
    assert "tg-deadbeef…" in message


def test_it_accepts_the_key_in_each_header(gateway, world):
    for header in ("x-api-key", "x-tollgate-key"):
        response = httpx.post(
            f"{gateway.url}/v1/messages", content=orjson.dumps(BODY),
            headers={"content-type": "application/json", header: world.secret}, timeout=10,
        )
        assert response.status_code == 200, (header, response.text)


def test_it_refuses_a_disabled_key(gateway, world, publish, ledger):
    services.key_disable(actor=world.alice, key=world.key)
    publish()
    message = assert_error(post(gateway, world.secret), 401, "authentication_error", retry=False)
    assert "disabled" in message and world.key.prefix in message
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 401 and row.cost_usd == 0


def test_it_refuses_an_expired_key(gateway, world, publish):
    expires_at = timezone.now() + timedelta(seconds=5)
    key, secret = world.new_key("short-lived", expires_at=expires_at)
    publish()
    assert post(gateway, secret).status_code == 200
    time.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()) + 0.1)
    assert "expired" in assert_error(post(gateway, secret), 401, "authentication_error", retry=False)


def test_it_refuses_a_model_outside_the_allowlist(gateway, world, publish):
    _, secret = world.new_key("haiku only", allowed_models=["claude-haiku-*"])
    publish()
    message = assert_error(post(gateway, secret), 403, "permission_error", retry=False)
    assert "claude-sonnet-4-6" in message and "claude-haiku-*" in message


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (orjson.dumps({"max_tokens": 5, "messages": []}), 400, "model"),
        (orjson.dumps({"model": "claude-sonnet-4-6", "max_tokens": 5}), 400, "messages"),
        (b"", 400, "not valid JSON"),
    ],
)
def test_it_explains_a_malformed_body(gateway, world, body, status, fragment):
    assert fragment in assert_error(post(gateway, world.secret, body), status, "invalid_request_error", retry=False)


def test_it_refuses_a_wrong_content_type(gateway, world):
    response = post(gateway, world.secret, b"model=x", **{"content-type": "application/x-www-form-urlencoded"})
    assert "application/json" in assert_error(response, 415, "invalid_request_error", retry=False)


def test_it_refuses_a_body_over_the_limit(gateway, world):
    big = orjson.dumps(BODY | {"padding": "x" * (9 * 1024 * 1024)})
    message = assert_error(post(gateway, world.secret, big), 413, "request_too_large", retry=False)
    assert "8 MiB" in message


def test_it_refuses_a_gzip_bomb(gateway, world):
    bomb = gzip.compress(orjson.dumps(BODY | {"padding": "x" * (9 * 1024 * 1024)}))
    assert len(bomb) < 100_000
    response = post(gateway, world.secret, bomb, **{"content-encoding": "gzip"})
    assert "decompressed" in assert_error(response, 413, "request_too_large", retry=False)


def test_it_accepts_gzip_bodies_and_forwards_them_as_sent(gateway, world, anthropic_upstream):
    raw = gzip.compress(orjson.dumps(BODY))
    response = post(gateway, world.secret, raw, **{"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    seen = anthropic_upstream.messages_received()[-1]
    assert seen.headers["Content-Encoding"] == "gzip"
    assert seen.body == BODY


def test_it_refuses_a_corrupt_gzip_body(gateway, world):
    response = post(gateway, world.secret, b"\x1f\x8b\x08\x00garbage-not-gzip", **{"content-encoding": "gzip"})
    assert "gzip" in assert_error(response, 400, "invalid_request_error", retry=False)


def test_it_answers_unknown_routes_and_methods(gateway):
    response = httpx.get(f"{gateway.url}/v1/nothing-here")
    assert "/v1/nothing-here" in assert_error(response, 404, "not_found_error")
    response = httpx.get(f"{gateway.url}/anthropic/v1/messages")
    assert_error(response, 405, "invalid_request_error")


def test_it_answers_the_warm_up_probe_and_health(gateway):
    assert httpx.head(f"{gateway.url}/api/hello").status_code == 200
    assert httpx.head(f"{gateway.url}/anthropic/api/hello").status_code == 200
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/readyz").json()["status"] == "ready"


def test_it_relays_provider_errors_as_they_are_once_retries_are_spent(gateway, world, anthropic_upstream, ledger):
    for _ in range(3):
        anthropic_upstream.fail_next(529, "overloaded_error", "Overloaded")
    response = post(gateway, world.secret)
    assert_error(response, 529, "overloaded_error", ours=False)
    # The provider's own answer, request id included, reaches the client untouched.
    assert response.json()["error"]["message"] == "Overloaded"
    assert response.json()["request_id"] == response.headers["request-id"]
    assert len(anthropic_upstream.messages_received()) == 3
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 529 and row.error_type == "overloaded_error" and row.cost_usd == 0
    assert row.attempts == 3


def test_it_retries_an_overloaded_provider(gateway, world, anthropic_upstream, ledger):
    anthropic_upstream.fail_next(529, "overloaded_error", "Overloaded")
    response = post(gateway, world.secret)
    assert response.status_code == 200
    assert response.headers["x-tollgate-attempts"] == "2"
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 200 and row.attempts == 2 and row.cost_usd > 0


def test_it_hands_a_long_retry_after_to_the_client(gateway, world, anthropic_upstream):
    anthropic_upstream.fail_next(429, "rate_limit_error", "Slow down", **{"retry-after": "45"})
    response = post(gateway, world.secret)
    assert_error(response, 429, "rate_limit_error", ours=False)
    assert response.headers["retry-after"] == "45"
    assert len(anthropic_upstream.messages_received()) == 1


def test_it_says_when_the_provider_is_unreachable(gateway, world, publish, ledger):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    services.provider_update(actor=world.alice, provider=world.provider, base_url=f"http://127.0.0.1:{dead_port}")
    publish()
    message = assert_error(post(gateway, world.secret), 502, "api_error")
    assert "could not reach provider 'anthropic'" in message
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 502


def test_it_ends_a_broken_stream_with_an_error_event(gateway, world, anthropic_upstream, ledger):
    anthropic_upstream.cut_next_stream()
    with httpx.stream(
        "POST", f"{gateway.url}/v1/messages", content=orjson.dumps(BODY | {"stream": True}),
        headers={"x-api-key": world.secret, "content-type": "application/json"}, timeout=10,
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    assert text.startswith("event: message_start")
    assert text.rstrip().endswith('"message":"The provider connection broke mid-stream (ClientPayloadError); retry the request."}}')
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.error_type == "upstream_stream_error"
    assert row.input_tokens > 0  # usage seen before the cut is kept


def test_it_cancels_the_upstream_call_when_the_client_disconnects(gateway, world, anthropic_upstream, ledger):
    anthropic_upstream.event_delay = 0.2
    with httpx.stream(
        "POST", f"{gateway.url}/v1/messages", content=orjson.dumps(BODY | {"stream": True}),
        headers={"x-api-key": world.secret, "content-type": "application/json"}, timeout=10,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: content_block_start"):
                break
    # The client is gone: the gateway must drop the upstream stream, not finish reading it.
    deadline = time.monotonic() + 5
    while anthropic_upstream.streams_cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert anthropic_upstream.streams_cancelled == 1
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.client_disconnected is True and row.status == 499
    assert row.input_tokens > 0


def test_it_does_not_blame_the_client_key_when_the_provider_refuses_ours(gateway, world, publish):
    services.provider_update(actor=world.alice, provider=world.provider, credential="sk-ant-wrong")
    publish()
    message = assert_error(post(gateway, world.secret), 502, "api_error")
    assert "refused Tollgate's credential" in message and "Your key is fine" in message
