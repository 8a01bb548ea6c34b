"""Routes, translation to OpenAI-shaped providers, retries, failover, stickiness."""

from __future__ import annotations

import socket
from collections import Counter

import anthropic
import httpx
import orjson
import pytest

from governance import services

BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def sdk(gateway, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url + "/anthropic", api_key=secret, max_retries=0)


def post(gateway, secret: str, body: dict | None = None, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/messages", content=orjson.dumps(body or BODY),
        headers={"x-api-key": secret, "content-type": "application/json", **headers}, timeout=30,
    )


def openai_provider(world, fake, name: str = "openai-compat", kind: str = "openai_compatible"):
    return services.provider_create(actor=world.alice, name=name, kind=kind, base_url=fake.url + "/v1", credential=fake.api_key)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_it_serves_claude_code_tiers_from_an_openai_compatible_model(gateway, world, publish, openai_upstream, ledger):
    provider = openai_provider(world, openai_upstream)
    services.route_set(actor=world.alice, model_pattern="claude-opus-*", targets=[{"provider": provider, "model": "gpt-5"}])
    publish()
    client = sdk(gateway, world.secret)
    reply = client.messages.create(model="claude-opus-5-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "Hello from the fake OpenAI API. How can I help?"
    assert reply.stop_reason == "end_turn"
    seen = openai_upstream.received[-1]
    assert seen.body["model"] == "gpt-5" and seen.headers["Authorization"] == f"Bearer {openai_upstream.api_key}"

    with client.messages.stream(
        model="claude-opus-5-5", max_tokens=100, tools=[BASH_TOOL],
        messages=[{"role": "user", "content": "[[bash: echo routed]]"}],
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "Bash" and call.input["command"] == "echo routed"
    second = client.messages.create(
        model="claude-opus-5-5", max_tokens=100, tools=[BASH_TOOL],
        messages=[
            {"role": "user", "content": "[[bash: echo routed]]"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "routed"}]},
        ],
    )
    assert second.content[0].text == "The tool said: routed"
    rows = ledger(3, key_prefix=world.key.prefix)
    assert [r.model_served for r in rows] == ["gpt-5"] * 3
    assert all(r.provider_kind == "openai_compatible" and r.cost_usd > 0 and r.output_tokens > 0 for r in rows)
    assert all(r.model_requested == "claude-opus-5-5" for r in rows)


def test_it_fails_over_to_the_next_tier(gateway, world, publish, anthropic_upstream, openai_upstream, ledger):
    backup = openai_provider(world, openai_upstream)
    services.route_set(
        actor=world.alice, model_pattern="claude-sonnet-*",
        targets=[{"provider": world.provider, "tier": 0}, {"provider": backup, "model": "gpt-5", "tier": 1}],
    )
    publish()
    for status, error_type in ((429, "rate_limit_error"), (529, "overloaded_error"), (500, "api_error")):
        anthropic_upstream.fail_next(status, error_type, "try elsewhere", **{"retry-after": "1"})
        response = post(gateway, world.secret)
        assert response.status_code == 200, (status, response.text)
        assert response.json()["content"][0]["text"].startswith("Hello from the fake OpenAI API")
    rows = ledger(3, key_prefix=world.key.prefix)
    assert [(r.attempts, r.fallback, r.provider_id, r.model_served) for r in rows] == [(2, True, backup.id, "gpt-5")] * 3


def test_it_fails_over_when_the_provider_refuses_connections(gateway, world, publish, openai_upstream, ledger):
    dead = services.provider_create(actor=world.alice, name="dead", kind="anthropic", base_url=dead_url(), credential="x")
    backup = openai_provider(world, openai_upstream)
    services.route_set(
        actor=world.alice, model_pattern="claude-sonnet-*",
        targets=[{"provider": dead, "tier": 0}, {"provider": backup, "model": "gpt-5", "tier": 1}],
    )
    publish()
    response = post(gateway, world.secret)
    assert response.status_code == 200, response.text
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert (row.attempts, row.fallback, row.provider_id) == (2, True, backup.id)


def test_it_cools_down_a_failing_deployment(gateway, world, publish, openai_upstream, ledger):
    dead = services.provider_create(actor=world.alice, name="dead", kind="anthropic", base_url=dead_url(), credential="x")
    backup = openai_provider(world, openai_upstream)
    services.route_set(
        actor=world.alice, model_pattern="claude-sonnet-*",
        targets=[{"provider": dead, "tier": 0}, {"provider": backup, "model": "gpt-5", "tier": 1}],
    )
    publish()
    for _ in range(5):
        assert post(gateway, world.secret).status_code == 200
    rows = ledger(5, key_prefix=world.key.prefix)
    # Three failures cool the dead deployment down: later requests go straight to the backup.
    assert [r.attempts for r in rows] == [2, 2, 2, 1, 1]


