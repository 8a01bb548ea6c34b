"""A fake Bedrock runtime (and STS) that speaks the real wire format, on 127.0.0.1.

Every request must carry a SigV4 signature the fake recomputes with botocore
from the known secret; a mismatch gets Bedrock's 403 ``InvalidSignatureException``.
It answers, for Anthropic model ids:

- ``POST /model/{id}/invoke``: an Anthropic message (JSON);
- ``POST /model/{id}/invoke-with-response-stream``: the same events as
  Anthropic's SSE, each base64 inside an event-stream ``chunk`` frame, the last
  carrying ``amazon-bedrock-invocationMetrics``;
- ``POST /model/{id}/count-tokens``: ``{"inputTokens": N}``;
- ``POST /model/{id}/converse`` and ``/converse-stream`` for any model: the
  same conversation in Converse's shape, the stream as event-stream frames
  named by ``:event-type`` (``messageStart`` ... ``metadata``), tool input in
  several ``toolUse.input`` fragments;
- ``POST /`` with ``Action=AssumeRole``: STS's XML with temporary keys, which
  the Bedrock routes then accept.

Like Bedrock it refuses bodies with ``model``/``stream`` keys, without
``anthropic_version``, or naming a beta it does not know (400
``ValidationException``). The conversation logic is ``FakeAnthropic``'s, so a
``[[bash: cmd]]`` turn with a Bash tool offered becomes a tool_use here too.

Failures: ``fail_next(status, "ThrottlingException")`` (an HTTP error),
``exception_next("throttlingException")`` (an exception frame mid-stream),
``cut_next_stream()`` (the connection drops in the middle of a frame).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hmac
import itertools
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from dataplane.providers.eventstream import encode_message
from tests.fakes.anthropic import FakeAnthropic, estimate_tokens

ACCESS_KEY_ID = "AKIAFAKEBEDROCK00001"
SECRET_ACCESS_KEY = "fake/secret/key/0123456789abcdefghijklmn"
KNOWN_BETAS = frozenset(
    {
        "interleaved-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "fine-grained-tool-streaming-2025-05-14",
        "token-efficient-tools-2025-02-19",
        "computer-use-2025-01-24",
        # Context editing, which Claude Code turns on for the 4.5 family.
        "context-management-2025-06-27",
    }
)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_ids = itertools.count(1)


@dataclass
class Received:
    method: str
    path: str  # raw, as sent (``%3A`` stays encoded)
    headers: dict[str, str]
    raw: bytes
    body: Any


@dataclass
class Failure:
    status: int
    error_type: str
    message: str


@dataclass
class Issued:
    secret: str
    token: str | None = None


@dataclass
class FakeBedrock:
    region: str = "us-east-1"
    role_arn: str = "arn:aws:iam::123456789012:role/tollgate-bedrock"
    external_id: str | None = None
    known_betas: frozenset[str] = KNOWN_BETAS
    received: list[Received] = field(default_factory=list)
    sts_calls: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self.keys: dict[str, Issued] = {ACCESS_KEY_ID: Issued(SECRET_ACCESS_KEY)}
        self.failures: list[Failure] = []
        self.exceptions: list[tuple[str, str]] = []
        self.cut_streams = 0
        self.session_seconds: int | None = None  # overrides the requested DurationSeconds
        self._anthropic = FakeAnthropic(record=False)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- control from tests --------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credential(self, **extra: str) -> str:
        return orjson.dumps(
            {"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, **extra}
        ).decode()

    def fail_next(self, status: int, error_type: str, message: str = "") -> None:
        with self._lock:
            self.failures.append(Failure(status, error_type, message or f"fake {error_type}"))

    def exception_next(self, name: str, message: str = "") -> None:
        with self._lock:
            self.exceptions.append((name, message or f"fake {name}"))

    def cut_next_stream(self) -> None:
        with self._lock:
            self.cut_streams += 1

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.failures.clear()
            self.exceptions.clear()
            self.cut_streams = 0
            self.sts_calls = 0

    # --- server ----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self.sts)
        app.router.add_post("/model/{model}/invoke", self.invoke)
        app.router.add_post("/model/{model}/invoke-with-response-stream", self.invoke_stream)
        app.router.add_post("/model/{model}/count-tokens", self.count_tokens)
        app.router.add_post("/model/{model}/converse", self.converse)
        app.router.add_post("/model/{model}/converse-stream", self.converse_stream)
        return app

    def start(self) -> FakeBedrock:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            runner = web.AppRunner(self.app(), access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-bedrock", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # --- checks ----------------------------------------------------------------

    @staticmethod
    def _error(status: int, error_type: str, message: str) -> web.Response:
        headers = {
            "x-amzn-ErrorType": error_type + _ERROR_TYPE_SUFFIX,
            "x-amzn-RequestId": f"fake-{next(_ids)}",
        }
        return web.Response(
            status=status,
            body=orjson.dumps({"message": message}),
            content_type="application/json",
            headers=headers,
        )

    def _signature_problem(self, request: web.Request, raw: bytes, service: str) -> str | None:
        match = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if match is None:
            return "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'."
        issued = self.keys.get(match["key"])
        if issued is None:
            return "The security token included in the request is invalid."
        if issued.token is not None and request.headers.get("X-Amz-Security-Token") != issued.token:
            return "The security token included in the request is invalid."
        stamp = request.headers.get("X-Amz-Date", "")
        try:
            when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            return "Missing or malformed X-Amz-Date."
        if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 900:
            return "Signature expired."
        if (
            match["region"] != self.region
            or match["service"] != service
            or match["date"] != stamp[:8]
        ):
            return f"Credential should be scoped to a valid region and service {service}."
        signed = match["signed"].split(";")
        if "host" not in signed:
            return "'Host' must be a signed header."
        headers = {name: request.headers.get(name, "") for name in signed}
        aws = AWSRequest(
            method=request.method,
            url=f"http://{request.host}{request.raw_path}",
            data=raw,
            headers=headers,
        )
        aws.context["timestamp"] = stamp
        auth = SigV4Auth(
            Credentials(match["key"], issued.secret, issued.token), service, match["region"]
        )
        expected = auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)
        if not hmac.compare_digest(expected, match["signature"]):
            return (
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            )
        return None

    async def _admit(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        with self._lock:
            self.received.append(
                Received(request.method, request.raw_path, dict(request.headers), raw, body)
            )
            failure = self.failures.pop(0) if self.failures else None
        problem = self._signature_problem(request, raw, "bedrock")
        if problem is not None:
            kind = (
                "UnrecognizedClientException"
                if "security token" in problem
                else "InvalidSignatureException"
            )
            return body, self._error(403, kind, problem)
        if failure is not None:
            return body, self._error(failure.status, failure.error_type, failure.message)
        if not isinstance(body, dict):
            return body, self._error(
                400,
                "ValidationException",
                "Malformed input request, please reformat your input and try again.",
            )
        return body, None

    def _invalid(self, body: dict[str, Any]) -> str | None:
        for key in ("model", "stream"):
            if key in body:
                return f"Malformed input request: #: extraneous key [{key}] is not permitted, please reformat your input and try again."
        if body.get("anthropic_version") != "bedrock-2023-05-31":
            return "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again."
        if "max_tokens" not in body:
            return "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again."
        betas = body.get("anthropic_beta") or []
        if not isinstance(betas, list):
            return "Malformed input request: #/anthropic_beta: expected type: JSONArray"
        unknown = [b for b in betas if b not in self.known_betas]
        if unknown:
            return "invalid beta flag"
        return None

    # --- Bedrock ---------------------------------------------------------------

    async def count_tokens(self, request: web.Request) -> web.Response:
        wrapper, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        model = unquote(request.match_info["model"])
        if not model.startswith("anthropic."):
            return self._error(
                400, "ValidationException", "The provided model doesn't support counting tokens."
            )
        try:
            body = orjson.loads(
                base64.b64decode(wrapper["input"]["invokeModel"]["body"], validate=True)
            )
        except (KeyError, TypeError, ValueError):
            return self._error(
                400,
                "ValidationException",
                "input.invokeModel.body must be a base64-encoded InvokeModel body.",
            )
        problem = self._invalid(body)
        if problem is not None:
            return self._error(400, "ValidationException", problem)
        return web.Response(
            body=orjson.dumps({"inputTokens": estimate_tokens(body)}),
            content_type="application/json",
        )

    def _answer(
        self, model: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], list[bytes], dict[str, int]]:
        blocks = self._anthropic._plan(body)
        usage = self._anthropic._usage(body)
        output_tokens = sum(len(orjson.dumps(b)) // 8 + 1 for b in blocks)
        stop_reason = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
        msg_id = f"msg_bdrk_fake{next(_ids):010d}"
        doc = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage | {"output_tokens": output_tokens},
        }
        sse = list(
            self._anthropic._events(msg_id, model, blocks, usage, output_tokens, stop_reason)
        )
        events = [chunk[chunk.index(b"\ndata: ") + 7 : -2] for chunk in sse]
        return doc, events, usage | {"output_tokens": output_tokens}

    async def invoke(self, request: web.Request) -> web.Response:
        body, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        problem = self._invalid(body)
        if problem is not None:
            return self._error(400, "ValidationException", problem)
        model = unquote(request.match_info["model"])
        doc, _, usage = self._answer(model, body)
        headers = {
            "x-amzn-RequestId": f"fake-{next(_ids)}",
            "X-Amzn-Bedrock-Input-Token-Count": str(usage["input_tokens"]),
            "X-Amzn-Bedrock-Output-Token-Count": str(usage["output_tokens"]),
        }
        return web.Response(
            body=orjson.dumps(doc), content_type="application/json", headers=headers
        )

    @staticmethod
    def _frame(event: bytes) -> bytes:
        payload = orjson.dumps({"bytes": base64.b64encode(event).decode()})
        headers = {
            ":event-type": "chunk",
            ":content-type": "application/json",
            ":message-type": "event",
        }
        return encode_message(headers, payload)

    async def invoke_stream(self, request: web.Request) -> web.StreamResponse:
        body, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        problem = self._invalid(body)
        if problem is not None:
            return self._error(400, "ValidationException", problem)
        model = unquote(request.match_info["model"])
        _, events, usage = self._answer(model, body)
        with self._lock:
            cut = self.cut_streams > 0
            if cut:
                self.cut_streams -= 1
            exception = self.exceptions.pop(0) if self.exceptions else None
        last = orjson.loads(events[-1])
        last["amazon-bedrock-invocationMetrics"] = {
            "inputTokenCount": usage["input_tokens"],
            "outputTokenCount": usage["output_tokens"],
            "invocationLatency": 1234,
            "firstByteLatency": 321,
            "cacheReadInputTokenCount": usage["cache_read_input_tokens"],
            "cacheWriteInputTokenCount": usage["cache_creation_input_tokens"],
        }
        events[-1] = orjson.dumps(last)
        response = web.StreamResponse(
            status=200,
            headers={
                "x-amzn-RequestId": f"fake-{next(_ids)}",
                "X-Amzn-Bedrock-Content-Type": "application/json",
            },
        )
        response.content_type = "application/vnd.amazon.eventstream"
        await response.prepare(request)
        for i, event in enumerate(events):
            frame = self._frame(event)
            if cut and i == 4:
                await response.write(frame[: len(frame) // 2])
                request.transport.close()  # type: ignore[union-attr]
                return response
            if exception is not None and i == 4:
                name, message = exception
                headers = {
                    ":exception-type": name,
                    ":content-type": "application/json",
                    ":message-type": "exception",
                }
                await response.write(encode_message(headers, orjson.dumps({"message": message})))
                break
            await response.write(frame)
        await response.write_eof()
        return response

    # --- Converse ----------------------------------------------------------------

    @staticmethod
    def _converse_invalid(body: dict[str, Any]) -> str | None:
        for key in ("model", "stream", "anthropic_version", "max_tokens", "tools"):
            if key in body:
                return f"The model returned the following errors: extraneous key [{key}] is not permitted"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "A conversation must start with a user message."
        if messages[0].get("role") != "user":
            return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
        tool_blocks = False
        for i, message in enumerate(messages):
            if i and message.get("role") == messages[i - 1].get("role"):
                return "A conversation must alternate between user and assistant roles."
            content = message.get("content")
            if not isinstance(content, list) or not content:
                return f"The content field in the Message object at messages.{i} is empty."
            for block in content:
                if "text" in block and not str(block["text"]).strip():
                    return "The text field in the ContentBlock object is blank."
                if "toolUse" in block or "toolResult" in block:
                    tool_blocks = True
        if tool_blocks and "toolConfig" not in body:
            return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        for block in body.get("system") or []:
            if not str(block.get("text", "")).strip():
                return "The text field in the SystemContentBlock object is blank."
        return None

    @staticmethod
    def _as_anthropic(body: dict[str, Any]) -> dict[str, Any]:
        """A Converse body in Anthropic's terms, for ``FakeAnthropic``'s plan."""
        messages = []
        for message in body["messages"]:
            content = []
            for block in message["content"]:
                if "text" in block:
                    content.append({"type": "text", "text": block["text"]})
                elif "toolResult" in block:
                    inner = " ".join(
                        p.get("text", "") or orjson.dumps(p.get("json")).decode()
                        for p in block["toolResult"].get("content") or []
                    )
                    content.append({"type": "tool_result", "content": inner})
            messages.append({"role": message["role"], "content": content})
        tools = [
            {"name": t["toolSpec"]["name"]}
            for t in (body.get("toolConfig") or {}).get("tools") or []
            if "toolSpec" in t
        ]
        return {"messages": messages, "system": body.get("system") or "", "tools": tools}

    def _converse_answer(
        self, body: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], str, dict[str, int]]:
        doc = self._as_anthropic(body)
        blocks = self._anthropic._plan(doc)
        content: list[dict[str, Any]] = []
        for b in blocks:
            if b["type"] == "text":
                content.append({"text": b["text"]})
            elif b["type"] == "tool_use":
                content.append(
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_" + b["id"][-10:],
                            "name": b["name"],
                            "input": b["input"],
                        }
                    }
                )
        stop = "tool_use" if "toolUse" in content[-1] else "end_turn"
        inp = estimate_tokens(doc)
        out = sum(len(orjson.dumps(b)) // 8 + 1 for b in content)
        usage = {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out}
        return content, stop, usage

    async def converse(self, request: web.Request) -> web.Response:
        body, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        problem = self._converse_invalid(body)
        if problem is not None:
            return self._error(400, "ValidationException", problem)
        content, stop, usage = self._converse_answer(body)
        doc = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": usage,
            "metrics": {"latencyMs": 123},
        }
        return web.Response(
            body=orjson.dumps(doc),
            content_type="application/json",
            headers={"x-amzn-RequestId": f"fake-{next(_ids)}"},
        )

    @staticmethod
    def _converse_events(
        content: list[dict[str, Any]], stop: str, usage: dict[str, int]
    ) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
        for i, block in enumerate(content):
            if "text" in block:
                text = block["text"]
                for j in range(0, len(text), 5):
                    events.append(
                        (
                            "contentBlockDelta",
                            {"delta": {"text": text[j : j + 5]}, "contentBlockIndex": i},
                        )
                    )
            else:
                use = block["toolUse"]
                events.append(
                    (
                        "contentBlockStart",
                        {
                            "start": {
                                "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}
                            },
                            "contentBlockIndex": i,
                        },
                    )
                )
                raw = orjson.dumps(use["input"]).decode()
                for j in range(0, len(raw), 7):
                    events.append(
                        (
                            "contentBlockDelta",
                            {
                                "delta": {"toolUse": {"input": raw[j : j + 7]}},
                                "contentBlockIndex": i,
                            },
                        )
                    )
            events.append(("contentBlockStop", {"contentBlockIndex": i}))
        events.append(("messageStop", {"stopReason": stop}))
        events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 123}}))
        return events

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        body, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        problem = self._converse_invalid(body)
        if problem is not None:
            return self._error(400, "ValidationException", problem)
        content, stop, usage = self._converse_answer(body)
        with self._lock:
            cut = self.cut_streams > 0
            if cut:
                self.cut_streams -= 1
            exception = self.exceptions.pop(0) if self.exceptions else None
        response = web.StreamResponse(
            status=200, headers={"x-amzn-RequestId": f"fake-{next(_ids)}"}
        )
        response.content_type = "application/vnd.amazon.eventstream"
        await response.prepare(request)
        for i, (name, event) in enumerate(self._converse_events(content, stop, usage)):
            # Bedrock pads each event with "p" so its size says nothing of the content.
            payload = orjson.dumps(event | {"p": "abcdefghij"[: i % 10]})
            frame = encode_message(
                {
                    ":event-type": name,
                    ":content-type": "application/json",
                    ":message-type": "event",
                },
                payload,
            )
            if cut and i == 3:
                await response.write(frame[: len(frame) // 2])
                request.transport.close()  # type: ignore[union-attr]
                return response
            if exception is not None and i == 3:
                ename, message = exception
                headers = {
                    ":exception-type": ename,
                    ":content-type": "application/json",
                    ":message-type": "exception",
                }
                await response.write(encode_message(headers, orjson.dumps({"message": message})))
                break
            await response.write(frame)
        await response.write_eof()
        return response

    # --- STS -------------------------------------------------------------------

    async def sts(self, request: web.Request) -> web.Response:
        raw = await request.read()
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        problem = self._signature_problem(request, raw, "sts")
        if problem is not None:
            return self._sts_error(403, "SignatureDoesNotMatch", problem)
        if form.get("Action") != "AssumeRole":
            return self._sts_error(
                400, "InvalidAction", f"Could not find operation {form.get('Action')}"
            )
        if form.get("RoleArn") != self.role_arn or form.get("ExternalId") != self.external_id:
            return self._sts_error(
                403,
                "AccessDenied",
                f"User is not authorized to perform: sts:AssumeRole on resource: {form.get('RoleArn')}",
            )
        with self._lock:
            self.sts_calls += 1
        seconds = self.session_seconds or int(form.get("DurationSeconds", 3600))
        key = f"ASIAFAKE{next(_ids):012d}"
        issued = Issued(secrets.token_urlsafe(30), secrets.token_urlsafe(60))
        self.keys[key] = issued
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
        xml = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{key}</AccessKeyId>
      <SecretAccessKey>{issued.secret}</SecretAccessKey>
      <SessionToken>{issued.token}</SessionToken>
      <Expiration>{expires.strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAFAKE:{form.get("RoleSessionName", "")}</AssumedRoleId>
      <Arn>{self.role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")}/{form.get("RoleSessionName", "")}</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>fake-{next(_ids)}</RequestId></ResponseMetadata>
</AssumeRoleResponse>"""
        return web.Response(body=xml.encode(), content_type="text/xml")

    @staticmethod
    def _sts_error(status: int, code: str, message: str) -> web.Response:
        xml = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>fake-{next(_ids)}</RequestId></ErrorResponse>"
        )
        return web.Response(status=status, body=xml.encode(), content_type="text/xml")
