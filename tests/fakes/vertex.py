"""A fake Google Vertex AI (Anthropic models) and its OAuth token endpoint, on 127.0.0.1.

One aiohttp server plays both parts of Google:

- ``POST /token``: the service-account JWT-bearer grant. The assertion's RS256
  signature is verified against the test key pair's public key, and its
  ``iss``, ``aud`` (Google's token endpoint, or this token URI), ``scope`` and
  lifetime are checked, as Google does; the answer is ``{"access_token", "expires_in", "token_type"}``.
- ``POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict``
  (and ``:streamRawPredict``, ``count-tokens:rawPredict``): the bearer token must
  be one this fake issued and not expired, the body must carry
  ``anthropic_version: vertex-2023-10-16`` and no ``model`` (count-tokens: a
  model). Answers are the fake Anthropic API's (same conversation script, same
  SSE), so a Bash tool turn works as it does there.

Failures: ``fail_next`` queues an Anthropic-shaped error (Vertex relays those),
``fail_next_google`` a Google one (optionally as a list of one, as some
front ends send), ``cut_next_stream`` drops the connection mid-stream.
``token_delay`` slows the token endpoint; ``token_expires_in`` sets lifetimes.

``service_account_json()`` is a key for this fake: its ``token_uri`` points here.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.anthropic import FakeAnthropic, Received, estimate_tokens

VERTEX_VERSION = "vertex-2023-10-16"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# google-auth always signs for Google's own token endpoint, whatever the key's
# token_uri says (google/oauth2/service_account.py), and Google accepts that.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_tokens = itertools.count(1)
_KEY: rsa.RSAPrivateKey | None = None


def shared_key() -> rsa.RSAPrivateKey:
    """One RSA key per test run: generating one costs tens of milliseconds."""
    global _KEY
    if _KEY is None:
        _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEY


def service_account_info(
    token_uri: str,
    *,
    project_id: str = "tollgate-test",
    key: rsa.RSAPrivateKey | None = None,
    client_email: str = "gateway@tollgate-test.iam.gserviceaccount.com",
) -> dict[str, Any]:
    pem = (key or shared_key()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "fakekey0001",
        "private_key": pem.decode(),
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass
class GoogleFailure:
    status: int
    body: bytes


class FakeVertex(FakeAnthropic):
    def __init__(self, project_id: str = "tollgate-test", record: bool = True) -> None:
        super().__init__(record=record)
        self.project_id = project_id
        self.key = shared_key()
        self.client_email = "gateway@tollgate-test.iam.gserviceaccount.com"
        self.token_requests = 0
        self.token_delay = 0.0
        self.token_expires_in = 3600
        self.issued: dict[str, float] = {}  # access token -> expiry (time.time())
        self.token_failures: list[GoogleFailure] = []
        self.google_failures: list[GoogleFailure] = []

    # --- control from tests --------------------------------------------------

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def service_account(self, **overrides: Any) -> dict[str, Any]:
        info = service_account_info(
            self.token_uri, project_id=self.project_id, key=self.key, client_email=self.client_email
        )
        return info | overrides

    def service_account_json(self, **overrides: Any) -> str:
        return orjson.dumps(self.service_account(**overrides)).decode()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.token_requests = 0
            self.token_delay = 0.0
            self.token_expires_in = 3600
            self.issued.clear()
            self.token_failures.clear()
            self.google_failures.clear()

    def fail_next_google(
        self, status: int, google_status: str, message: str, *, listed: bool = False
    ) -> None:
        error = {"error": {"code": status, "message": message, "status": google_status}}
        body = orjson.dumps([error] if listed else error)
        with self._lock:
            self.google_failures.append(GoogleFailure(status, body))

    def fail_next_token(
        self,
        status: int = 400,
        error: str = "invalid_grant",
        description: str = "Invalid JWT Signature.",
    ) -> None:
        body = orjson.dumps({"error": error, "error_description": description})
        with self._lock:
            self.token_failures.append(GoogleFailure(status, body))

    def predictions_received(self) -> list[Received]:
        return [r for r in self.received if "/publishers/" in r.path]

    # --- server ----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/token", self.token)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{spec}",
            self.predict,
        )
        return app

    # --- OAuth ----------------------------------------------------------------

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> web.Response:
        return web.Response(
            status=status,
            body=orjson.dumps({"error": error, "error_description": description}),
            content_type="application/json",
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self._lock:
            self.token_requests += 1
            failure = self.token_failures.pop(0) if self.token_failures else None
            delay = self.token_delay
        if delay:
            await asyncio.sleep(delay)
        if failure is not None:
            return web.Response(
                status=failure.status, body=failure.body, content_type="application/json"
            )
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._oauth_error(400, "unsupported_grant_type", "Invalid grant_type")
        problem = self._check_assertion(str(form.get("assertion") or ""))
        if problem:
            return self._oauth_error(400, "invalid_grant", problem)
        access = f"ya29.fake-{next(_tokens):08d}"
        with self._lock:
            self.issued[access] = time.time() + self.token_expires_in
        doc = {"access_token": access, "expires_in": self.token_expires_in, "token_type": "Bearer"}
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    def _check_assertion(self, assertion: str) -> str:
        parts = assertion.split(".")
        if len(parts) != 3:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        try:
            header = orjson.loads(_b64(parts[0]))
            claims = orjson.loads(_b64(parts[1]))
            signature = _b64(parts[2])
        except (ValueError, orjson.JSONDecodeError):
            return "Invalid JWT: malformed"
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256"
        try:
            self.key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return "Invalid JWT Signature."
        now = time.time()
        if claims.get("iss") != self.client_email:
            return "Invalid JWT: iss is not the service account"
        if claims.get("aud") not in (self.token_uri, GOOGLE_TOKEN_AUDIENCE):
            return f"Invalid JWT: aud must be {GOOGLE_TOKEN_AUDIENCE}"
        if SCOPE not in str(claims.get("scope", "")).split():
            return "Invalid JWT: scope must include cloud-platform"
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp) or exp - iat > 3600:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        return ""

    # --- Vertex ---------------------------------------------------------------

    @staticmethod
    def _google_error(status: int, google_status: str, message: str) -> web.Response:
        body = {"error": {"code": status, "message": message, "status": google_status}}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")

    async def predict(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        rec = Received(
            request.method, request.path, request.query_string, dict(request.headers), raw, body
        )
        with self._lock:
            if self.record:
                self.received.append(rec)
            google_failure = self.google_failures.pop(0) if self.google_failures else None
            failure = self.failures.pop(0) if self.failures and not google_failure else None
            auth = request.headers.get("authorization", "")
            expiry = (
                self.issued.get(auth.removeprefix("Bearer "))
                if auth.startswith("Bearer ")
                else None
            )
        if expiry is None or expiry < time.time():
            return self._google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        info = request.match_info
        if info["project"] != self.project_id:
            return self._google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission denied on resource project {info['project']}.",
            )
        if info["publisher"] != "anthropic":
            return self._google_error(404, "NOT_FOUND", f"Publisher {info['publisher']} not found.")
        model, _, action = info["spec"].rpartition(":")
        if action not in ("rawPredict", "streamRawPredict") or not model:
            return self._google_error(404, "NOT_FOUND", f"Unknown method {info['spec']}.")
        if google_failure is not None:
            return web.Response(
                status=google_failure.status,
                body=google_failure.body,
                content_type="application/json",
            )
        if failure is not None:
            return self._error(failure.status, failure.error_type, failure.message, failure.headers)
        if not isinstance(body, dict):
            return self._google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if body.get("anthropic_version") != VERTEX_VERSION:
            return self._error(
                400,
                "invalid_request_error",
                "anthropic_version: Input should be 'vertex-2023-10-16'",
            )
        if model == "count-tokens":
            if action != "rawPredict" or not body.get("model"):
                return self._error(400, "invalid_request_error", "model: Field required")
            return web.Response(
                body=orjson.dumps({"input_tokens": estimate_tokens(body)}),
                content_type="application/json",
            )
        if "model" in body:
            return self._error(
                400, "invalid_request_error", "model: Extra inputs are not permitted"
            )
        if (action == "streamRawPredict") != bool(body.get("stream")):
            return self._error(400, "invalid_request_error", f"stream does not match {action}")
        if "max_tokens" not in body:
            return self._error(400, "invalid_request_error", "max_tokens: Field required")
        return await self._answer(request, body | {"model": model})

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        blocks = self._plan(body)
        usage = self._usage(body)
        output_tokens = sum(len(orjson.dumps(b)) // 8 + 1 for b in blocks)
        stop_reason = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
        msg_id = f"msg_vrtx_fake{next(_tokens):012d}"
        if not body.get("stream"):
            doc = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage | {"output_tokens": output_tokens},
            }
            return web.Response(body=orjson.dumps(doc), content_type="application/json")
        with self._lock:
            cut = self.cut_streams > 0
            if cut:
                self.cut_streams -= 1
        response = web.StreamResponse(status=200, headers={"cache-control": "no-cache"})
        response.content_type = "text/event-stream"
        await response.prepare(request)
        try:
            for i, event in enumerate(
                self._events(msg_id, body["model"], blocks, usage, output_tokens, stop_reason)
            ):
                if cut and i == 4:
                    request.transport.close()  # type: ignore[union-attr]
                    return response
                await response.write(event)
                if self.event_delay:
                    await asyncio.sleep(self.event_delay)
        except (ConnectionResetError, asyncio.CancelledError):
            with self._lock:
                self.streams_cancelled += 1
            raise
        await response.write_eof()
        return response