def test_it_uses_the_request_fallback_header(gateway, world, publish, anthropic_upstream, openai_upstream, ledger):
    backup = openai_provider(world, openai_upstream)
    services.route_set(actor=world.alice, model_pattern="gpt-*", targets=[{"provider": backup}])
    publish()
    for _ in range(3):
        anthropic_upstream.fail_next(503, "api_error", "down")
    response = post(gateway, world.secret, **{"x-tollgate-fallbacks": "gpt-5"})
    assert response.status_code == 200, response.text
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert (row.attempts, row.fallback, row.model_served) == (4, True, "gpt-5")


def test_it_spreads_by_weight_and_keeps_a_session_on_one_deployment(gateway, world, publish, anthropic_upstream, openai_upstream, ledger):
    backup = openai_provider(world, openai_upstream)
    services.route_set(
        actor=world.alice, model_pattern="claude-sonnet-*",
        targets=[{"provider": world.provider, "weight": 3}, {"provider": backup, "model": "gpt-5", "weight": 1}],
    )
    publish()
    for _ in range(80):
        assert post(gateway, world.secret).status_code == 200
    spread = Counter(r.provider_id for r in ledger(80, key_prefix=world.key.prefix))
    assert 40 <= spread[world.provider.id] <= 75 and spread[backup.id] >= 5, spread
    for _ in range(15):
        assert post(gateway, world.secret, **{"x-claude-code-session-id": "sess-sticky"}).status_code == 200
    sticky = {r.provider_id for r in ledger(95, key_prefix=world.key.prefix) if r.session_id == "sess-sticky"}
    assert len(sticky) == 1


def test_it_reaches_azure_deployments(gateway, world, publish, openai_upstream, ledger):
    azure = services.provider_create(
        actor=world.alice, name="azure", kind="azure_openai", base_url=openai_upstream.url,
        credential=openai_upstream.api_key, settings={"api_version": "2024-10-21"},
    )
    services.route_set(actor=world.alice, model_pattern="claude-*", targets=[{"provider": azure, "model": "gpt-5"}], key=world.key, organization=world.acme)
    publish()
    response = post(gateway, world.secret)
    assert response.status_code == 200, response.text
    seen = openai_upstream.received[-1]
    assert seen.path == "/openai/deployments/gpt-5/chat/completions" and seen.query == "api-version=2024-10-21"
    assert seen.headers["api-key"] == openai_upstream.api_key


def test_it_says_count_tokens_is_not_supported_rather_than_inventing_a_number(gateway, world, publish, openai_upstream):
    backup = openai_provider(world, openai_upstream)
    services.route_set(actor=world.alice, model_pattern="claude-*", targets=[{"provider": backup, "model": "gpt-5"}])
    publish()
    with pytest.raises(anthropic.APIStatusError) as refused:
        sdk(gateway, world.secret).messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hello there"}])
    assert refused.value.status_code == 501
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert refused.value.body["error"]["type"] == "not_supported_error"
    assert "does not guess" in refused.value.body["error"]["message"]
    assert openai_upstream.received == []


def test_it_counts_tokens_with_geminis_own_count(gateway, world, publish, gemini_upstream):
    gemini = services.provider_create(actor=world.alice, name="gemini", kind="gemini", base_url=gemini_upstream.url, credential=gemini_upstream.api_key)
    services.route_set(actor=world.alice, model_pattern="claude-*", targets=[{"provider": gemini, "model": "gemini-2.5-pro"}])
    publish()
    result = sdk(gateway, world.secret).messages.count_tokens(
        model="claude-sonnet-4-6", system="Be brief.", messages=[{"role": "user", "content": "hello there"}]
    )
    seen = gemini_upstream.received[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-pro:countTokens"
    assert seen.body["generateContentRequest"]["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert result.input_tokens == max(1, len(orjson.dumps(seen.body["generateContentRequest"])) // 4)


def test_it_spreads_a_provider_over_its_credentials_and_fails_over_between_them(gateway, world, publish, anthropic_upstream, ledger):
    anthropic_upstream.extra_keys.add("sk-ant-fake-second")
    services.provider_credential_add(actor=world.alice, provider=world.provider, name="second", credential="sk-ant-fake-second")
    publish()
    for _ in range(30):
        assert post(gateway, world.secret).status_code == 200
    used = Counter(r.headers["x-api-key"] for r in anthropic_upstream.messages_received())
    assert set(used) == {anthropic_upstream.api_key, "sk-ant-fake-second"} and min(used.values()) >= 5, used

    anthropic_upstream.reset()
    anthropic_upstream.extra_keys.add("sk-ant-fake-second")
    anthropic_upstream.fail_next(429, "rate_limit_error", "this key is throttled")
    response = post(gateway, world.secret)
    assert response.status_code == 200
    first, second = anthropic_upstream.messages_received()
    # The throttled credential is left for the other one at once, not retried.
    assert first.headers["x-api-key"] != second.headers["x-api-key"]
