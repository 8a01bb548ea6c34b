"""AWS Bedrock: Claude through InvokeModel, other models through Converse, signed with SigV4.

For the router: ``BEDROCK`` is the ``ProviderModule``.

- ``await BEDROCK.build(target, request)`` gives the signed ``Outbound``; send
  it as is (the URL as a string or as ``yarl.URL(url, encoded=True)``: both
  put the same path on the wire). Non-Anthropic model ids (Amazon Nova, Meta
  Llama, Mistral...) go through Converse / ConverseStream, the request and
  answer translated by ``dataplane.translation.converse``; count_tokens for
  them is a 501 (``counts_tokens``): Bedrock's CountTokens serves Claude only.
- ``BEDROCK.adapter(target, request, status, content_type)`` converts the answer:
  an event stream becomes Anthropic SSE, a JSON body Anthropic JSON.
- ``BEDROCK.dropped_betas(target, request)`` names the client's betas left out
  of the call, for the attempt's log line (the adapter carries them too).

Provider settings: ``region`` (default us-east-1), ``beta_allowlist``,
``sts_endpoint`` and ``role_session_seconds`` for assume-role. The credential
is JSON: ``{"access_key_id", "secret_access_key", "session_token"?}``, or with
``"role_arn"`` (and ``"external_id"``?) to assume that role with those keys.

Bedrock's request body is Anthropic's with ``anthropic_version`` in it and the
model and stream flag in the URL instead:
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from botocore.credentials import Credentials

from dataplane.errors import GatewayError, context_too_long, hide_cloud_ids
from dataplane.providers.anthropic import Usage, usage_from_json
from dataplane.providers.base import AnthropicRequest, Outbound, Target, attributed
from dataplane.providers.eventstream import EventStreamDecoder, EventStreamError
from dataplane.translation.converse import (
    ConverseStreamToAnthropic,
    anthropic_request_to_converse,
    converse_response_to_anthropic,
)

ANTHROPIC_VERSION = "bedrock-2023-05-31"
DEFAULT_REGION = "us-east-1"
EVENTSTREAM = "application/vnd.amazon.eventstream"

# Bedrock refuses the whole request when ``anthropic_beta`` names a beta it does
# not know (https://github.com/anthropics/claude-code/issues/13770), and Claude
# Code sends several it does not: only these pass unless the provider says otherwise.
DEFAULT_BETA_ALLOWLIST = (
    "interleaved-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "fine-grained-tool-streaming-2025-05-14",
    "token-efficient-tools-2025-02-19",
    "computer-use-2025-01-24",
    "computer-use-2024-10-22",
    "output-128k-2025-02-19",
    "context-management-2025-06-27",
    "tool-examples-2025-10-29",
)

# Cross-region inference profiles prefix the model id with a geography.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov.")

# Renewed this long before they expire, so a signed request never outlives them.
_REFRESH_MARGIN = 300.0


def is_anthropic_model(model: str) -> bool:
    tail = model.rsplit("/", 1)[-1]  # an ARN ends with the id
    for prefix in _PROFILE_PREFIXES:
        if tail.startswith(prefix):
            tail = tail[len(prefix) :]
            break
    if tail.startswith("anthropic."):
        return True
    # An application inference profile or provisioned model ARN ends with an
    # opaque id: only Bedrock knows what it serves, so it is given the benefit.
    return model.startswith("arn:") and "." not in tail


def foundation_model(model: str) -> str:
    """CountTokens takes the bare foundation model, not an inference profile."""
    for prefix in _PROFILE_PREFIXES:
        if model.startswith(prefix) and model[len(prefix) :].startswith("anthropic."):
            return model[len(prefix) :]
    return model


def split_betas(requested: Iterable[str], allowlist: Iterable[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped), each in the client's order, duplicates removed."""
    allowed = set(allowlist)
    kept: list[str] = []
    dropped: list[str] = []
    for beta in requested:
        bucket = kept if beta in allowed else dropped
        if beta not in bucket:
            bucket.append(beta)
    return kept, dropped


