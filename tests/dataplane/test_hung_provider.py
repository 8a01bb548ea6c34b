"""A provider that hangs, thinks silently or is swamped: bounded waits, no
second copy of a request it may be running, keep-alives, clear messages."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.conftest import GatewayProcess

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def impatient(state_dir):
    proc = GatewayProcess(
        state_dir,
        TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT="1",
        TOLLGATE_UPSTREAM_RESPONSE_TIMEOUT="1.5",
        TOLLGATE_UPSTREAM_IDLE_TIMEOUT="2",
        TOLLGATE_STREAM_PING_SECONDS="0.3",
        TOLLGATE_UPSTREAM_MAX_CONCURRENCY="2",
    )
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log(), proc.log()


@pytest.fixture
def on_impatient(world, publish, impatient):
    publish(impatient)
    return impatient


def post(gw, secret: str, body: dict | None = None, timeout: float = 20) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/messages", json=body or BODY, headers={"x-api-key": secret}, timeout=timeout)


@pytest.mark.parametrize("stream", [True, False])
def test_it_gives_up_on_a_hung_provider_without_sending_it_twice(on_impatient, world, anthropic_upstream, ledger, stream):
    anthropic_upstream.hang_before_answer = 3
    response = post(on_impatient, world.secret, {**BODY, "stream": stream})
    assert response.status_code == 504, response.text
    message = response.json()["error"]["message"]
    assert "did not start answering within" in message and "did not send the request again" in message
    assert len(anthropic_upstream.messages_received()) == 1
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.status == 504 and row.cost_usd == 0


def test_it_pings_the_client_while_the_model_thinks_in_silence(on_impatient, world, anthropic_upstream, ledger):
    quiet = post(on_impatient, world.secret, {**BODY, "stream": True})
    pings_from_provider = quiet.text.count("event: ping")
    anthropic_upstream.gap_mid_stream = 1.5  # under the idle limit, many ping intervals long
    response = post(on_impatient, world.secret, {**BODY, "stream": True})
    assert response.status_code == 200
    assert response.text.count("event: ping") >= pings_from_provider + 3
    assert "event: message_stop" in response.text and "event: error" not in response.text
    # Every event still whole: each block is one "event:" line and one "data:" line.
    for block in response.text.strip().split("\n\n"):
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
    rows = ledger(2, key_prefix=world.key.prefix)
    assert all(r.status == 200 and r.output_tokens > 0 for r in rows)


def test_it_pings_a_gemini_caller_between_whole_events(on_impatient, world, publish, anthropic_upstream):
    """Google's SSE ends events with CRLF CRLF: the keep-alive must see those boundaries too."""
    from governance import services

    services.route_set(actor=world.alice, model_pattern="gemini-*", targets=[{"provider": world.provider, "model": "claude-sonnet-4-5"}])
    publish(on_impatient)
    anthropic_upstream.gap_mid_stream = 1.5
    response = httpx.post(
        f"{on_impatient.url}/genai/v1beta/models/gemini-2.5-pro:streamGenerateContent", params={"alt": "sse"},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, headers={"x-goog-api-key": world.secret}, timeout=20,
    )
    assert response.status_code == 200
    assert response.text.count(": ping") >= 3, response.text[:500]
    for block in response.text.strip().split("\r\n\r\n"):
        assert block == ": ping" or block.startswith("data: {"), block


def test_it_ends_a_stream_gone_silent_past_the_idle_limit(on_impatient, world, anthropic_upstream, ledger):
    anthropic_upstream.gap_mid_stream = 4
    response = post(on_impatient, world.secret, {**BODY, "stream": True})
    assert response.status_code == 200
    last = response.text.strip().split("\n\n")[-1]
    assert last.startswith("event: error") and "sent nothing for 2 s" in last
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert row.error_type == "upstream_stream_error"


def test_it_ends_a_broken_openai_stream_in_openais_shape(on_impatient, world, anthropic_upstream):
    anthropic_upstream.gap_mid_stream = 4
    response = httpx.post(
        f"{on_impatient.url}/v1/chat/completions", timeout=20, headers={"authorization": f"Bearer {world.secret}"},
        json={"model": "anthropic/claude-sonnet-4-5", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    assert "event: error" not in response.text
    last = response.text.strip().split("\n\n")[-1]
    assert last.startswith('data: {"error":') and "sent nothing for 2 s" in last


def test_it_caps_requests_in_flight_per_provider(on_impatient, world, anthropic_upstream):
    anthropic_upstream.event_delay = 0.3
    results: list[httpx.Response] = []

    def one() -> None:
        results.append(post(on_impatient, world.secret, {**BODY, "stream": True}))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 529, 529], statuses
    refused = next(r for r in results if r.status_code == 529)
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert "requests in flight" in refused.json()["error"]["message"]
    assert len(anthropic_upstream.messages_received()) == 2
