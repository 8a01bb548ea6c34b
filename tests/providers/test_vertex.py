"""The Vertex AI provider against a fake Vertex and a fake Google token endpoint.

Calls are built with the module, sent with aiohttp as the relay would, and the
answers fed through the module's adapter. No database.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dataplane.errors import GatewayError
from dataplane.providers.base import AnthropicRequest, ProviderConfig, ProviderModule, Target
from dataplane.providers.gcp_auth import TokenCache
from dataplane.providers.vertex import VERTEX, VertexProvider, google_error
from tests.fakes.vertex import FakeVertex, service_account_info

MODEL = "claude-sonnet-4-5@20250929"
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {"type": "object"},
}


@pytest.fixture(scope="module")
def fake() -> Any:
    server = FakeVertex().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeVertex) -> None:
    fake.reset()


def provider_for(
    fake: FakeVertex,
    *,
    id: int = 1,
    credential: str | None = None,
    base_url: str | None = None,
    **settings: Any,
) -> ProviderConfig:
    settings = {"location": "us-east5", "project_id": fake.project_id} | settings
    return ProviderConfig(
        id=id,
        name="vertex-eu",
        kind="vertex",
        base_url=fake.url if base_url is None else base_url,
        credential=credential or fake.service_account_json(),
        settings=settings,
    )


def anthropic_request(
    doc: dict[str, Any], *, endpoint: str = "messages", betas: str | None = None
) -> AnthropicRequest:
    headers = [(b"content-type", b"application/json"), (b"x-api-key", b"tg-client-key")]
    if betas:
        headers.append((b"anthropic-beta", betas.encode()))
    raw = orjson.dumps(doc)
    return AnthropicRequest(endpoint, doc, raw, None, headers, b"", bool(doc.get("stream")))


def messages(text: str = "hello", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    doc = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
    }
    if stream:
        doc["stream"] = True
    return doc | extra


async def relay(
    module: VertexProvider, target: Target, request: AnthropicRequest
) -> tuple[Any, int, bytes]:
    """Build, send and adapt one call the way the data plane's relay does."""
    out = await module.build(target, request)
    async with (
        aiohttp.ClientSession() as session,
        session.request(out.method, out.url, headers=out.headers, data=out.body) as resp,
    ):
        adapter = module.adapter(target, request, resp.status, resp.headers.get("content-type", ""))
        if adapter.content_type == "text/event-stream":
            body = b""
            async for chunk in resp.content.iter_any():
                body += adapter.feed(chunk)
            body += adapter.close()
        else:
            body = adapter.convert(resp.status, await resp.read())
        return adapter, resp.status, body


def sse_events(body: bytes) -> list[dict[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        if block.strip():
            name, data = block.split("\n", 1)
            payload = orjson.loads(data.removeprefix("data: "))
            assert name == f"event: {payload['type']}"
            events.append(payload)
    return events


# --- building the call ------------------------------------------------------------


def test_it_offers_a_module_level_instance() -> None:
    module: ProviderModule = VERTEX
    assert isinstance(module, VertexProvider)


def test_it_builds_a_streaming_call(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), MODEL)
    doc = messages(stream=True, tools=[BASH_TOOL], system="be brief")
    out = asyncio.run(VertexProvider().build(target, anthropic_request(doc)))

    assert out.method == "POST"
    assert (
        out.url
        == f"{fake.url}/v1/projects/tollgate-test/locations/us-east5/publishers/anthropic/models/{MODEL}:streamRawPredict"
    )
    assert out.headers["authorization"].startswith("Bearer ya29.fake-")
    assert out.headers["content-type"] == "application/json"
    assert "x-api-key" not in out.headers and "anthropic-beta" not in out.headers
    body = orjson.loads(out.body or b"")
    assert "model" not in body
    assert body == {k: v for k, v in doc.items() if k != "model"} | {
        "anthropic_version": "vertex-2023-10-16"
    }


def test_it_builds_a_non_streaming_call(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), MODEL)
    out = asyncio.run(VertexProvider().build(target, anthropic_request(messages())))

    assert out.url.endswith(f"/models/{MODEL}:rawPredict")
    body = orjson.loads(out.body or b"")
    assert body["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in body and "stream" not in body


def test_it_builds_count_tokens_with_the_model_in_the_body(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), MODEL)
    doc = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    out = asyncio.run(
        VertexProvider().build(target, anthropic_request(doc, endpoint="count_tokens"))
    )

    assert (
        out.url
        == f"{fake.url}/v1/projects/tollgate-test/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"
    )
    body = orjson.loads(out.body or b"")
    assert body["model"] == MODEL
    assert body["anthropic_version"] == "vertex-2023-10-16"


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("global", "https://aiplatform.googleapis.com"),
        ("us-east5", "https://us-east5-aiplatform.googleapis.com"),
        ("europe-west1", "https://europe-west1-aiplatform.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
    ],
)
def test_it_uses_google_hosts_without_a_base_url(
    fake: FakeVertex, location: str, host: str
) -> None:
    target = Target(provider_for(fake, base_url="", location=location), MODEL)
    out = asyncio.run(VertexProvider().build(target, anthropic_request(messages())))

    assert (
        out.url
        == f"{host}/v1/projects/tollgate-test/locations/{location}/publishers/anthropic/models/{MODEL}:rawPredict"
    )