# --- credentials -----------------------------------------------------------


@dataclass(slots=True)
class _Assumed:
    credentials: Credentials
    renew_at: float  # time.time()


@dataclass(slots=True)
class CredentialCache:
    """Parsed static keys and assumed-role sessions, per provider.

    Static keys are keyed by the credential string itself, so a rotated secret
    in a new snapshot is picked up without any invalidation.
    """

    static: dict[str, tuple[Credentials, dict[str, Any]]] = field(default_factory=dict)
    assumed: dict[tuple[int, str, str], _Assumed] = field(default_factory=dict)
    locks: dict[tuple[int, str, str], asyncio.Lock] = field(default_factory=dict)
    sts_calls: int = 0

    def parse(self, credential: str) -> tuple[Credentials, dict[str, Any]]:
        hit = self.static.get(credential)
        if hit is not None:
            return hit
        try:
            doc = orjson.loads(credential)
            creds = Credentials(
                doc["access_key_id"], doc["secret_access_key"], doc.get("session_token") or None
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise GatewayError(
                500,
                "The Bedrock provider's credential is not valid JSON with access_key_id and secret_access_key.",
                retry=False,
            ) from exc
        if len(self.static) > 1024:
            self.static.clear()
        self.static[credential] = (creds, doc)
        return creds, doc

    async def get(self, target: Target, region: str) -> Credentials:
        creds, doc = self.parse(target.provider.credential)
        role = doc.get("role_arn")
        if not role:
            return creds
        key = (target.provider.id, str(role), creds.access_key)
        cached = self.assumed.get(key)
        if cached is not None and time.time() < cached.renew_at:
            return cached.credentials
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            # Someone else may have refreshed while this one waited.
            cached = self.assumed.get(key)
            if cached is not None and time.time() < cached.renew_at:
                return cached.credentials
            self.sts_calls += 1
            fresh = await asyncio.to_thread(_assume_role, creds, doc, target, region)
            self.assumed[key] = fresh
            return fresh.credentials


def _assume_role(creds: Credentials, doc: dict[str, Any], target: Target, region: str) -> _Assumed:
    # Imported here: building a botocore session is slow and only the rare
    # refresh, off the event loop, needs it.
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError

    settings = target.provider.settings
    client = botocore.session.get_session().create_client(
        "sts",
        region_name=region,
        endpoint_url=settings.get("sts_endpoint") or None,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    params: dict[str, Any] = {
        "RoleArn": doc["role_arn"],
        "RoleSessionName": f"tollgate-{target.provider.id}",
        "DurationSeconds": int(settings.get("role_session_seconds", 3600)),
    }
    if doc.get("external_id"):
        params["ExternalId"] = doc["external_id"]
    try:
        answer = client.assume_role(**params)["Credentials"]
    except (BotoCoreError, ClientError) as exc:
        raise GatewayError(
            502, f"Bedrock: assuming role {doc['role_arn']} failed: {exc}", error_type="api_error"
        ) from exc
    finally:
        client.close()
    temporary = Credentials(
        answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"]
    )
    expires = answer["Expiration"].timestamp()
    return _Assumed(temporary, max(time.time(), expires - _REFRESH_MARGIN))


# --- request ---------------------------------------------------------------


def _region(target: Target) -> str:
    return str(target.provider.settings.get("region") or DEFAULT_REGION)


def base_url(target: Target) -> str:
    return (
        target.provider.base_url or f"https://bedrock-runtime.{_region(target)}.amazonaws.com"
    ).rstrip("/")


def betas_for(target: Target, request: AnthropicRequest) -> tuple[list[str], list[str]]:
    """The client's betas this provider passes on, and those it leaves out."""
    allowlist = target.provider.settings.get("beta_allowlist")
    return split_betas(request.betas, DEFAULT_BETA_ALLOWLIST if allowlist is None else allowlist)


def invoke_body(target: Target, request: AnthropicRequest) -> tuple[dict[str, Any], list[str]]:
    """Bedrock's body for this request, and the betas left out of it."""
    body = {k: v for k, v in request.doc.items() if k != "model" and k != "stream"}
    body["anthropic_version"] = ANTHROPIC_VERSION
    kept, dropped = betas_for(target, request)
    if kept:
        body["anthropic_beta"] = kept
    else:
        body.pop("anthropic_beta", None)
    return body, dropped


@functools.lru_cache(maxsize=256)
def _model_path(model: str) -> str:
    # ":" stays literal (an ARN's "/" does not): yarl turns "%3A" back into ":"
    # when handed a string URL, and the signature must cover the path that is
    # actually sent. AWS accepts either spelling.
    return quote(model, safe=":")


@functools.lru_cache(maxsize=1024)
def _canonical_path(path: str) -> str:
    # Non-S3 services sign the path URI-encoded once more (so "%3A" becomes "%253A").
    return quote(path or "/", safe="/~")


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.digest(b"AWS4" + secret.encode(), date.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def sign(
    credentials: Credentials,
    region: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: float | None = None,
) -> dict[str, str]:
    """SigV4 headers for one request, exactly as botocore's ``SigV4Auth`` signs it.

    botocore's signer costs ~100 µs a request in header bookkeeping; this one
    does the same arithmetic for our fixed header set in a tenth of that, with
    the day's signing key cached. tests/providers/test_bedrock.py checks the two
    agree. https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4-create-signed-request.html
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"https": 443, "http": 80}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    out = dict(headers)
    out["X-Amz-Date"] = stamp
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    canonical = {k.lower(): " ".join(v.split()) for k, v in out.items()}
    canonical["host"] = host
    names = sorted(canonical)
    signed = ";".join(names)
    request = "\n".join(
        (
            method.upper(),
            _canonical_path(parts.path),
            parts.query and "&".join(sorted(parts.query.split("&"))),
            "".join(f"{n}:{canonical[n]}\n" for n in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{stamp[:8]}/{region}/bedrock/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    key = _signing_key(credentials.secret_key, stamp[:8], region, "bedrock")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    # aiohttp writes Host from the URL, the value signed here.
    return out


class Bedrock:
    def __init__(self) -> None:
        self.credentials = CredentialCache()

    def dropped_betas(self, target: Target, request: AnthropicRequest) -> list[str]:
        if not is_anthropic_model(target.model):
            return list(dict.fromkeys(request.betas))  # Converse takes no Anthropic betas
        return betas_for(target, request)[1]

    def counts_tokens(self, target: Target) -> bool:
        """Bedrock's CountTokens serves the Anthropic models only."""
        return is_anthropic_model(target.model)

    async def build(self, target: Target, request: AnthropicRequest) -> Outbound:
        region = _region(target)
        if not is_anthropic_model(target.model):
            if request.endpoint == "count_tokens":
                raise GatewayError(
                    400,
                    f"Bedrock model {target.model!r} is not an Anthropic model: Bedrock counts tokens "
                    "for Claude only, so count_tokens is not available for it.",
                    error_type="invalid_request_error",
                    retry=False,
                )
            action = "converse-stream" if request.stream else "converse"
            path = f"/model/{_model_path(target.model)}/{action}"
            payload = orjson.dumps(anthropic_request_to_converse(request.doc))
            accept = EVENTSTREAM if request.stream else "application/json"
            return await self._signed(target, region, path, payload, accept)
        body, _ = invoke_body(target, request)
        if request.endpoint == "count_tokens":
            if "max_tokens" not in body:
                # InvokeModel requires it; CountTokens validates the body as one.
                thinking = body.get("thinking")
                budget = thinking.get("budget_tokens", 0) if isinstance(thinking, dict) else 0
                body["max_tokens"] = int(budget or 0) + 1
            # A blob member: base64 on the wire.
            # https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelTokensRequest.html
            wrapped = {
                "input": {
                    "invokeModel": {"body": base64.b64encode(orjson.dumps(body)).decode("ascii")}
                }
            }
            path = f"/model/{_model_path(foundation_model(target.model))}/count-tokens"
            payload, accept = orjson.dumps(wrapped), "application/json"
        else:
            action = "invoke-with-response-stream" if request.stream else "invoke"
            path = f"/model/{_model_path(target.model)}/{action}"
            payload = orjson.dumps(body)
            accept = EVENTSTREAM if request.stream else "application/json"
        return await self._signed(target, region, path, payload, accept)

    async def _signed(
        self, target: Target, region: str, path: str, payload: bytes, accept: str
    ) -> Outbound:
        url = base_url(target) + path
        credentials = await self.credentials.get(target, region)
        headers = sign(
            credentials,
            region,
            "POST",
            url,
            {"content-type": "application/json", "accept": accept},
            payload,
        )
        return Outbound(method="POST", url=url, headers=headers, body=payload)

    def adapter(
        self, target: Target, request: AnthropicRequest, status: int, content_type: str
    ) -> BedrockJSON | BedrockStream | ConverseStream:
        dropped = self.dropped_betas(target, request)
        converse = not is_anthropic_model(target.model)
        if status < 300 and content_type.startswith(EVENTSTREAM):
            return attributed(
                ConverseStream(target.model) if converse else BedrockStream(target.model, dropped), request
            )
        if converse:
            return attributed(ConverseJSON(request.endpoint, target.model, dropped), request)
        return attributed(BedrockJSON(request.endpoint, target.model, dropped), request)


BEDROCK = Bedrock()


# --- response --------------------------------------------------------------

# Bedrock's exception names (``x-amzn-ErrorType``, or an event stream's
# ``:exception-type``) in Anthropic's error vocabulary. A refused signature or
# key stays a 403 permission_error: authentication_error would send Claude Code
# users to /login over the gateway's own AWS credential.
_EXCEPTION_TYPES = {
    "throttlingexception": "rate_limit_error",
    "servicequotaexceededexception": "rate_limit_error",
    "serviceunavailableexception": "overloaded_error",
    "validationexception": "invalid_request_error",
    "accessdeniedexception": "permission_error",
    "resourcenotfoundexception": "not_found_error",
    "modeltimeoutexception": "timeout_error",
}
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def error_type_for(status: int, exception: str = "") -> str:
    name = exception.split(":", 1)[0].strip().lower()
    return _EXCEPTION_TYPES.get(name) or _STATUS_TYPES.get(status, "api_error")


def anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    if context_too_long(message):
        # Word for word: Claude Code compacts and retries on this message.
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return {"type": "error", "error": {"type": error_type, "message": f"Bedrock: {hide_cloud_ids(message)}"}}


def _message_of(body: bytes) -> tuple[str, str]:
    """(message, exception name) from a Bedrock error body, whatever its case."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:2000] or "no error body", ""
    if not isinstance(doc, dict):
        return str(doc)[:2000], ""
    message = doc.get("message") or doc.get("Message") or ""
    name = str(doc.get("__type") or doc.get("code") or "").rsplit("#", 1)[-1]
    return str(message)[:2000] or "no message", name


class BedrockJSON:
    """A whole body: Messages and errors pass in Anthropic's shape; CountTokens is renamed."""

    content_type = "application/json"

    def __init__(self, endpoint: str, model: str, dropped_betas: list[str]) -> None:
        self.endpoint = endpoint
        self.model = model
        self.dropped_betas = dropped_betas
        self.usage = Usage(model=model)
        self._status = 200
        self._body = bytearray()

    def convert(self, status: int, body: bytes, exception: str = "") -> bytes:
        if status >= 300:
            message, name = _message_of(body)
            kind = error_type_for(status, exception or name)
            doc = anthropic_error(kind, message)
            self.usage.error_type, self.usage.error_message = doc["error"]["type"], doc["error"]["message"]
            return orjson.dumps(doc)
        if self.endpoint == "count_tokens":
            try:
                count = int(orjson.loads(body)["inputTokens"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return self.convert(502, b'{"message": "CountTokens answered without inputTokens"}')
            self.usage.input_tokens = count
            return orjson.dumps({"input_tokens": count})
        usage = usage_from_json(body)
        usage.model = usage.model or self.model
        usage.agent_id = self.usage.agent_id
        self.usage = usage
        return body

    def feed(self, chunk: bytes) -> bytes:
        self._body += chunk
        return b""

    def close(self) -> bytes:
        return self.convert(self._status, bytes(self._body))


def _sse(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class BedrockStream:
    """InvokeModelWithResponseStream's event stream in, Anthropic's SSE out.

    Each ``chunk`` event carries one Anthropic stream event, base64 in JSON; the
    last one also carries ``amazon-bedrock-invocationMetrics``, the figures
    Bedrock bills, which win over the events' own usage.
    """

    content_type = "text/event-stream"

    def __init__(self, model: str, dropped_betas: list[str]) -> None:
        self.model = model
        self.dropped_betas = dropped_betas
        self.usage = Usage(model=model)
        self.decoder = EventStreamDecoder()
        self.finished = False  # message_stop or an error was relayed

    def convert(self, status: int, body: bytes) -> bytes:
        return self.feed(body) + self.close()

    def feed(self, chunk: bytes) -> bytes:
        if self.finished:
            return b""
        try:
            messages = self.decoder.feed(chunk)
        except EventStreamError as exc:
            return self._error("api_error", f"corrupt event stream ({exc})")
        out = []
        for headers, payload in messages:
            piece = self._message(headers, payload)
            if piece:
                out.append(piece)
            if self.finished:
                break
        return b"".join(out)

    def close(self) -> bytes:
        if self.finished:
            return b""
        return self._error("api_error", "the event stream ended before message_stop")

    def _error(self, kind: str, message: str) -> bytes:
        self.finished = True
        self.usage.error_type, self.usage.error_message = kind, f"Bedrock: {message}"[:2000]
        return _sse("error", orjson.dumps(anthropic_error(kind, message)))

    def _message(self, headers: dict[str, Any], payload: bytes) -> bytes:
        kind = headers.get(":message-type", "event")
        if kind == "exception":
            name = str(headers.get(":exception-type", ""))
            message, _ = _message_of(payload)
            return self._error(error_type_for(500, name), f"{name}: {message}" if name else message)
        if kind == "error":
            name = str(headers.get(":error-code", ""))
            return self._error(
                error_type_for(500, name), f"{name}: {headers.get(':error-message', '')}"
            )
        if headers.get(":event-type") != "chunk":
            return b""
        try:
            data = base64.b64decode(orjson.loads(payload)["bytes"])
            event = orjson.loads(data)
            name = event["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return self._error("api_error", "an event stream chunk is not an Anthropic event")
        if name.startswith("message_"):
            data = self._usage(name, event, data)
        elif name == "error":
            err = event.get("error") or {}
            self.finished = True
            self.usage.error_type = str(err.get("type", ""))
            self.usage.error_message = str(err.get("message", ""))[:2000]
        return _sse(name, data)

    def _usage(self, name: str, event: dict[str, Any], data: bytes) -> bytes:
        usage = self.usage
        if name == "message_start":
            message = event.get("message") or {}
            usage.model = str(message.get("model") or self.model)
            if isinstance(message.get("usage"), dict):
                usage.take(message["usage"])
        elif name == "message_delta":
            if isinstance(event.get("usage"), dict):
                usage.take(event["usage"])
            stop = (event.get("delta") or {}).get("stop_reason")
            if stop:
                usage.stop_reason = str(stop)
        elif name == "message_stop":
            self.finished = True
            metrics = event.pop("amazon-bedrock-invocationMetrics", None)
            if isinstance(metrics, dict):
                self._metrics(metrics)
                # The client gets exactly Anthropic's event.
                return orjson.dumps(event)
        return data

    def _metrics(self, metrics: dict[str, Any]) -> None:
        usage = self.usage
        for key, attr in (
            ("inputTokenCount", "input_tokens"),
            ("outputTokenCount", "output_tokens"),
            ("cacheReadInputTokenCount", "cache_read_tokens"),
            ("cacheWriteInputTokenCount", "cache_write_tokens"),
        ):
            value = metrics.get(key)
            if value is not None:
                setattr(usage, attr, int(value))


# --- Converse (non-Anthropic models) ------------------------------------------


class ConverseJSON(BedrockJSON):
    """A whole Converse answer as an Anthropic Message; errors as for InvokeModel."""

    def convert(self, status: int, body: bytes, exception: str = "") -> bytes:
        if status >= 300 or self.endpoint == "count_tokens":
            return super().convert(status, body, exception)
        try:
            doc = orjson.loads(body)
            if not isinstance(doc, dict):
                raise TypeError("not an object")
        except (orjson.JSONDecodeError, TypeError):
            return super().convert(
                502, b'{"message": "Converse answered with something other than JSON"}'
            )
        message = converse_response_to_anthropic(doc, model=self.model)
        self.usage.take(message["usage"])
        self.usage.stop_reason = str(message["stop_reason"])
        return orjson.dumps(message)


class ConverseStream:
    """ConverseStream's event stream in, Anthropic's SSE out.

    Each event frame names its event in ``:event-type`` (``messageStart``,
    ``contentBlockDelta``...) and carries that event's JSON as its payload;
    ``ConverseStreamToAnthropic`` turns them into Anthropic events. The usage
    comes in the last event, ``metadata``.
    """

    content_type = "text/event-stream"

    def __init__(self, model: str) -> None:
        self.model = model
        self.dropped_betas: list[str] = []
        self.usage = Usage(model=model)
        self.decoder = EventStreamDecoder()
        self.translator = ConverseStreamToAnthropic(model=model)
        self.finished = False

    def convert(self, status: int, body: bytes) -> bytes:
        return self.feed(body) + self.close()

    def feed(self, chunk: bytes) -> bytes:
        if self.finished:
            return b""
        try:
            messages = self.decoder.feed(chunk)
        except EventStreamError as exc:
            return self._error("api_error", f"corrupt event stream ({exc})")
        out = []
        for headers, payload in messages:
            piece = self._message(headers, payload)
            if piece:
                out.append(piece)
            if self.finished:
                break
        return b"".join(out)

    def close(self) -> bytes:
        if self.finished:
            return b""
        if self.translator.stopped:
            # messageStop came but not the metadata after it: finish without usage.
            out = self.translator.close()
            self._settle()
            return out
        return self._error("api_error", "the event stream ended before messageStop")

    def _settle(self) -> None:
        self.finished = True
        self.usage.take(self.translator.usage.to_anthropic())
        self.usage.stop_reason = self.translator.stop_reason or ""

    def _error(self, kind: str, message: str) -> bytes:
        self.finished = True
        self.usage.error_type, self.usage.error_message = kind, f"Bedrock: {message}"[:2000]
        return _sse("error", orjson.dumps(anthropic_error(kind, message)))

    def _message(self, headers: dict[str, Any], payload: bytes) -> bytes:
        kind = headers.get(":message-type", "event")
        if kind == "exception":
            name = str(headers.get(":exception-type", ""))
            message, _ = _message_of(payload)
            return self._error(error_type_for(500, name), f"{name}: {message}" if name else message)
        if kind == "error":
            name = str(headers.get(":error-code", ""))
            return self._error(
                error_type_for(500, name), f"{name}: {headers.get(':error-message', '')}"
            )
        try:
            event = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            return self._error("api_error", "a ConverseStream event is not JSON")
        out = self.translator.feed_event(str(headers.get(":event-type", "")), event)
        if self.translator.finished:
            self._settle()
        return out
