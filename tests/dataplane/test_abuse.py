"""Hostile callers: what a key holder sends must never reach a provider path,
header or field that Tollgate did not mean to send with its own credential."""

from __future__ import annotations

import httpx
import orjson
import pytest

from governance import services

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
# Paths a provider credential must never be used for.
FORBIDDEN = ("/v1/messages/batches", "/v1/files", "/v1/organizations", "/v1beta/cachedContents", "/openai/files")


def raw_get(gateway, path: str, secret: str) -> httpx.Response:
    """A GET whose path goes out exactly as written (no client-side normalisation)."""
    with httpx.Client(timeout=10) as client:
        request = client.build_request("GET", gateway.url, headers={"x-api-key": secret, "anthropic-version": "2023-06-01"})
        request.url = request.url.copy_with(raw_path=path.encode())
        return client.send(request)


def reached(*fakes) -> list[str]:
    return [r.path for fake in fakes for r in fake.received]


def assert_no_forbidden(*fakes) -> None:
    paths = reached(*fakes)
    assert not [p for p in paths if p.startswith(FORBIDDEN)], paths


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/..%2F..%2Fv1%2Fmessages%2Fbatches",
        "/anthropic/v1/models/..%2F..%2Fv1%2Ffiles",
        "/v1/models/..%2F..%2Fv1%2Forganizations%2Fme",
        # Ends in an allowed model's name, to slip past the allowlist.
        "/v1/models/..%2F..%2Fv1%2Fmessages%2Fbatches%2Fclaude-sonnet-4-5",
        "/v1/models/%2E%2E%2F%2E%2E%2Fv1%2Ffiles",
    ],
)
def test_it_never_relays_a_model_path_outside_models(gateway, world, publish, anthropic_upstream, path):
    key, secret = world.new_key("narrow", allowed_models=["claude-sonnet-4-5"])
    publish()
    response = raw_get(gateway, path, secret)
    assert response.status_code in (400, 404), response.text
    assert response.json()["type"] == "error"
    assert_no_forbidden(anthropic_upstream)


def test_it_still_relays_a_real_model_lookup(gateway, world, anthropic_upstream):
    response = raw_get(gateway, "/v1/models/claude-sonnet-4-5", world.secret)
    assert response.status_code == 200, response.text
    assert reached(anthropic_upstream) == ["/v1/models/claude-sonnet-4-5"]


def test_it_refuses_a_gemini_model_that_walks_the_path(gateway, world, publish, gemini_upstream):
    services.provider_create(actor=world.alice, name="gemini", kind="gemini", base_url=gemini_upstream.url, credential=gemini_upstream.api_key)
    publish()
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    for model in ("..%2F..%2Fv1beta%2FcachedContents%2Fx", "gemini-2.5-pro%3FcachedContent%3Dx", "..%2F..%2Fv1beta%2FcachedContents"):
        with httpx.Client(timeout=10) as client:
            request = client.build_request(
                "POST", gateway.url, content=body, headers={"x-goog-api-key": world.secret, "content-type": "application/json"}
            )
            request.url = request.url.copy_with(raw_path=f"/genai/v1beta/models/{model}:generateContent".encode())
            response = client.send(request)
        assert response.status_code in (400, 404), response.text
        assert "error" in response.json() and "code" in response.json()["error"]
    assert_no_forbidden(gemini_upstream)


@pytest.mark.parametrize("model", ["gpt-x/../../../../openai/files?z=", "gpt-x/../../files", "gpt-x#frag", "gpt x", "gpt-x%2F..%2Ffiles"])
def test_it_refuses_a_body_model_that_would_walk_the_azure_path(gateway, world, publish, openai_upstream, model):
    services.provider_create(
        actor=world.alice, name="azure", kind="azure_openai", base_url=openai_upstream.url,
        credential=openai_upstream.api_key, settings={"api_version": "2024-10-21"},
    )
    publish()
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": f"azure/{model}", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {world.secret}"}, timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert_no_forbidden(openai_upstream)
    assert openai_upstream.received == []


