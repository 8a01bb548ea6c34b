"""The real Claude Code CLI signs in with ``/login`` to a company gateway and
then answers with no key and no API variables: first against Anthropic's own
gateway (``claude gateway``, which proves the harness and the contract), then
against Tollgate."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayProcess, World, free_port
from tests.e2e.signin import ClaudeSignin, Shown, can_run, result_of

CHROMIUM = "/usr/bin/chromium"
MODEL = "claude-sonnet-4-5"
HOST_MANAGED = Path("/etc/claude-code")

pytestmark = pytest.mark.skipif(bool(can_run()), reason=can_run() or "runnable")


def browser() -> Any:
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def launch(p: Any) -> Any:
    return p.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )


@pytest.fixture
def host_etc_untouched() -> Iterator[None]:
    before = HOST_MANAGED.exists()
    yield
    assert HOST_MANAGED.exists() == before, "the machine's /etc/claude-code changed"


# -- Anthropic's gateway -------------------------------------------------------


@pytest.fixture
def anthropic_gateway(tmp_path: Path, anthropic_upstream: Any) -> Iterator[Any]:
    from tests.e2e.anthropic_gateway import AnthropicGateway, postgres_reachable

    if not postgres_reachable():
        pytest.skip("claude gateway keeps its state in PostgreSQL: none on 127.0.0.1:5432")
    from tests.identity.provider import LocalOidcProvider

    port = free_port()
    idp = LocalOidcProvider(
        directory=tmp_path,
        client_id="claude-gateway",
        client_secret=secrets.token_urlsafe(24),
        redirect_uri=f"http://127.0.0.1:{port}/oauth/callback",
    )
    idp.accounts({"engineer": {"email": "engineer@example.com", "email_verified": True, "name": "Engineer", "groups": ["engineering"]}})  # fmt: skip
    try:
        gw = AnthropicGateway(
            tmp_path,
            upstream_url=anthropic_upstream.url,
            upstream_key=anthropic_upstream.api_key,
            idp=idp,
            port=port,
        )
    except Exception:
        idp.stop()
        raise
    yield gw
    gw.stop()
    idp.stop()


def approve_at_anthropic_gateway(shown: Shown, login: str) -> None:
    """The browser leg at claude gateway: confirm the code, sign in at the IdP."""
    with browser() as p:
        chromium = launch(p)
        try:
            page = chromium.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{shown.verification_url}?user_code={shown.user_code}")
            assert page.locator(".code-display").inner_text().strip() == shown.user_code
            page.locator("button.go").click()
            page.locator("input[name=login]").fill(login)
            page.locator("input[name=password]").fill("any password")
            page.locator("button[type=submit]").click()
            page.get_by_text("signed in").wait_for()
        finally:
            chromium.close()


def test_the_harness_signs_in_through_anthropics_gateway_and_answers(
    anthropic_gateway: Any, anthropic_upstream: Any, tmp_path: Path, host_etc_untouched: None
) -> None:
    with ClaudeSignin(tmp_path / "cli", anthropic_gateway.url) as cli:
        shown = cli.start()
        assert shown.verification_url == f"{anthropic_gateway.url}/device"
        assert (
            "Trust gateway 127.0.0.1?" in cli.screens[-2].text
            and "http-loopback" in cli.screens[-2].text
        )
        approve_at_anthropic_gateway(shown, "engineer")
        cli.wait_connected()
        stored = cli.credentials()
        assert stored["enterpriseGateway"]["url"] == anthropic_gateway.url
        assert stored["enterpriseGateway"]["jwt"].startswith("eyJ")
        assert stored["gatewayTrust"] == {"127.0.0.1": "http-loopback"}

        proc = cli.claude_p("say hi", "--output-format", "json")
        result = result_of(proc)
        assert proc.returncode == 0 and result["is_error"] is False, proc.stderr[-2000:]
        assert "Hello from the fake Anthropic API" in result["result"]
        print(f"\nclaude gateway sign-in screens: {cli.timings()}")
    answered = [e for e in anthropic_gateway.events("inference") if e["path"] == "/v1/messages"]
    assert answered and all(
        e["email"] == "engineer@example.com" and e["status"] == 200 for e in answered
    ), answered
    assert anthropic_upstream.messages_received()


# -- Tollgate ------------------------------------------------------------------


@pytest.fixture
def tollgate(live_server: Any, state_dir: Path, settings: Any) -> Iterator[GatewayProcess]:
    """A data plane whose sign-in endpoints reach this test's control plane."""
    settings.CONTROL_PLANE_PUBLIC_URL = live_server.url
    gw = GatewayProcess(state_dir, TOLLGATE_CONTROL_PLANE_URL=live_server.url)
    yield gw
    gw.stop()
    assert "Traceback" not in gw.log(), gw.log()


