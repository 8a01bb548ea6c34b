"""Claude Code's sign-in through the gateway, end to end over HTTP: discovery,
the device code, the user's confirmation in the console, the token, a request
with the bearer, renewal, sign-out and deprovisioning, managed settings."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from django.test import Client

from dataplane.signin import bearer_issue
from devicelogin.models import DeviceSignin
from devicelogin.settings_policy import checksum, managed_settings_set
from governance import services
from tests.conftest import GatewayProcess, World

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signin_gateway(live_server: Any, state_dir: Any, settings: Any) -> Any:
    settings.CONTROL_PLANE_PUBLIC_URL = live_server.url
    gw = GatewayProcess(state_dir, TOLLGATE_CONTROL_PLANE_URL=live_server.url)
    yield gw
    gw.stop()
    assert "Traceback" not in gw.log(), gw.log()


@pytest.fixture
def signed(anthropic_upstream: Any, signin_gateway: GatewayProcess, publish: Any) -> Any:
    world = World(anthropic_upstream)
    publish(signin_gateway)
    return world


def start(gw: GatewayProcess) -> dict[str, Any]:
    answer = httpx.post(f"{gw.url}/oauth/device_authorization", data={"surface": "claude_code"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def poll(gw: GatewayProcess, device_code: str) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/oauth/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device_code},
        timeout=10,
    )


def confirm(user: Any, user_code: str, action: str = "approve") -> Any:
    browser = Client()
    browser.force_login(user)
    return browser.post("/device/", {"user_code": user_code.lower().replace("-", " "), "action": action})


def sign_in(gw: GatewayProcess, user: Any) -> dict[str, Any]:
    codes = start(gw)
    assert confirm(user, codes["user_code"]).status_code == 200
    answer = poll(gw, codes["device_code"])
    assert answer.status_code == 200, answer.text
    return answer.json()


def ask(gw: GatewayProcess, bearer: str, body: dict[str, Any] = BODY) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/messages", json=body, headers={"authorization": f"Bearer {bearer}", "anthropic-version": "2023-06-01"},
        timeout=20,
    )  # fmt: skip


def ready(gw: GatewayProcess, bearer: str, body: dict[str, Any] = BODY) -> httpx.Response:
    """The first answer once the new device's key is in the gateway's snapshot (published on commit)."""
    deadline = time.monotonic() + 5
    answer = ask(gw, bearer, body)
    while answer.status_code == 401 and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = ask(gw, bearer, body)
    return answer


def refused_within(gw: GatewayProcess, bearer: str, seconds: float) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        answer = ask(gw, bearer)
        if answer.status_code == 401 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_discovery_names_endpoints_on_the_gateways_own_origin(signin_gateway) -> None:
    meta = httpx.get(f"{signin_gateway.url}/.well-known/oauth-authorization-server", timeout=5).json()
    assert meta["device_authorization_endpoint"] == f"{signin_gateway.url}/oauth/device_authorization"
    assert meta["token_endpoint"] == f"{signin_gateway.url}/oauth/token"
    assert meta["revocation_endpoint"] == f"{signin_gateway.url}/oauth/revoke"


def test_a_device_signs_in_answers_renews_and_signs_out(signed, signin_gateway, live_server, ledger) -> None:
    codes = start(signin_gateway)
    assert len(codes["device_code"]) >= 43  # 256 bits
    assert codes["verification_uri"] == f"{live_server.url}/device/"
    assert codes["verification_uri_complete"].endswith(f"?user_code={codes['user_code']}")
    letters = codes["user_code"].replace("-", "")
    assert len(letters) == 8 and set(letters) <= set("BCDFGHJKLMNPQRSTVWXZ")

    waiting = poll(signin_gateway, codes["device_code"])
    assert (waiting.status_code, waiting.json()["error"]) == (400, "authorization_pending")
    assert poll(signin_gateway, codes["device_code"]).json()["error"] == "slow_down"

    page = Client()
    page.force_login(signed.charlie)
    shown = page.get(f"/device/?user_code={codes['user_code']}")
    assert shown.status_code == 200 and codes["user_code"] in shown.content.decode()
    assert poll(signin_gateway, codes["device_code"]).status_code == 400  # showing the page approves nothing
    assert confirm(signed.charlie, codes["user_code"]).status_code == 200

    time.sleep(0.1)
    tokens = poll(signin_gateway, codes["device_code"]).json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["email"] == "charlie@example.com" and tokens["refresh_token"].startswith("tgr-")
    assert poll(signin_gateway, codes["device_code"]).json()["error"] == "invalid_grant"  # single use

    signin = DeviceSignin.objects.select_related("key").get(user=signed.charlie)
    assert signin.key.team_id == signed.payments.pk  # the user's chain: their team's budgets apply
    answer = ready(signin_gateway, tokens["access_token"])
    assert answer.status_code == 200, answer.text
    (row,) = ledger(1, key_id=signin.key_id)
    assert row.user_id == signed.charlie.pk and row.team_id == signed.payments.pk

    renewed = httpx.post(
        f"{signin_gateway.url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        timeout=10,
    ).json()  # fmt: skip
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert ask(signin_gateway, renewed["access_token"]).status_code == 200

    assert httpx.post(f"{signin_gateway.url}/oauth/revoke", data={"token": renewed["refresh_token"]}, timeout=10).status_code == 200
    started = time.monotonic()
    refused = refused_within(signin_gateway, renewed["access_token"], 3)
    assert refused.status_code == 401 and time.monotonic() - started < 1.5
    assert refused.headers["x-should-retry"] == "false"
    assert "signed out" in refused.json()["error"]["message"]
    again = httpx.post(
        f"{signin_gateway.url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": renewed["refresh_token"]},
        timeout=10,
    )  # fmt: skip
    assert (again.status_code, again.json()["error"]) == (401, "invalid_grant")


def test_a_deprovisioned_user_is_refused_within_a_second_and_cannot_renew(signed, signin_gateway) -> None:
    tokens = sign_in(signin_gateway, signed.charlie)
    assert ready(signin_gateway, tokens["access_token"]).status_code == 200
    services.user_set_active(actor=signed.alice, user=signed.charlie, is_active=False)
    started = time.monotonic()
    refused = refused_within(signin_gateway, tokens["access_token"], 3)
    assert refused.status_code == 401 and time.monotonic() - started < 1.5
    renewal = httpx.post(
        f"{signin_gateway.url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        timeout=10,
    )  # fmt: skip
    assert (renewal.status_code, renewal.json()["error"]) == (401, "invalid_grant")
    assert "deactivated" in renewal.json()["error_description"]


def test_a_denied_or_unknown_code_signs_nothing_in(signed, signin_gateway) -> None:
    codes = start(signin_gateway)
    assert confirm(signed.charlie, codes["user_code"], action="deny").status_code == 200
    time.sleep(0.05)
    assert poll(signin_gateway, codes["device_code"]).json()["error"] == "access_denied"
    assert "unknown or has expired" in confirm(signed.charlie, "BBBB-BBBB").content.decode()
    assert poll(signin_gateway, "not-a-device-code").json()["error"] == "invalid_grant"
    assert not DeviceSignin.objects.exists()


def test_a_viewer_cannot_sign_a_device_in(signed, signin_gateway) -> None:
    from governance.models import Role

    viewer = services.user_create(
        actor=signed.alice, username="vera", email="vera@example.com", organization=signed.acme, role=Role.VIEWER
    )
    codes = start(signin_gateway)
    assert confirm(viewer, codes["user_code"]).status_code == 403
    assert not DeviceSignin.objects.exists()


def test_bearers_it_did_not_mint_or_that_expired_are_refused(signed, signin_gateway, settings) -> None:
    tokens = sign_in(signin_gateway, signed.charlie)
    signin = DeviceSignin.objects.select_related("key").get(user=signed.charlie)
    forged = bearer_issue(b"another pepper", user_id=signed.charlie.pk, key_prefix=signin.key.prefix, session=signin.uid)
    answer = ask(signin_gateway, forged)
    assert answer.status_code == 401 and "does not recognise" in answer.json()["error"]["message"]
    expired = bearer_issue(
        settings.KEY_PEPPER, user_id=signed.charlie.pk, key_prefix=signin.key.prefix, session=signin.uid, ttl=60,
        now=time.time() - 120,
    )  # fmt: skip
    answer = ask(signin_gateway, expired)
    assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]
    assert answer.headers["x-should-retry"] == "false"
    assert tokens["access_token"] != forged


def test_managed_settings_follow_the_checksum_rules(signed, signin_gateway) -> None:
    tokens = sign_in(signin_gateway, signed.charlie)
    url = f"{signin_gateway.url}/managed/settings"
    auth = {"authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(url, headers=auth, timeout=10).status_code == 404
    document = {"env": {"DISABLE_TELEMETRY": "1"}, "availableModels": ["claude-sonnet-4-5"], "permissions": {"deny": ["Bash(rm:*)"]}}
    managed_settings_set(actor=signed.alice, organization=signed.acme, team=None, document=document)
    answer = httpx.get(url, headers=auth, timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body["settings"] == document and body["checksum"] == checksum(document)
    assert answer.headers["etag"] == f'"{body["checksum"]}"'
    assert httpx.get(url, headers={**auth, "if-none-match": answer.headers["etag"]}, timeout=10).status_code == 304
    assert httpx.get(url, headers={**auth, "if-none-match": '"sha256:0"'}, timeout=10).status_code == 200
    team = {"model": "claude-sonnet-4-5"}
    managed_settings_set(actor=signed.alice, organization=signed.acme, team=signed.payments, document=team)
    assert httpx.get(url, headers=auth, timeout=10).json()["settings"] == team  # the team's, instead
    assert httpx.get(url, timeout=10).status_code == 401


def test_managed_settings_must_agree_with_the_allowlists(signed) -> None:
    from django.core.exceptions import ValidationError

    services.allowed_models_set(actor=signed.alice, target=signed.acme, patterns=["claude-sonnet-*"])
    with pytest.raises(ValidationError, match="not allowed by the organization"):
        managed_settings_set(
            actor=signed.alice, organization=signed.acme, team=None, document={"availableModels": ["claude-opus-4-1"]}
        )
    with pytest.raises(ValidationError, match="env must be"):
        managed_settings_set(actor=signed.alice, organization=signed.acme, team=None, document={"env": []})


def test_a_team_budget_that_cannot_cover_the_request_answers_claude_codes_billing_429(signed, signin_gateway, publish) -> None:
    from decimal import Decimal

    services.price_set(actor=signed.alice, model="claude-sonnet-4-5", input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15"))
    services.budget_set(
        actor=signed.alice, level="team", organization=signed.acme, team=signed.payments,
        amount_usd=Decimal("0.01"), period="monthly",
    )  # fmt: skip
    tokens = sign_in(signin_gateway, signed.charlie)
    publish(signin_gateway)
    # Claude Code's own max_tokens: the reservation (2,048 output tokens at $15/M) is more than $0.01.
    body = {**BODY, "max_tokens": 128000}
    answer = ready(signin_gateway, tokens["access_token"], body)
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["type"] == "billing_error"
    assert "Team 'Payments' monthly budget of $0.01" in answer.json()["error"]["message"]
    h = answer.headers
    assert h["x-should-retry"] == "false" and int(h["retry-after"]) > 0
    assert h["anthropic-ratelimit-unified-status"] == "rejected"
    assert h["anthropic-ratelimit-unified-overage-scope"] == "group_pool"
    assert h["anthropic-ratelimit-unified-overage-period"] == "monthly"
    assert h["anthropic-ratelimit-unified-overage-surpassed-threshold"] == "1"
    assert "anthropic-ratelimit-unified-representative-claim" not in h


def test_usage_in_dollars_matches_the_budget_the_headers_describe(signed, signin_gateway, publish) -> None:
    from decimal import Decimal

    tokens = sign_in(signin_gateway, signed.charlie)
    url = f"{signin_gateway.url}/api/oauth/usage"
    auth = {"authorization": f"Bearer {tokens['access_token']}"}
    uncapped = httpx.get(url, headers=auth, timeout=10)
    assert uncapped.status_code == 200 and uncapped.headers["cache-control"] == "no-store"
    body = uncapped.json()
    assert body["limits"] == [] and body["extra_usage"]["monthly_limit"] is None
    assert set(body["extra_usage"]["daily"]) == {"limit", "used_credits", "utilization"}

    services.price_set(actor=signed.alice, model="claude-sonnet-4-5", input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15"))
    services.budget_set(
        actor=signed.alice, level="team", organization=signed.acme, team=signed.payments,
        amount_usd=Decimal("500"), period="monthly",
    )  # fmt: skip
    publish(signin_gateway)
    answer = ready(signin_gateway, tokens["access_token"])
    assert answer.status_code == 200, answer.text
    reset = int(answer.headers["anthropic-ratelimit-unified-overage-reset"])
    capped = httpx.get(url, headers=auth, timeout=10).json()
    assert capped["extra_usage"]["monthly_limit"] == 50000 and capped["extra_usage"]["currency"] == "USD"
    (limit,) = capped["limits"]
    assert limit["group"] == "monthly" and limit["is_active"] and limit["kind"] == "spend"
    from datetime import UTC, datetime

    assert datetime.strptime(limit["resets_at"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC).timestamp() == reset
    assert httpx.get(url, timeout=10).status_code == 401


def test_a_model_outside_the_allowlist_is_a_400_naming_it(signed, signin_gateway, publish) -> None:
    services.allowed_models_set(actor=signed.alice, target=signed.acme, patterns=["claude-haiku-*"])
    tokens = sign_in(signin_gateway, signed.charlie)
    publish(signin_gateway)
    answer = ready(signin_gateway, tokens["access_token"])
    assert answer.status_code == 400 and "claude-sonnet-4-5" in answer.json()["error"]["message"]
    assert answer.json()["error"]["type"] == "invalid_request_error"


@pytest.fixture(autouse=True)
def fresh_confirm_counter() -> Any:
    """The counter of this address's confirmations (the test client's), empty before and after each test."""
    import hashlib

    from django.core.cache import cache

    key = "device-confirm:" + hashlib.sha256(b"127.0.0.1").hexdigest()[:32]
    cache.delete(key)
    yield
    cache.delete(key)


def test_confirmations_are_limited_per_address(signed, signin_gateway) -> None:
    from devicelogin.views import CONFIRM_LIMIT

    browser = Client()
    browser.force_login(signed.charlie)
    for _ in range(CONFIRM_LIMIT):
        assert browser.post("/device/", {"user_code": "BBBB-BBBB", "action": "approve"}).status_code == 200
    codes = start(signin_gateway)
    # Over the limit, even the right code is not taken, whatever X-Forwarded-For says.
    refused = browser.post("/device/", {"user_code": codes["user_code"]}, HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert refused.status_code == 429
    assert not DeviceSignin.objects.exists()


def test_sign_in_calls_reach_a_control_plane_at_an_internal_address(live_server, state_dir, settings) -> None:
    """Workers may reach the control plane by an internal name: the relayed call
    carries the public host, which is the only one the control plane accepts."""
    settings.ALLOWED_HOSTS = ["tollgate.example.test"]
    settings.CONTROL_PLANE_PUBLIC_URL = "https://tollgate.example.test"
    gw = GatewayProcess(
        state_dir, TOLLGATE_CONTROL_PLANE_URL="https://tollgate.example.test",
        TOLLGATE_CONTROL_PLANE_INTERNAL_URL=live_server.url,
    )  # fmt: skip
    try:
        codes = start(gw)
        assert codes["verification_uri"] == "https://tollgate.example.test/device/"
    finally:
        gw.stop()