@pytest.mark.parametrize("model", ["claude-sonnet-4-5\u0000x", "claude-sonnet-4-5\n", "\ud800", "x" * 300, ""])
def test_it_refuses_a_hostile_model_name_on_every_shape(gateway, world, anthropic_upstream, model):
    auth = {"x-api-key": world.secret, "authorization": f"Bearer {world.secret}", "content-type": "application/json"}
    anthropic = httpx.post(f"{gateway.url}/v1/messages", content=orjson.dumps({**BODY, "model": model}) if model != "\ud800" else
                           b'{"model": "\\ud800", "max_tokens": 5, "messages": []}', headers=auth, timeout=10)
    assert anthropic.status_code == 400, anthropic.text
    assert anthropic.json()["error"]["type"] == "invalid_request_error"
    chat = httpx.post(f"{gateway.url}/v1/chat/completions", content=orjson.dumps(
        {"model": model, "messages": [{"role": "user", "content": "hi"}]}) if model != "\ud800" else b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}',
        headers=auth, timeout=10)
    assert chat.status_code == 400, chat.text
    assert "error" in chat.json() and "message" in chat.json()["error"]
    assert anthropic_upstream.received == []


def test_it_refuses_a_hostile_fallback_header(gateway, world, anthropic_upstream):
    response = httpx.post(
        f"{gateway.url}/v1/messages", json=BODY, timeout=10,
        headers={"x-api-key": world.secret, "x-tollgate-fallbacks": "claude-haiku-4-5, ../../v1/files"},
    )
    assert response.status_code == 400, response.text
    assert "x-tollgate-fallbacks" in response.json()["error"]["message"]
    assert anthropic_upstream.received == []


def test_it_forwards_only_what_anthropic_clients_use(gateway, world, anthropic_upstream):
    sent = {
        "x-api-key": world.secret,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14",
        "x-stainless-os": "Linux",
        "x-app": "cli",
        "user-agent": "claude-cli/2.1.330 (external, cli)",
        "x-claude-code-session-id": "5b1c0f4e",
        "x-forwarded-for": "10.1.2.3",
        "x-forwarded-host": "evil.example",
        "forwarded": "for=10.1.2.3",
        "x-real-ip": "10.1.2.3",
        "via": "1.1 corp-proxy",
        "cookie": "session=abc",
        "x-debug": "1",
        "x-envoy-force-trace": "true",
        "proxy-authorization": "Basic eA==",
    }
    response = httpx.post(f"{gateway.url}/v1/messages?beta=true&api_key=x&evil=1", json=BODY, headers=sent, timeout=10)
    assert response.status_code == 200, response.text
    (seen,) = anthropic_upstream.messages_received()
    got = {k.lower(): v for k, v in seen.headers.items()}
    for kept in ("anthropic-version", "anthropic-beta", "x-stainless-os", "x-app", "user-agent", "x-claude-code-session-id"):
        assert got[kept] == sent[kept], kept
    for dropped in ("x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip", "via", "cookie", "x-debug",
                    "x-envoy-force-trace", "proxy-authorization", "authorization"):
        assert dropped not in got, dropped
    assert got["x-api-key"] == anthropic_upstream.api_key
    assert seen.query == "beta=true"
    assert seen.raw == orjson.dumps(BODY)


def test_it_keeps_claude_codes_device_id_from_third_parties(gateway, world, publish, openai_upstream):
    compat = services.provider_create(
        actor=world.alice, name="compat", kind="openai_compatible", base_url=openai_upstream.url + "/v1", credential=openai_upstream.api_key,
    )
    services.route_set(actor=world.alice, model_pattern="claude-*", targets=[{"provider": compat, "model": "gpt-5"}])
    publish()
    body = {**BODY, "metadata": {"user_id": "user_4f1c_account__session_9e2b"}}
    response = httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": world.secret}, timeout=10)
    assert response.status_code == 200, response.text
    assert "user" not in openai_upstream.received[-1].body

    services.provider_update(actor=world.alice, provider=compat, settings={"send_user_id": True})
    publish()
    response = httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": world.secret}, timeout=10)
    assert response.status_code == 200, response.text
    assert openai_upstream.received[-1].body["user"] == "user_4f1c_account__session_9e2b"


TWO_MODELS = {
    "dearer first": b'{"model": "claude-opus-4-1", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "model": "claude-sonnet-4-5"}',
    "model later, twice": b'{"max_tokens": 5, "model": "claude-opus-4-1", "messages": [{"role": "user", "content": "hi"}], "model": "claude-sonnet-4-5"}',
    "escaped twin": b'{"max_tokens": 5, "model": "\\u0063laude-opus-4-1", "messages": [], "model": "claude-sonnet-4-5"}',
}