def test_it_defaults_to_the_global_location_and_the_keys_project(fake: FakeVertex) -> None:
    config = provider_for(fake, base_url="")
    config = ProviderConfig(config.id, config.name, config.kind, "", config.credential, settings={})
    out = asyncio.run(VertexProvider().build(Target(config, MODEL), anthropic_request(messages())))

    assert out.url.startswith(
        "https://aiplatform.googleapis.com/v1/projects/tollgate-test/locations/global/"
    )


def test_it_passes_betas_through_an_optional_allowlist(fake: FakeVertex) -> None:
    module = VertexProvider()
    betas = "context-1m-2025-08-07, interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"

    async def build(**settings: Any) -> dict[str, str]:
        target = Target(provider_for(fake, **settings), MODEL)
        return (await module.build(target, anthropic_request(messages(), betas=betas))).headers

    async def scenario() -> None:
        everything = await build()
        assert (
            everything["anthropic-beta"]
            == "context-1m-2025-08-07,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
        )
        some = await build(
            beta_allowlist=["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]
        )
        assert some["anthropic-beta"] == "context-1m-2025-08-07,interleaved-thinking-2025-05-14"
        none = await build(beta_allowlist=[])
        assert "anthropic-beta" not in none

    asyncio.run(scenario())


def test_it_refuses_models_that_are_neither_claude_nor_gemini(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), "llama-4-maverick")
    with pytest.raises(GatewayError) as info:
        asyncio.run(VertexProvider().build(target, anthropic_request(messages())))

    assert info.value.status == 400
    assert info.value.retry is False
    assert "llama-4-maverick" in info.value.message and "neither a Claude nor a Gemini model" in info.value.message
    assert fake.token_requests == 0