def signin_endpoints_missing(gw: GatewayProcess) -> str:
    meta = httpx.get(f"{gw.url}/.well-known/oauth-authorization-server", timeout=10)
    if meta.status_code != 200:
        return f"GET /.well-known/oauth-authorization-server on the data plane answers {meta.status_code}"
    started = httpx.post(
        f"{gw.url}/oauth/device_authorization", data={"surface": "claude_code"}, timeout=10
    )
    if started.status_code != 200 or "user_code" not in started.json():
        return f"POST /oauth/device_authorization on the data plane answers {started.status_code}: {started.text[:200]}"
    return ""


def approve_at_tollgate(shown: Shown, user: Any, console_url: str) -> None:
    """The browser leg at Tollgate: the console's /device/ page, signed in as ``user``."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert shown.verification_url.startswith(f"{console_url}/device/"), shown.verification_url
    with browser() as p:
        chromium = launch(p)
        try:
            context = chromium.new_context()
            context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": console_url}])
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{console_url}/device/?user_code={shown.user_code}")
            assert page.locator("#user_code").input_value() == shown.user_code
            page.locator("button", has_text="Confirm and sign in").click()
            page.locator("#device-done").wait_for()
        finally:
            chromium.close()


@dataclass
class SignedIn:
    cli: ClaudeSignin
    world: World
    signin: Any  # devicelogin.models.DeviceSignin
    gateway: GatewayProcess


@pytest.fixture
def signed_in(
    tollgate: GatewayProcess,
    live_server: Any,
    anthropic_upstream: Any,
    publish: Any,
    tmp_path: Path,
    host_etc_untouched: None,
) -> Iterator[SignedIn]:
    """charlie's Claude Code, signed in through Tollgate with /login."""
    missing = signin_endpoints_missing(tollgate)
    assert not missing, f"Tollgate's sign-in endpoints do not answer: {missing}"
    from devicelogin.models import DeviceSignin

    world = World(anthropic_upstream)
    publish(tollgate)
    with ClaudeSignin(tmp_path / "cli", tollgate.url, args=("--model", MODEL)) as cli:
        shown = cli.start()
        approve_at_tollgate(shown, world.charlie, live_server.url)
        cli.wait_connected(email=world.charlie.email)
        assert cli.credentials()["enterpriseGateway"]["url"] == tollgate.url
        signin = DeviceSignin.objects.select_related("key").get(user=world.charlie)
        publish(tollgate)  # the device's key is in the snapshot this data plane serves
        print(f"\nTollgate sign-in screens: {cli.timings()}")
        yield SignedIn(cli, world, signin, tollgate)


pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
def test_it_signs_in_through_tollgate_and_answers(
    signed_in: SignedIn, anthropic_upstream: Any, ledger: Any
) -> None:
    from decimal import Decimal

    from governance import services

    # Priced here: a transactional test elsewhere may have flushed the shipped prices.
    services.price_set(
        actor=signed_in.world.alice, model=MODEL, input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15")
    )
    proc = signed_in.cli.claude_p("say hi", "--output-format", "json", "--model", MODEL)
    result = result_of(proc)
    assert proc.returncode == 0 and result["is_error"] is False, (
        proc.stdout[-1000:],
        proc.stderr[-2000:],
    )
    assert "Hello from the fake Anthropic API" in result["result"]
    rows = ledger(1, key_prefix=signed_in.signin.key.prefix, endpoint="messages")
    assert rows, "no log row for the signed-in device's request"
    charlie = signed_in.world.charlie
    assert all(r.user_id == charlie.pk and r.status == 200 for r in rows), [
        (r.user_id, r.status) for r in rows
    ]
    assert all(r.cost_usd > 0 and r.session_id for r in rows)
    calls = anthropic_upstream.messages_received()
    assert calls and all(c.headers["x-api-key"] == anthropic_upstream.api_key for c in calls)
    assert all("authorization" not in c.headers for c in calls)  # the bearer stays at the gateway


@pytestmark_db
def test_a_signed_in_cli_runs_a_bash_tool_turn(signed_in: SignedIn, ledger: Any) -> None:
    proc = signed_in.cli.claude_p(
        "Please [[bash: echo tollgate-signed-in-$((40+2))]] and tell me what it printed.",
        "--output-format", "json", "--allowedTools", "Bash",
    )  # fmt: skip
    result = result_of(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tollgate-signed-in-42" in result["result"], result
    rows = ledger(2, key_prefix=signed_in.signin.key.prefix, endpoint="messages")
    assert len(rows) >= 2 and all(
        r.user_id == signed_in.world.charlie.pk and r.status == 200 for r in rows
    )


@pytestmark_db
def test_an_exhausted_team_budget_shows_the_billing_message_and_the_cli_stops(
    signed_in: SignedIn, publish: Any, ledger: Any
) -> None:
    from decimal import Decimal

    from governance import services

    w = signed_in.world
    # Priced here: a transactional test elsewhere may have flushed the shipped prices.
    services.price_set(
        actor=w.alice, model=MODEL, input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15")
    )
    services.budget_set(
        actor=w.alice,
        level="team",
        organization=w.acme,
        team=w.payments,
        amount_usd=Decimal("0.0001"),
        period="monthly",
    )
    publish(signed_in.gateway)
    started = time.monotonic()
    proc = signed_in.cli.claude_p("say hi", "--output-format", "json", "--model", MODEL, timeout=60)
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-2000:]
    assert result_of(proc)["api_error_status"] == 429, output[-2000:]
    assert "Team 'Payments' monthly budget of $0.0001" in output, output[-2000:]
    rows = ledger(1, key_prefix=signed_in.signin.key.prefix, timeout=3)
    refused = [r for r in rows if r.endpoint == "messages"]
    # x-should-retry: false — one attempt, one row, and no backing off.
    assert [r.status for r in refused] == [429], [(r.endpoint, r.status) for r in rows]
    assert took < 20, took