@pytest.mark.parametrize("name", TWO_MODELS)
def test_it_refuses_a_body_that_names_two_models(gateway, world, publish, anthropic_upstream, name):
    """A provider that keeps the first key would serve a model the allowlist never saw."""
    key, secret = world.new_key("sonnet only", allowed_models=["claude-sonnet-4-5"])
    publish()
    body = TWO_MODELS[name]
    anthropic = httpx.post(f"{gateway.url}/v1/messages", content=body, timeout=10,
                           headers={"x-api-key": secret, "content-type": "application/json"})
    assert anthropic.status_code == 400, anthropic.text
    assert "more than once" in anthropic.json()["error"]["message"]
    chat = httpx.post(f"{gateway.url}/v1/chat/completions", content=body.replace(b'"max_tokens": 5, ', b""), timeout=10,
                      headers={"authorization": f"Bearer {secret}", "content-type": "application/json"})
    assert chat.status_code == 400, chat.text
    assert "more than once" in chat.json()["error"]["message"]
    assert anthropic_upstream.received == []


def test_it_serves_a_body_whose_tools_have_a_model_field(gateway, world, anthropic_upstream):
    body = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "model": "claude-sonnet-4-5",
            "tools": [{"name": "pick", "input_schema": {"type": "object", "properties": {"model": {"type": "string"}}}}]}
    response = httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": world.secret}, timeout=10)
    assert response.status_code == 200, response.text
    (seen,) = anthropic_upstream.messages_received()
    assert seen.raw == orjson.dumps(body)


HOSTILE_BODIES = {
    "deep nesting": b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "huge max_tokens": b'{"model": "claude-sonnet-4-5", "max_tokens": 1e400, "messages": [{"role": "user", "content": "hi"}]}',
    "huge integer": b'{"model": "claude-sonnet-4-5", "max_tokens": 123456789012345678901234567890, "messages": [{"role": "user", "content": "hi"}]}',
    "negative max_tokens": b'{"model": "claude-sonnet-4-5", "max_tokens": -5, "messages": [{"role": "user", "content": "hi"}]}',
    "lone surrogate in content": b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "\\udc00"}]}',
    "invalid utf-8": b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "\xff\xfe"}]}',
    "not an object": b'[{"model": "claude-sonnet-4-5"}]',
    "model not a string": b'{"model": {"$ne": null}, "max_tokens": 5, "messages": []}',
    "messages not a list": b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": "hi"}',
    "truncated": b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "messa',
    "empty": b"",
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_it_answers_a_hostile_body_with_an_anthropic_error_not_a_crash(gateway, world, name):
    response = httpx.post(
        f"{gateway.url}/v1/messages", content=HOSTILE_BODIES[name], timeout=10,
        headers={"x-api-key": world.secret, "content-type": "application/json"},
    )
    assert response.status_code < 500 or response.status_code == 502, (name, response.status_code, response.text)
    if response.status_code >= 400:
        doc = response.json()
        assert doc["type"] == "error" and doc["error"]["message"], doc
    assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200
    assert "Traceback" not in gateway.log()


@pytest.mark.parametrize("headers", [{"x-big": "a" * 70_000}, {f"x-h{i}": "a" for i in range(200)}])
def test_it_refuses_oversized_headers(gateway, world, headers):
    response = httpx.post(f"{gateway.url}/v1/messages", json=BODY, headers={"x-api-key": world.secret, **headers}, timeout=10)
    assert response.status_code == 431, response.text
    assert response.json()["error"]["type"] == "request_too_large"


@pytest.fixture(scope="module")
def hasty(state_dir):
    from tests.conftest import GatewayProcess

    proc = GatewayProcess(state_dir, TOLLGATE_BODY_READ_TIMEOUT="1")
    yield proc
    proc.stop()


def test_it_drops_a_client_that_trickles_its_body(hasty, world, publish, anthropic_upstream):
    import socket
    import time

    publish(hasty)
    with socket.create_connection(("127.0.0.1", hasty.port), timeout=10) as sock:
        head = (f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {world.secret}\r\n"
                "content-type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()
        sock.sendall(head + b'{"model"')
        started = time.monotonic()
        for _ in range(5):
            time.sleep(0.4)
            try:
                sock.sendall(b" ")
            except OSError:
                break
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 1 s" in answer
    assert time.monotonic() - started < 5
    assert anthropic_upstream.received == []