def test_it_builds_gemini_calls_on_google_publisher_urls(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), "gemini-2.5-pro")
    doc = {"model": "claude-x", "max_tokens": 64, "stream": True, "system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]}
    outbound = asyncio.run(VertexProvider().build(target, anthropic_request(doc)))
    assert outbound.url == (
        f"{fake.url}/v1/projects/{fake.project_id}/locations/us-east5/publishers/google/models/"
        "gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    body = orjson.loads(outbound.body)
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert outbound.headers["authorization"].startswith("Bearer ")


def test_it_refuses_a_credential_that_is_not_a_service_account_key(fake: FakeVertex) -> None:
    target = Target(provider_for(fake, credential="sk-ant-not-a-google-key"), MODEL)
    with pytest.raises(GatewayError) as info:
        asyncio.run(VertexProvider().build(target, anthropic_request(messages())))

    assert info.value.status == 502
    assert "service-account JSON key" in info.value.message


# --- tokens -----------------------------------------------------------------------


def test_it_mints_one_token_and_reuses_it(fake: FakeVertex) -> None:
    module = VertexProvider()
    target = Target(provider_for(fake), MODEL)

    async def scenario() -> set[str]:
        return {
            (await module.build(target, anthropic_request(messages()))).headers["authorization"]
            for _ in range(50)
        }

    assert len(asyncio.run(scenario())) == 1
    assert fake.token_requests == 1


def test_it_shares_one_refresh_between_concurrent_requests(fake: FakeVertex) -> None:
    fake.token_delay = 0.2
    module = VertexProvider()
    target = Target(provider_for(fake), MODEL)

    async def scenario() -> list[str]:
        outs = await asyncio.gather(
            *(module.build(target, anthropic_request(messages())) for _ in range(100))
        )
        return [o.headers["authorization"] for o in outs]

    tokens = asyncio.run(scenario())
    assert len(tokens) == 100 and len(set(tokens)) == 1
    assert fake.token_requests == 1


def test_it_refreshes_ahead_of_expiry_without_making_requests_wait(fake: FakeVertex) -> None:
    now = [1_000_000.0]
    module = VertexProvider(TokenCache(margin=300, clock=lambda: now[0]))
    config = provider_for(fake)
    target = Target(config, MODEL)

    async def auth() -> str:
        return (await module.build(target, anthropic_request(messages()))).headers["authorization"]

    async def scenario() -> None:
        first = await auth()
        now[0] += 3600 - 400  # not yet due
        assert await auth() == first
        assert fake.token_requests == 1

        fake.token_delay = 1.0
        now[0] += 150  # inside the margin: refresh behind the caller's back
        started = time.perf_counter()
        assert await auth() == first
        assert time.perf_counter() - started < 0.5
        tokens = module.tokens.for_provider(config)
        while tokens.mints < 2:
            await asyncio.sleep(0.01)
        second = await auth()
        assert second != first
        assert fake.token_requests == 2

        now[0] += 3600  # expired: this request has to wait for a new token
        fake.token_delay = 0
        third = await auth()
        assert third not in (first, second)
        assert fake.token_requests == 3

    asyncio.run(scenario())


def test_it_mints_a_new_token_when_the_key_is_rotated(fake: FakeVertex) -> None:
    module = VertexProvider()

    async def scenario() -> None:
        old = await module.build(Target(provider_for(fake), MODEL), anthropic_request(messages()))
        rotated = fake.service_account_json(private_key_id="fakekey0002")
        new = await module.build(
            Target(provider_for(fake, credential=rotated), MODEL), anthropic_request(messages())
        )
        assert new.headers["authorization"] != old.headers["authorization"]

    asyncio.run(scenario())
    assert fake.token_requests == 2


def test_it_reports_a_key_google_refuses(fake: FakeVertex) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    credential = orjson.dumps(service_account_info(fake.token_uri, key=stranger)).decode()
    target = Target(provider_for(fake, credential=credential), MODEL)
    with pytest.raises(GatewayError) as info:
        asyncio.run(VertexProvider().build(target, anthropic_request(messages())))

    assert info.value.status == 502
    assert info.value.retry is False
    assert "Invalid JWT Signature" in info.value.message
    assert "vertex-eu" in info.value.message


def test_it_keeps_the_current_token_when_a_background_refresh_fails(fake: FakeVertex) -> None:
    now = [1_000_000.0]
    module = VertexProvider(TokenCache(clock=lambda: now[0]))
    config = provider_for(fake)
    target = Target(config, MODEL)

    async def scenario() -> None:
        first = (await module.build(target, anthropic_request(messages()))).headers
        fake.fail_next_token()
        now[0] += 3600 - 100
        assert (await module.build(target, anthropic_request(messages()))).headers == first
        while fake.token_requests < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        # Backing off: no new attempt for a few seconds, the old token still serves.
        assert (await module.build(target, anthropic_request(messages()))).headers == first
        assert fake.token_requests == 2
        now[0] += 20
        await module.build(target, anthropic_request(messages()))
        while module.tokens.for_provider(config).mints < 2:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert fake.token_requests == 3


def test_it_never_blocks_the_event_loop_while_minting(fake: FakeVertex) -> None:
    fake.token_delay = 0.5
    module = VertexProvider()
    target = Target(provider_for(fake), MODEL)

    async def scenario() -> tuple[int, float]:
        ticks = 0
        worst = 0.0
        done = False

        async def ticker() -> None:
            nonlocal ticks, worst
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await module.build(target, anthropic_request(messages()))
        done = True
        await task
        return ticks, worst

    ticks, worst = asyncio.run(scenario())
    assert fake.token_requests == 1
    assert ticks > 100
    assert worst < 0.45  # a blocked loop would stall for the whole 0.5 s exchange (a loaded CI box stalls ~0.3 s)


def test_it_does_not_cancel_a_shared_refresh_when_a_caller_leaves(fake: FakeVertex) -> None:
    fake.token_delay = 0.3
    module = VertexProvider()
    target = Target(provider_for(fake), MODEL)

    async def scenario() -> None:
        leaver = asyncio.create_task(module.build(target, anthropic_request(messages())))
        stayer = asyncio.create_task(module.build(target, anthropic_request(messages())))
        await asyncio.sleep(0.1)
        leaver.cancel()
        out = await stayer
        assert out.headers["authorization"].startswith("Bearer ya29.")

    asyncio.run(scenario())
    assert fake.token_requests == 1


# --- answers ------------------------------------------------------------------------


def test_it_relays_a_streamed_bash_tool_turn(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), MODEL)
    doc = messages("please [[bash: ls -la /tmp]]", stream=True, tools=[BASH_TOOL])
    adapter, status, body = asyncio.run(relay(VertexProvider(), target, anthropic_request(doc)))

    assert status == 200
    assert adapter.content_type == "text/event-stream"
    events = sse_events(body)
    assert [e["type"] for e in events][:2] == ["message_start", "ping"]
    assert events[-1]["type"] == "message_stop"
    tool = next(
        e
        for e in events
        if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use"
    )
    args = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == tool["index"]
    )
    assert orjson.loads(args)["command"] == "ls -la /tmp"
    assert adapter.usage.model == MODEL
    assert adapter.usage.stop_reason == "tool_use"
    assert adapter.usage.input_tokens > 0 and adapter.usage.output_tokens > 1
    received = fake.predictions_received()[-1]
    assert received.path.endswith(":streamRawPredict")
    assert "model" not in received.body