@pytestmark_db
def test_a_deactivated_user_is_refused_at_the_next_run_within_5_s(signed_in: SignedIn) -> None:
    from governance import services

    first = signed_in.cli.claude_p("say hi", "--output-format", "json")
    assert first.returncode == 0, first.stderr[-2000:]
    services.user_set_active(
        actor=signed_in.world.alice, user=signed_in.world.charlie, is_active=False
    )
    started = time.monotonic()
    proc = signed_in.cli.claude_p("say hi", "--output-format", "json", timeout=60)
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-2000:]
    assert "Hello from the fake" not in output
    assert took < 5, (took, output[-2000:])
    # Refused at start (its managed settings answer 401), before any model request.
    assert "no longer accepts this session" in output and "/login" in output, output[-2000:]
    print(
        f"\ndeactivated: the next claude -p failed after {took:.1f} s: {proc.stderr.strip()[:200]}"
    )


@pytestmark_db
def test_the_signed_in_interactive_session_answers(signed_in: SignedIn, ledger: Any) -> None:
    """The session that ran /login goes on past its first-run screens and answers a prompt."""
    screen = signed_in.cli.ask("say hi", "Hello from the fake Anthropic API", timeout=60)
    print(f"\ninteractive: {signed_in.cli.timings()}")
    assert "Cloud gateway" in screen  # its header names where it is signed in
    rows = ledger(1, key_prefix=signed_in.signin.key.prefix, endpoint="messages")
    assert rows and all(r.user_id == signed_in.world.charlie.pk and r.status == 200 for r in rows)


@pytestmark_db
def test_a_budget_past_75_percent_makes_the_cli_print_its_usage_notice(
    signed_in: SignedIn, publish: Any, ledger: Any
) -> None:
    """The user's own $1.00 budget about 75 % spent: the interactive session's
    next answer carries Tollgate's usage headers and the CLI prints its notice.
    (`claude -p` prints none; nor, in two runs here, does the interactive
    session for a team budget, whose headers add `overage-scope: group_pool`.)"""
    import re
    from decimal import Decimal

    from governance import services

    w = signed_in.world
    services.price_set(
        actor=w.alice, model=MODEL, input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15")
    )
    services.budget_set(
        actor=w.alice, level="user", organization=w.acme, user=w.charlie,
        amount_usd=Decimal("1.00"), period="monthly",
    )  # fmt: skip
    publish(signed_in.gateway)
    # Spend about 70 % with the device's own bearer, ~$0.05 of input a request.
    bearer = signed_in.cli.credentials()["enterpriseGateway"]["jwt"]
    big = {
        "model": MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "x" * 66_000}],
    }
    spent, sent = Decimal(0), 0
    while spent < Decimal("0.70"):
        answer = httpx.post(
            f"{signed_in.gateway.url}/v1/messages", json=big, timeout=30,
            headers={"authorization": f"Bearer {bearer}", "anthropic-version": "2023-06-01"},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        sent += 1
        spent = sum(
            r.cost_usd
            for r in ledger(sent, key_prefix=signed_in.signin.key.prefix, endpoint="messages")
        )
    assert (
        "anthropic-ratelimit-unified-overage-scope" not in answer.headers
    )  # the user's own budget
    # The session's own request holds ~$0.13 more: past 0.75, far from 1.
    screen = signed_in.cli.ask("say hi", "Hello from the fake Anthropic API", timeout=60)
    notice = re.compile(r"You've used (\d+)% of your usage credits · resets ([^\n│]+\S)")
    deadline = time.monotonic() + 15
    while not notice.search(screen) and time.monotonic() < deadline:
        time.sleep(0.3)
        screen = signed_in.cli.pane()
    found = notice.search(screen)
    assert found, screen
    assert 75 <= int(found.group(1)) < 95, found.group(0)
    print(f"\nspent ${spent:.2f} of $1.00 in {sent} requests; the CLI says: {found.group(0)}")
