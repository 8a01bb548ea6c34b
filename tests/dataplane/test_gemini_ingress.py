"""Gemini API ingress (Gemini CLI's shape): to Claude through translation, to Gemini as sent."""

from __future__ import annotations

import httpx
import orjson

from governance import services

TOOLS = [{"functionDeclarations": [{"name": "Bash", "description": "Run a shell command",
                                    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}]}]


def call(gateway, secret: str, model: str, method: str, body: dict, **params: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/genai/v1beta/models/{model}:{method}", params=params, content=orjson.dumps(body),
        headers={"x-goog-api-key": secret, "content-type": "application/json"}, timeout=30,
    )


def sse_chunks(response: httpx.Response) -> list[dict]:
    return [orjson.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def test_it_serves_gemini_cli_from_claude(gateway, world, publish, ledger, anthropic_upstream):
    services.route_set(actor=world.alice, model_pattern="gemini-*", targets=[{"provider": world.provider, "model": "claude-sonnet-4-6"}])
    publish()
    turn = {"role": "user", "parts": [{"text": "Please [[bash: echo from-gemini-cli]]"}]}
    streamed = call(gateway, world.secret, "gemini-2.5-pro", "streamGenerateContent", {"contents": [turn], "tools": TOOLS}, alt="sse")
    assert streamed.status_code == 200, streamed.text
    parts = [p for c in sse_chunks(streamed) for cand in c.get("candidates", []) for p in cand["content"]["parts"]]
    (fn,) = [p["functionCall"] for p in parts if "functionCall" in p]
    assert fn["name"] == "Bash" and fn["args"]["command"] == "echo from-gemini-cli"
    assert anthropic_upstream.messages_received()[-1].body["model"] == "claude-sonnet-4-6"

    answer = call(gateway, world.secret, "gemini-2.5-pro", "generateContent", {
        "contents": [turn, {"role": "model", "parts": [{"functionCall": fn}]},
                     {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "id": fn.get("id"), "response": {"output": "from-gemini-cli"}}}]}],
        "tools": TOOLS,
    })
    assert answer.status_code == 200, answer.text
    text = "".join(p.get("text", "") for p in answer.json()["candidates"][0]["content"]["parts"])
    assert text.startswith("The tool said:") and "from-gemini-cli" in text
    rows = ledger(2, key_prefix=world.key.prefix)
    assert [r.endpoint for r in rows] == ["generate_content"] * 2
    assert all(r.model_served == "claude-sonnet-4-6" and r.cost_usd > 0 for r in rows)


def test_it_passes_gemini_requests_to_a_gemini_provider(gateway, world, publish, ledger, gemini_upstream):
    services.provider_create(actor=world.alice, name="gemini", kind="gemini", base_url=gemini_upstream.url, credential=gemini_upstream.api_key)
    publish()
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    response = call(gateway, world.secret, "gemini-2.5-flash", "generateContent", body)
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"].startswith("Hello from the fake Gemini API")
    seen = gemini_upstream.received[-1]
    assert seen.body == body and seen.headers["x-goog-api-key"] == gemini_upstream.api_key
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.provider_kind == "gemini" and row.input_tokens > 0 and row.cost_usd > 0


def test_it_answers_gemini_clients_in_googles_error_shape(gateway, world, publish):
    response = call(gateway, "tg-00000000-nope", "gemini-2.5-pro", "generateContent", {"contents": []})
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    # The key may also come as ?key=, as Gemini clients send it.
    by_query = httpx.post(
        f"{gateway.url}/genai/v1beta/models/gemini-2.5-pro:generateContent", params={"key": world.secret},
        content=b"{}", headers={"content-type": "application/json"},
    )
    assert by_query.status_code == 400 and by_query.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_it_counts_tokens_at_the_gemini_provider_and_never_guesses(gateway, world, publish, gemini_upstream, anthropic_upstream):
    body = {"contents": [{"role": "user", "parts": [{"text": "count these words"}]}]}
    # Served by Claude through a route: no count in Google's terms.
    services.route_set(actor=world.alice, model_pattern="gemini-*", targets=[{"provider": world.provider, "model": "claude-sonnet-4-6"}])
    publish()
    refused = call(gateway, world.secret, "gemini-2.5-pro", "countTokens", body)
    assert refused.status_code == 501, refused.text
    assert refused.json()["error"]["status"] == "UNIMPLEMENTED"

    gemini = services.provider_create(actor=world.alice, name="gemini", kind="gemini", base_url=gemini_upstream.url, credential=gemini_upstream.api_key)
    services.route_set(actor=world.alice, model_pattern="gemini-*", targets=[{"provider": gemini, "model": "gemini-2.5-pro"}])
    publish()
    counted = call(gateway, world.secret, "gemini-2.5-pro", "countTokens", body)
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"totalTokens": max(1, len(orjson.dumps(body)) // 4)}
    assert gemini_upstream.received[-1].path == "/v1beta/models/gemini-2.5-pro:countTokens"


def test_it_cuts_a_stream_past_the_budget_with_a_google_error(gateway, world, publish, ledger, anthropic_upstream):
    from decimal import Decimal

    from tests.dataplane.test_budgets import SONNET

    services.route_set(actor=world.alice, model_pattern="gemini-*", targets=[{"provider": world.provider, "model": "claude-sonnet-4-6"}])
    services.budget_set(actor=world.alice, level="key", organization=world.acme, key=world.key,
                        amount_usd=(2048 + 3072) * SONNET.output + Decimal("0.0005"), period="monthly")
    publish()
    turn = {"role": "user", "parts": [{"text": "[[words: 30000]]"}]}
    streamed = call(gateway, world.secret, "gemini-2.5-pro", "streamGenerateContent", {"contents": [turn]}, alt="sse")
    assert streamed.status_code == 200
    chunks = sse_chunks(streamed)
    *answer, last = chunks
    assert "word1 " in "".join(p.get("text", "") for c in answer for cand in c.get("candidates", []) for p in cand["content"]["parts"])
    assert last["error"]["code"] == 402 and "cannot cover more of this answer" in last["error"]["message"], last
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 402 and row.error_type == "budget_exhausted" and row.cost_usd > 0


def test_it_ends_a_broken_stream_in_googles_shape(gateway, world, publish, ledger, anthropic_upstream):
    """The provider's connection breaks mid-answer: a Gemini caller gets Google's
    error JSON as the last chunk, not an Anthropic error event."""
    services.route_set(actor=world.alice, model_pattern="gemini-*", targets=[{"provider": world.provider, "model": "claude-sonnet-4-6"}])
    publish()
    anthropic_upstream.cut_next_stream()
    turn = {"role": "user", "parts": [{"text": "hi"}]}
    streamed = call(gateway, world.secret, "gemini-2.5-pro", "streamGenerateContent", {"contents": [turn]}, alt="sse")
    assert streamed.status_code == 200
    assert "event: error" not in streamed.text
    last = sse_chunks(streamed)[-1]
    assert last["error"]["code"] == 502 and "broke mid-stream" in last["error"]["message"], last
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.error_type == "upstream_stream_error"