def test_it_relays_a_whole_message(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), MODEL)
    doc = messages(system=[{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}])
    adapter, status, body = asyncio.run(relay(VertexProvider(), target, anthropic_request(doc)))

    assert status == 200
    assert adapter.content_type == "application/json"
    answer = orjson.loads(body)
    assert answer["type"] == "message" and answer["content"][0]["type"] == "text"
    assert adapter.usage.model == MODEL
    assert adapter.usage.stop_reason == "end_turn"
    assert adapter.usage.cache_read_tokens == 2000 and adapter.usage.cache_write_tokens == 1000
    assert adapter.usage.output_tokens == answer["usage"]["output_tokens"]


def test_it_counts_tokens(fake: FakeVertex) -> None:
    target = Target(provider_for(fake), MODEL)
    doc = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "count me " * 40}],
    }
    adapter, status, body = asyncio.run(
        relay(VertexProvider(), target, anthropic_request(doc, endpoint="count_tokens"))
    )

    assert status == 200
    assert orjson.loads(body)["input_tokens"] > 50
    assert fake.predictions_received()[-1].body["model"] == MODEL


def test_it_reads_usage_from_a_cut_stream(fake: FakeVertex) -> None:
    fake.cut_next_stream()
    module = VertexProvider()
    target = Target(provider_for(fake), MODEL)
    request = anthropic_request(messages(stream=True))

    async def scenario() -> tuple[Any, bytes, bool]:
        out = await module.build(target, request)
        relayed = b""
        async with (
            aiohttp.ClientSession() as session,
            session.post(out.url, headers=out.headers, data=out.body) as resp,
        ):
            adapter = module.adapter(target, request, resp.status, resp.headers["content-type"])
            try:
                async for chunk in resp.content.iter_any():
                    relayed += adapter.feed(chunk)
            except aiohttp.ClientPayloadError:
                return adapter, relayed, True
        return adapter, relayed, False

    adapter, relayed, cut = asyncio.run(scenario())
    assert cut
    assert b"event: message_start" in relayed and b"event: message_stop" not in relayed
    assert adapter.usage.input_tokens > 0
    assert adapter.usage.stop_reason == ""


