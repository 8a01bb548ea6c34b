"""Bedrock: event-stream framing, SigV4 (checked by the fake), betas, and whole
calls through aiohttp against the fake, streaming and not."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import random
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
import yarl
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from dataplane.errors import GatewayError
from dataplane.providers.anthropic import SSEUsageScanner
from dataplane.providers.base import AnthropicRequest, ProviderConfig, Target
from dataplane.providers.bedrock import (
    BEDROCK,
    Bedrock,
    BedrockStream,
    invoke_body,
    is_anthropic_model,
    sign,
    split_betas,
)
from dataplane.providers.eventstream import EventStreamDecoder, EventStreamError, encode_message
from tests.fakes.bedrock import FakeBedrock

OPUS = "anthropic.claude-opus-4-5-20251101-v1:0"
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    server = FakeBedrock().start()
    yield server
    server.stop()


@pytest.fixture
def bedrock(fake: FakeBedrock) -> FakeBedrock:
    fake.reset()
    return fake


def target_for(
    fake: FakeBedrock,
    model: str = OPUS,
    credential: str | None = None,
    provider_id: int = 1,
    **settings: Any,
) -> Target:
    provider = ProviderConfig(
        id=provider_id,
        name="bedrock",
        kind="bedrock",
        base_url=fake.url,
        credential=credential or fake.credential(),
        settings={"region": "us-east-1", "sts_endpoint": fake.url, **settings},
    )
    return Target(provider=provider, model=model)


def messages_request(
    text: str = "Hello",
    *,
    stream: bool = False,
    betas: str = "",
    tools: list[Any] | None = None,
    gzipped: bool = False,
    endpoint: str = "messages",
) -> AnthropicRequest:
    doc: dict[str, Any] = {
        "model": "claude-opus-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
    }
    if endpoint == "count_tokens":
        del doc["max_tokens"]
    if stream:
        doc["stream"] = True
    if tools:
        doc["tools"] = tools
    raw = orjson.dumps(doc)
    headers = [
        (b"content-type", b"application/json"),
        (b"anthropic-version", b"2023-06-01"),
        (b"x-api-key", b"tg-client-key"),
    ]
    if betas:
        headers.append((b"anthropic-beta", betas.encode()))
    if gzipped:
        raw = gzip.compress(raw)
        headers.append((b"content-encoding", b"gzip"))
    return AnthropicRequest(
        endpoint=endpoint,
        doc=doc,
        raw=raw,
        content_encoding=b"gzip" if gzipped else None,
        headers=headers,
        query=b"",
        stream=stream,
    )


async def call(
    module: Bedrock,
    target: Target,
    request: AnthropicRequest,
    chunk_size: int | None = None,
    encoded: bool = False,
) -> tuple[int, Any, bytes]:
    """One attempt the way the router makes it: build, send with aiohttp, adapt."""
    outbound = await module.build(target, request)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            outbound.method,
            yarl.URL(outbound.url, encoded=True) if encoded else outbound.url,
            headers=outbound.headers,
            data=outbound.body,
        ) as response,
    ):
        adapter = module.adapter(
            target, request, response.status, response.headers.get("content-type", "")
        )
        if adapter.content_type == "text/event-stream":
            out = bytearray()
            try:
                if chunk_size:
                    async for piece in response.content.iter_chunked(chunk_size):
                        out += adapter.feed(piece)
                else:
                    async for piece in response.content.iter_any():
                        out += adapter.feed(piece)
            except aiohttp.ClientPayloadError:
                pass
            out += adapter.close()
            return response.status, adapter, bytes(out)
        return response.status, adapter, adapter.convert(response.status, await response.read())


def sse_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in data.split(b"\n\n"):
        if not block:
            continue
        head, _, body = block.partition(b"\ndata: ")
        assert head.startswith(b"event: ")
        payload = orjson.loads(body)
        assert payload["type"] == head[7:].decode()
        events.append((head[7:].decode(), payload))
    assert data.endswith(b"\n\n")
    return events


# --- event stream ------------------------------------------------------------


def sample_messages(n: int = 40) -> list[tuple[dict[str, Any], bytes]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        headers: dict[str, Any] = {
            ":event-type": "chunk",
            ":message-type": "event",
            "n": i,
            "flag": i % 2 == 0,
            "blob": bytes([i]),
        }
        out.append((headers, bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))))
    return out


def test_it_decodes_frames_split_one_byte_at_a_time() -> None:
    messages = sample_messages()
    wire = b"".join(encode_message(h, p) for h, p in messages)
    decoder = EventStreamDecoder()
    got = []
    for i in range(len(wire)):
        got += decoder.feed(wire[i : i + 1])
    assert got == messages
    assert decoder.pending == 0


@pytest.mark.parametrize("seed", range(20))
def test_it_decodes_frames_split_at_random(seed: int) -> None:
    rng = random.Random(seed)
    messages = sample_messages()
    wire = b"".join(encode_message(h, p) for h, p in messages)
    decoder = EventStreamDecoder()
    got, pos = [], 0
    while pos < len(wire):
        step = rng.randrange(1, 200)
        got += decoder.feed(wire[pos : pos + step])
        pos += step
    assert got == messages


def test_it_agrees_with_botocores_decoder() -> None:
    wire = b"".join(encode_message(h, p) for h, p in sample_messages(5))
    theirs = EventStreamBuffer()
    theirs.add_data(wire)
    ours = EventStreamDecoder().feed(wire)
    for message, (headers, payload) in zip(theirs, ours, strict=True):
        assert message.headers == headers
        assert message.payload == payload


def test_it_detects_a_corrupt_payload() -> None:
    frame = bytearray(encode_message({":event-type": "chunk"}, b'{"bytes":"e30="}'))
    frame[-6] ^= 0x01
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(frame))


def test_it_detects_a_corrupt_prelude() -> None:
    frame = bytearray(encode_message({":event-type": "chunk"}, b"{}"))
    frame[2] ^= 0x01
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="prelude CRC"):
        for i in range(len(frame)):
            decoder.feed(bytes(frame[i : i + 1]))


# --- request -----------------------------------------------------------------


def test_it_keeps_allowed_betas_and_reports_the_dropped_ones() -> None:
    kept, dropped = split_betas(
        [
            "claude-code-20250219",
            "interleaved-thinking-2025-05-14",
            "oauth-2025-04-20",
            "interleaved-thinking-2025-05-14",
        ],
        ["interleaved-thinking-2025-05-14"],
    )
    assert kept == ["interleaved-thinking-2025-05-14"]
    assert dropped == ["claude-code-20250219", "oauth-2025-04-20"]


def test_it_builds_the_invoke_call(bedrock: FakeBedrock) -> None:
    target = target_for(bedrock)
    request = messages_request(
        betas="claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
        gzipped=True,
    )
    outbound = asyncio.run(Bedrock().build(target, request))
    assert outbound.method == "POST"
    assert outbound.url == f"{bedrock.url}/model/anthropic.claude-opus-4-5-20251101-v1:0/invoke"
    body = orjson.loads(outbound.body or b"")
    assert "model" not in body and "stream" not in body
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert body["anthropic_beta"] == [
        "interleaved-thinking-2025-05-14",
        "fine-grained-tool-streaming-2025-05-14",
    ]
    assert body["messages"] == request.doc["messages"]
    headers = {k.lower(): v for k, v in outbound.headers.items()}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKEBEDROCK00001/")
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    assert headers["accept"] == "application/json"
    assert (
        "x-api-key" not in headers
        and "anthropic-beta" not in headers
        and "content-encoding" not in headers
    )
    assert BEDROCK.dropped_betas(target, request) == ["claude-code-20250219"]


def test_it_streams_from_invoke_with_response_stream_and_defaults_the_url() -> None:
    provider = ProviderConfig(
        id=9,
        name="b",
        kind="bedrock",
        base_url="",
        credential='{"access_key_id":"A","secret_access_key":"S"}',
        settings={"region": "eu-west-3"},
    )
    outbound = asyncio.run(
        Bedrock().build(Target(provider, "eu." + OPUS), messages_request(stream=True))
    )
    assert (
        outbound.url
        == "https://bedrock-runtime.eu-west-3.amazonaws.com/model/eu.anthropic.claude-opus-4-5-20251101-v1:0/invoke-with-response-stream"
    )
    assert outbound.headers["accept"] == "application/vnd.amazon.eventstream"
    assert "/eu-west-3/bedrock/aws4_request" in outbound.headers["Authorization"]


def test_it_uses_the_providers_own_allowlist(bedrock: FakeBedrock) -> None:
    target = target_for(bedrock, beta_allowlist=["context-1m-2025-08-07"])
    body, dropped = invoke_body(
        target, messages_request(betas="context-1m-2025-08-07,interleaved-thinking-2025-05-14")
    )
    assert body["anthropic_beta"] == ["context-1m-2025-08-07"]
    assert dropped == ["interleaved-thinking-2025-05-14"]
    body, _ = invoke_body(target, messages_request(betas="interleaved-thinking-2025-05-14"))
    assert "anthropic_beta" not in body


def test_it_refuses_count_tokens_for_non_anthropic_models(bedrock: FakeBedrock) -> None:
    assert is_anthropic_model("global.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert is_anthropic_model(
        "arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    )
    assert is_anthropic_model("arn:aws:bedrock:us-east-1:123:provisioned-model/abc123")
    assert not is_anthropic_model("us.meta.llama3-3-70b-instruct-v1:0")
    assert not is_anthropic_model(
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"
    )
    with pytest.raises(GatewayError) as info:
        asyncio.run(
            Bedrock().build(
                target_for(bedrock, model="amazon.nova-pro-v1:0"),
                messages_request(endpoint="count_tokens"),
            )
        )
    assert info.value.status == 400 and info.value.retry is False
    assert "counts tokens for Claude only" in info.value.message
    # So the gateway answers a 501 for them before building anything (forward.py).
    assert not Bedrock().counts_tokens(target_for(bedrock, model="amazon.nova-pro-v1:0"))
    assert Bedrock().counts_tokens(target_for(bedrock))


@pytest.mark.parametrize(
    "url",
    [
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-opus-4-5-20251101-v1:0/invoke",
        "https://bedrock-runtime.eu-west-3.amazonaws.com:443/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
        "http://127.0.0.1:8123/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.x/count-tokens",
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE//session+token=="])
def test_it_signs_exactly_as_botocore_does(
    monkeypatch: pytest.MonkeyPatch, url: str, token: str | None
) -> None:
    import botocore.auth

    when = datetime.datetime(2025, 11, 24, 3, 4, 5, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    headers = {"content-type": "application/json", "accept": "application/vnd.amazon.eventstream"}
    body = orjson.dumps({"messages": [{"role": "user", "content": "héllo  there"}]})
    aws = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials, "bedrock", "eu-west-3").add_auth(aws)
    ours = sign(credentials, "eu-west-3", "POST", url, headers, body, now=when.timestamp())
    theirs = {k: v for k, v in aws.headers.items()}
    assert ours == theirs


# --- whole calls against the fake --------------------------------------------


def test_it_answers_a_message_signed_well_enough_for_the_fake(bedrock: FakeBedrock) -> None:
    status, adapter, body = asyncio.run(
        call(Bedrock(), target_for(bedrock), messages_request(betas="claude-code-20250219"))
    )
    assert status == 200, body
    doc = orjson.loads(body)
    assert doc["type"] == "message" and doc["content"][0]["type"] == "text"
    assert adapter.content_type == "application/json"
    assert adapter.usage.input_tokens == doc["usage"]["input_tokens"] > 0
    assert adapter.usage.output_tokens == doc["usage"]["output_tokens"] > 0
    assert adapter.usage.model == OPUS
    assert adapter.dropped_betas == ["claude-code-20250219"]
    (received,) = bedrock.received
    assert received.path == "/model/anthropic.claude-opus-4-5-20251101-v1:0/invoke"


@pytest.mark.parametrize("encoded", [False, True])
@pytest.mark.parametrize(
    "model",
    [
        "global." + OPUS,
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
    ],
)
def test_it_signs_the_path_that_is_sent(bedrock: FakeBedrock, model: str, encoded: bool) -> None:
    target = target_for(bedrock, model=model)
    outbound = asyncio.run(Bedrock().build(target, messages_request()))
    if model.startswith("arn:"):
        assert outbound.url.endswith(
            "/model/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile%2Fa1b2c3/invoke"
        )
    status, _, body = asyncio.run(call(Bedrock(), target, messages_request(), encoded=encoded))
    assert status == 200, body


def test_it_is_refused_with_the_wrong_secret(bedrock: FakeBedrock) -> None:
    credential = orjson.dumps(
        {"access_key_id": "AKIAFAKEBEDROCK00001", "secret_access_key": "not-the-secret"}
    ).decode()
    status, adapter, body = asyncio.run(
        call(Bedrock(), target_for(bedrock, credential=credential), messages_request())
    )
    assert status == 403
    error = orjson.loads(body)["error"]
    assert error["type"] == "permission_error"
    assert error["message"].startswith(
        "Bedrock: The request signature we calculated does not match"
    )
    assert adapter.usage.error_type == "permission_error"


def test_it_runs_a_bash_tool_turn_streamed(bedrock: FakeBedrock) -> None:
    request = messages_request(
        "please [[bash: ls -la /tmp]]",
        stream=True,
        tools=[BASH_TOOL],
        betas="fine-grained-tool-streaming-2025-05-14",
    )
    status, adapter, out = asyncio.run(call(Bedrock(), target_for(bedrock), request, chunk_size=7))
    assert status == 200
    assert adapter.content_type == "text/event-stream"
    events = sse_events(out)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert events[-1][1] == {"type": "message_stop"}  # invocation metrics are not relayed
    partial = "".join(
        e["delta"]["partial_json"]
        for n, e in events
        if n == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert orjson.loads(partial)["command"] == "ls -la /tmp"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    scanner = SSEUsageScanner()
    scanner.feed(out)
    assert adapter.usage.input_tokens == scanner.usage.input_tokens > 0
    assert adapter.usage.output_tokens == scanner.usage.output_tokens > 0
    assert adapter.usage.stop_reason == "tool_use"


def test_it_takes_usage_from_the_invocation_metrics() -> None:
    start = {
        "type": "message_start",
        "message": {"model": "m", "usage": {"input_tokens": 10, "output_tokens": 1}},
    }
    stop = {
        "type": "message_stop",
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": 12,
            "outputTokenCount": 34,
            "cacheReadInputTokenCount": 5,
            "cacheWriteInputTokenCount": 6,
        },
    }
    adapter = BedrockStream("m", [])
    wire = b""
    for event in (start, stop):
        payload = orjson.dumps({"bytes": base64.b64encode(orjson.dumps(event)).decode()})
        wire += encode_message({":event-type": "chunk", ":message-type": "event"}, payload)
    out = adapter.feed(wire) + adapter.close()
    assert [n for n, _ in sse_events(out)] == ["message_start", "message_stop"]
    usage = adapter.usage
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
    ) == (12, 34, 5, 6)


def test_it_counts_cache_tokens_streamed(bedrock: FakeBedrock) -> None:
    request = messages_request(stream=True)
    request.doc["system"] = [
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}
    ]
    _, adapter, out = asyncio.run(call(Bedrock(), target_for(bedrock), request, chunk_size=1))
    assert sse_events(out)[-1][0] == "message_stop"
    assert (adapter.usage.cache_read_tokens, adapter.usage.cache_write_tokens) == (2000, 1000)


@pytest.mark.parametrize(
    ("exception", "error_type"),
    [
        ("throttlingException", "rate_limit_error"),
        ("validationException", "invalid_request_error"),
        ("modelStreamErrorException", "api_error"),
        ("serviceUnavailableException", "overloaded_error"),
    ],
)
def test_it_turns_a_stream_exception_into_an_error_event(
    bedrock: FakeBedrock, exception: str, error_type: str
) -> None:
    bedrock.exception_next(exception, "slow down")
    _, adapter, out = asyncio.run(
        call(Bedrock(), target_for(bedrock), messages_request(stream=True))
    )
    events = sse_events(out)
    assert events[0][0] == "message_start"
    name, payload = events[-1]
    assert name == "error"
    assert payload["error"]["type"] == error_type
    assert payload["error"]["message"] == f"Bedrock: {exception}: slow down"
    assert adapter.usage.error_type == error_type


def test_it_ends_a_cut_stream_with_an_error_event(bedrock: FakeBedrock) -> None:
    bedrock.cut_next_stream()
    _, adapter, out = asyncio.run(
        call(Bedrock(), target_for(bedrock), messages_request(stream=True))
    )
    events = sse_events(out)
    assert "message_stop" not in [n for n, _ in events]
    assert (
        events[-1][0] == "error"
        and "ended before message_stop" in events[-1][1]["error"]["message"]
    )


@pytest.mark.parametrize(
    ("status", "aws_type", "error_type"),
    [
        (429, "ThrottlingException", "rate_limit_error"),
        (503, "ServiceUnavailableException", "overloaded_error"),
        (400, "ValidationException", "invalid_request_error"),
        (404, "ResourceNotFoundException", "not_found_error"),
        (403, "AccessDeniedException", "permission_error"),
        (500, "InternalServerException", "api_error"),
    ],
)
def test_it_maps_errors(bedrock: FakeBedrock, status: int, aws_type: str, error_type: str) -> None:
    bedrock.fail_next(status, aws_type, "it went wrong")
    got, adapter, body = asyncio.run(
        call(Bedrock(), target_for(bedrock), messages_request(stream=True))
    )
    assert got == status
    assert adapter.content_type == "application/json"
    assert orjson.loads(body) == {
        "type": "error",
        "error": {"type": error_type, "message": "Bedrock: it went wrong"},
    }


def test_it_passes_only_allowed_betas_so_bedrock_accepts_the_call(bedrock: FakeBedrock) -> None:
    target = target_for(
        bedrock, beta_allowlist=["interleaved-thinking-2025-05-14", "made-up-beta-2099-01-01"]
    )
    ok, _, _ = asyncio.run(
        call(
            Bedrock(),
            target,
            messages_request(betas="interleaved-thinking-2025-05-14,claude-code-20250219"),
        )
    )
    assert ok == 200
    # An allowlist naming a beta Bedrock does not know shows the refusal it prevents.
    status, _, body = asyncio.run(
        call(Bedrock(), target, messages_request(betas="made-up-beta-2099-01-01"))
    )
    assert status == 400
    assert orjson.loads(body)["error"]["type"] == "invalid_request_error"


def test_it_counts_tokens(bedrock: FakeBedrock) -> None:
    request = messages_request("count me", endpoint="count_tokens")
    status, adapter, body = asyncio.run(
        call(Bedrock(), target_for(bedrock, model="us." + OPUS), request)
    )
    assert status == 200, body
    count = orjson.loads(body)["input_tokens"]
    assert count > 0 and adapter.usage.input_tokens == count
    (received,) = bedrock.received
    # CountTokens takes the foundation model, not the inference profile.
    assert received.path == "/model/anthropic.claude-opus-4-5-20251101-v1:0/count-tokens"
    inner = orjson.loads(base64.b64decode(received.body["input"]["invokeModel"]["body"]))
    assert (
        inner["messages"] == request.doc["messages"]
        and inner["anthropic_version"] == "bedrock-2023-05-31"
    )


# --- assume-role -------------------------------------------------------------


def test_it_assumes_a_role_once_and_reuses_the_session(bedrock: FakeBedrock) -> None:
    module = Bedrock()
    target = target_for(
        bedrock, credential=bedrock.credential(role_arn=bedrock.role_arn), provider_id=7
    )

    async def twice() -> list[int]:
        first = await call(module, target, messages_request())
        second = await call(module, target, messages_request(stream=True))
        return [first[0], second[0]]

    assert asyncio.run(twice()) == [200, 200]
    assert bedrock.sts_calls == 1 and module.credentials.sts_calls == 1
    auths = [r.headers["Authorization"] for r in bedrock.received if r.path.startswith("/model/")]
    assert all("Credential=ASIAFAKE" in a for a in auths)
    assert all(
        "X-Amz-Security-Token" in r.headers
        for r in bedrock.received
        if r.path.startswith("/model/")
    )


def test_it_renews_a_session_close_to_expiry(bedrock: FakeBedrock) -> None:
    bedrock.session_seconds = 200  # inside the five-minute margin: renewed every time
    try:
        module = Bedrock()
        target = target_for(
            bedrock, credential=bedrock.credential(role_arn=bedrock.role_arn), provider_id=8
        )

        async def twice() -> None:
            await call(module, target, messages_request())
            await call(module, target, messages_request())

        asyncio.run(twice())
        assert bedrock.sts_calls == 2
    finally:
        bedrock.session_seconds = None


def test_it_shares_one_refresh_between_concurrent_requests(bedrock: FakeBedrock) -> None:
    module = Bedrock()
    target = target_for(
        bedrock, credential=bedrock.credential(role_arn=bedrock.role_arn), provider_id=9
    )

    async def many() -> list[int]:
        results = await asyncio.gather(
            *(call(module, target, messages_request()) for _ in range(5))
        )
        return [r[0] for r in results]

    assert asyncio.run(many()) == [200] * 5
    assert bedrock.sts_calls == 1


def test_it_reports_a_refused_role(bedrock: FakeBedrock) -> None:
    target = target_for(
        bedrock,
        credential=bedrock.credential(role_arn="arn:aws:iam::123456789012:role/other"),
        provider_id=10,
    )
    with pytest.raises(GatewayError) as info:
        asyncio.run(Bedrock().build(target, messages_request()))
    assert info.value.status == 502 and "AccessDenied" in info.value.message


# --- cost --------------------------------------------------------------------


def test_it_signs_quickly(bedrock: FakeBedrock) -> None:
    module = Bedrock()
    target = target_for(bedrock)
    request = messages_request("x" * 20_000, stream=True, tools=[BASH_TOOL])

    async def run(n: int) -> float:
        await module.build(target, request)
        start = time.perf_counter()
        for _ in range(n):
            await module.build(target, request)
        return (time.perf_counter() - start) / n * 1e6

    per_build = asyncio.run(run(2000))
    print(f"\nbedrock build+sign: {per_build:.1f} µs per request (20 kB body)")
    assert per_build < 2000


# --- Converse (non-Anthropic models) -------------------------------------------

NOVA = "amazon.nova-pro-v1:0"
LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"


@pytest.mark.parametrize("model", [NOVA, LLAMA])
def test_it_answers_through_converse(bedrock: FakeBedrock, model: str) -> None:
    request = messages_request("Hello", betas="context-1m-2025-08-07")
    status, adapter, body = asyncio.run(call(Bedrock(), target_for(bedrock, model=model), request))
    assert status == 200
    sent = bedrock.received[-1]
    assert sent.path == f"/model/{model}/converse"
    assert sent.body["messages"] == [{"role": "user", "content": [{"text": "Hello"}]}]
    assert sent.body["inferenceConfig"] == {"maxTokens": 1024}
    doc = orjson.loads(body)
    assert doc["type"] == "message" and doc["model"] == model
    assert doc["content"] == [
        {"type": "text", "text": "Hello from the fake Anthropic API. How can I help?"}
    ]
    assert doc["stop_reason"] == "end_turn"
    assert adapter.usage.input_tokens == doc["usage"]["input_tokens"] > 0
    assert adapter.usage.output_tokens == doc["usage"]["output_tokens"] > 0
    assert adapter.usage.stop_reason == "end_turn"
    assert adapter.dropped_betas == ["context-1m-2025-08-07"]


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 64])
def test_it_streams_a_tool_call_through_converse_stream(
    bedrock: FakeBedrock, chunk_size: int | None
) -> None:
    request = messages_request("please [[bash: ls -la /tmp]]", stream=True, tools=[BASH_TOOL])
    status, adapter, out = asyncio.run(
        call(Bedrock(), target_for(bedrock, model=LLAMA), request, chunk_size=chunk_size)
    )
    assert status == 200
    sent = bedrock.received[-1]
    assert sent.path == f"/model/{LLAMA}/converse-stream"
    assert sent.body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "Bash"
    events = sse_events(out)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("message_start") == 1
    starts = [e for n, e in events if n == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1]
    assert starts[1]["content_block"]["name"] == "Bash"
    assert starts[1]["content_block"]["id"].startswith("tooluse_")
    text = "".join(
        e["delta"]["text"]
        for n, e in events
        if n == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )
    assert text == "I'll run that."
    partial = "".join(
        e["delta"]["partial_json"]
        for n, e in events
        if n == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert orjson.loads(partial) == {
        "command": "ls -la /tmp",
        "description": "Run the requested command",
    }
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["input_tokens"] > 0 and delta["usage"]["output_tokens"] > 0
    assert adapter.usage.input_tokens == delta["usage"]["input_tokens"]
    assert adapter.usage.output_tokens == delta["usage"]["output_tokens"]
    assert adapter.usage.stop_reason == "tool_use"


def test_it_finishes_a_tool_round_trip_through_converse(bedrock: FakeBedrock) -> None:
    request = messages_request("please [[bash: echo hi]]", tools=[BASH_TOOL])
    _, _, body = asyncio.run(call(Bedrock(), target_for(bedrock, model=NOVA), request))
    first = orjson.loads(body)
    use = first["content"][-1]
    assert use["type"] == "tool_use" and first["stop_reason"] == "tool_use"
    request.doc["messages"] += [
        {"role": "assistant", "content": first["content"]},
        {"role": "system", "content": "<system-reminder>be brief</system-reminder>"},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "hi\n"}],
        },
    ]
    _, adapter, body = asyncio.run(call(Bedrock(), target_for(bedrock, model=NOVA), request))
    sent = bedrock.received[-1].body
    assert sent["system"] == [{"text": "<system-reminder>be brief</system-reminder>"}]
    assert sent["messages"][-1]["content"][0]["toolResult"]["toolUseId"] == use["id"]
    answer = orjson.loads(body)
    assert answer["content"] == [{"type": "text", "text": "The tool said: hi"}]
    assert adapter.usage.stop_reason == "end_turn"


def test_it_maps_converse_errors(bedrock: FakeBedrock) -> None:
    bedrock.fail_next(429, "ThrottlingException", "it went wrong")
    got, adapter, body = asyncio.run(
        call(Bedrock(), target_for(bedrock, model=NOVA), messages_request(stream=True))
    )
    assert got == 429
    assert orjson.loads(body) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Bedrock: it went wrong"},
    }
    assert adapter.usage.error_type == "rate_limit_error"


def test_it_turns_a_converse_stream_exception_into_an_error_event(bedrock: FakeBedrock) -> None:
    bedrock.exception_next("throttlingException", "slow down")
    _, adapter, out = asyncio.run(
        call(Bedrock(), target_for(bedrock, model=NOVA), messages_request(stream=True))
    )
    events = sse_events(out)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "rate_limit_error"
    assert adapter.usage.error_type == "rate_limit_error"


def test_it_ends_a_cut_converse_stream_with_an_error_event(bedrock: FakeBedrock) -> None:
    bedrock.cut_next_stream()
    _, _, out = asyncio.run(
        call(Bedrock(), target_for(bedrock, model=NOVA), messages_request(stream=True))
    )
    events = sse_events(out)
    assert "message_stop" not in [n for n, _ in events]
    assert events[-1][0] == "error" and "before messageStop" in events[-1][1]["error"]["message"]


def test_it_relays_input_is_too_long_word_for_word(bedrock: FakeBedrock) -> None:
    # Claude Code compacts the conversation on exactly this message.
    bedrock.fail_next(400, "ValidationException", "Input is too long for requested model.")
    got, _, body = asyncio.run(call(Bedrock(), target_for(bedrock), messages_request(stream=True)))
    assert got == 400
    assert orjson.loads(body)["error"] == {"type": "invalid_request_error", "message": "Input is too long for requested model."}


def test_it_hides_account_ids_and_arns_in_errors(bedrock: FakeBedrock) -> None:
    bedrock.fail_next(
        403, "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/tollgate-prod/session is not authorized to perform: "
        "bedrock:InvokeModel on account 123456789012",
    )
    _, _, body = asyncio.run(call(Bedrock(), target_for(bedrock), messages_request()))
    message = orjson.loads(body)["error"]["message"]
    assert "123456789012" not in message and "tollgate-prod" not in message
    assert message.startswith("Bedrock: User: arn:aws:… is not authorized")