# --- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "google_status", "listed", "error_type"),
    [
        (429, "RESOURCE_EXHAUSTED", False, "rate_limit_error"),
        (429, "RESOURCE_EXHAUSTED", True, "rate_limit_error"),
        (400, "INVALID_ARGUMENT", False, "invalid_request_error"),
        (404, "NOT_FOUND", True, "not_found_error"),
        (503, "UNAVAILABLE", False, "overloaded_error"),
        (500, "INTERNAL", False, "api_error"),
    ],
)
def test_it_turns_google_errors_into_anthropic_errors(
    fake: FakeVertex, status: int, google_status: str, listed: bool, error_type: str
) -> None:
    fake.fail_next_google(
        status, google_status, "Quota exceeded for aiplatform.googleapis.com", listed=listed
    )
    target = Target(provider_for(fake), MODEL)
    adapter, got, body = asyncio.run(
        relay(VertexProvider(), target, anthropic_request(messages(stream=True)))
    )

    assert got == status
    assert adapter.content_type == "application/json"
    assert orjson.loads(body) == {
        "type": "error",
        "error": {
            "type": error_type,
            "message": "Vertex: Quota exceeded for aiplatform.googleapis.com",
        },
    }
    assert adapter.usage.error_type == error_type


def test_it_blames_the_gateway_credential_when_google_refuses_it(fake: FakeVertex) -> None:
    module = VertexProvider()
    target = Target(provider_for(fake), MODEL)

    async def scenario() -> Any:
        await module.build(target, anthropic_request(messages()))
        fake.issued.clear()  # Google no longer accepts the cached token
        return await relay(module, target, anthropic_request(messages()))

    adapter, status, body = asyncio.run(scenario())
    assert status == 401
    assert adapter.status == 502
    error = orjson.loads(body)["error"]
    assert error["type"] == "api_error"
    assert error["message"].startswith("Vertex: Google refused the gateway's credential")
    assert "invalid authentication credentials" in error["message"]


def test_it_passes_anthropic_errors_through(fake: FakeVertex) -> None:
    fake.fail_next(529, "overloaded_error", "Overloaded")
    target = Target(provider_for(fake), MODEL)
    adapter, status, body = asyncio.run(
        relay(VertexProvider(), target, anthropic_request(messages()))
    )

    assert status == 529
    doc = orjson.loads(body)
    assert doc["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert doc["request_id"].startswith("req_fake")
    assert adapter.usage.error_type == "overloaded_error"


@pytest.mark.parametrize(
    ("status", "body", "error_type", "message"),
    [
        (
            403,
            b'{"error": {"code": 403, "message": "Permission denied", "status": "PERMISSION_DENIED"}}',
            "api_error",
            "an admin must fix",
        ),
        (
            502,
            b"<html>Bad Gateway</html>",
            "api_error",
            "Vertex: HTTP 502: <html>Bad Gateway</html>",
        ),
        (
            500,
            b'[{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}]',
            "overloaded_error",
            "Vertex: busy",
        ),
        (
            504,
            b'{"error": {"code": 504, "message": "slow", "status": "DEADLINE_EXCEEDED"}}',
            "timeout_error",
            "Vertex: slow",
        ),
        (413, b"", "request_too_large", "Vertex: HTTP 413"),
    ],
)
def test_it_maps_odd_error_bodies(status: int, body: bytes, error_type: str, message: str) -> None:
    error = orjson.loads(google_error(status, body))["error"]
    assert error["type"] == error_type
    assert message in error["message"]


def test_it_relays_prompt_is_too_long_word_for_word() -> None:
    # Vertex relays Anthropic's own envelope; Claude Code compacts on this message.
    body = b'{"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}'
    error = orjson.loads(google_error(400, body))["error"]
    assert error == {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}


def test_it_hides_project_ids_in_errors() -> None:
    body = b'{"error": {"code": 404, "message": "Publisher model projects/acme-prod-4711/locations/us-east5/publishers/anthropic/models/x not found", "status": "NOT_FOUND"}}'
    error = orjson.loads(google_error(404, body))["error"]
    assert "acme-prod-4711" not in error["message"] and "projects/…/locations" in error["message"]
