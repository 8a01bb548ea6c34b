"""The real Claude Code CLI, headless, pointed at the gateway with two variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"


def run_claude(
    gateway, secret: str, prompt: str, tmp_path: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    assert CLAUDE.exists(), (
        f"Claude Code CLI missing at {CLAUDE}: run `make test`, which installs it"
    )
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": f"{gateway.url}/anthropic",
        "ANTHROPIC_AUTH_TOKEN": secret,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    return subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def result_of(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.stdout.strip(), f"no output; stderr: {proc.stderr[-2000:]}"
    return orjson.loads(proc.stdout.strip().splitlines()[-1])


def test_it_answers_a_plain_prompt(gateway, world, ledger, anthropic_upstream, tmp_path):
    proc = run_claude(gateway, world.secret, "Say hello", tmp_path)
    result = result_of(proc)
    assert proc.returncode == 0, proc.stderr
    assert result["is_error"] is False
    assert "Hello from the fake Anthropic API" in result["result"]
    calls = anthropic_upstream.messages_received()
    assert calls and all(c.headers["x-api-key"] == anthropic_upstream.api_key for c in calls)
    rows = ledger(len(calls), key_prefix=world.key.prefix, endpoint="messages")
    assert len(rows) == len(calls)
    assert all(r.status == 200 and r.input_tokens > 0 and r.output_tokens > 0 for r in rows)
    assert all(r.cost_usd > 0 and not r.unpriced for r in rows), [
        (r.model_requested, r.cost_usd) for r in rows
    ]
    assert all(r.session_id for r in rows)


def test_it_runs_a_bash_tool_turn(gateway, world, ledger, anthropic_upstream, tmp_path):
    proc = run_claude(
        gateway,
        world.secret,
        "Please [[bash: echo tollgate-bash-$((40+2))]] and tell me what it printed.",
        tmp_path,
        "--allowedTools",
        "Bash",
    )
    result = result_of(proc)
    assert proc.returncode == 0, proc.stderr
    assert "The tool said:" in result["result"]
    assert "tollgate-bash-42" in result["result"]
    rows = ledger(2, key_prefix=world.key.prefix, endpoint="messages")
    assert len(rows) >= 2
    assert all(r.cost_usd > 0 for r in rows)


def test_it_shows_the_budget_message_and_stops_without_retrying(
    gateway, world, publish, ledger, tmp_path
):
    from decimal import Decimal

    from governance import services

    services.budget_set(
        actor=world.alice,
        level="team",
        organization=world.acme,
        team=world.payments,
        amount_usd=Decimal("0.0001"),
        period="monthly",
    )
    publish()
    proc = run_claude(gateway, world.secret, "Say hello", tmp_path, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # Nothing is spent yet: the message says what is left, never "used up".
    assert (
        "Team 'Payments' monthly budget of $0.0001 has $0.0001 left, less than this request may cost (about $"
        in output
    ), output[-2000:]
    assert "Ask your platform admin to raise it." in output
    rows = ledger(1, key_prefix=world.key.prefix, timeout=3)
    refused = [r for r in rows if r.status == 402]
    # Claude Code does not retry a 402: one attempt, one row.
    assert len(refused) == 1, [(r.endpoint, r.status) for r in rows]


def test_it_waits_out_a_rate_limit_and_then_succeeds(gateway, world, publish, ledger, tmp_path):
    import httpx

    from governance import services

    services.rate_limit_set(
        actor=world.alice,
        level="key",
        organization=world.acme,
        key=world.key,
        metric="requests",
        limit=1,
        window_seconds=4,
    )
    publish()
    # Use up the window just before Claude Code starts.
    first = httpx.post(
        f"{gateway.url}/v1/messages",
        content=b'{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"x"}]}',
        headers={"x-api-key": world.secret, "content-type": "application/json"},
    )
    assert first.status_code == 200
    proc = run_claude(gateway, world.secret, "Say hello", tmp_path, timeout=120)
    result = result_of(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Hello from the fake Anthropic API" in result["result"]
    rows = [r for r in ledger(3, key_prefix=world.key.prefix) if r.endpoint == "messages"]
    statuses = [r.status for r in rows]
    assert statuses[0] == 200 and 429 in statuses and statuses[-1] == 200, statuses


def _remap_opus(world, kind: str, fake) -> str:
    """Route Claude Code's Opus tier to another provider; returns the served model id."""
    from governance import services

    if kind == "bedrock":
        provider = services.provider_create(
            actor=world.alice,
            name="bedrock",
            kind="bedrock",
            base_url=fake.url,
            credential=fake.credential(),
            settings={"region": "us-east-1"},
        )
        model = "us.anthropic.claude-opus-4-5-20251101-v1:0"
    elif kind == "vertex":
        provider = services.provider_create(
            actor=world.alice,
            name="vertex",
            kind="vertex",
            base_url=fake.url,
            credential=fake.service_account_json(),
            settings={"project_id": fake.project_id, "location": "us-east5"},
        )
        model = "claude-opus-4-5@20251101"
    elif kind == "gemini":
        provider = services.provider_create(
            actor=world.alice,
            name="gemini",
            kind="gemini",
            base_url=fake.url,
            credential=fake.api_key,
        )
        model = "gemini-2.5-pro"
    else:
        provider = services.provider_create(
            actor=world.alice,
            name="compat",
            kind="openai_compatible",
            base_url=fake.url + "/v1",
            credential=fake.api_key,
        )
        model = "gpt-5"
    services.route_set(
        actor=world.alice,
        model_pattern="claude-opus-*",
        targets=[{"provider": provider, "model": model}],
    )
    return model


@pytest.mark.parametrize("kind", ["bedrock", "vertex", "openai_compatible", "gemini"])
def test_it_serves_the_opus_tier_from_another_provider(
    gateway,
    world,
    publish,
    ledger,
    tmp_path,
    kind,
    bedrock_upstream,
    vertex_upstream,
    openai_upstream,
    gemini_upstream,
):
    fake = {
        "bedrock": bedrock_upstream,
        "vertex": vertex_upstream,
        "openai_compatible": openai_upstream,
        "gemini": gemini_upstream,
    }[kind]
    served = _remap_opus(world, kind, fake)
    publish()
    plain = result_of(run_claude(gateway, world.secret, "Say hello", tmp_path))
    assert plain["is_error"] is False and "Hello from the fake" in plain["result"], plain
    tool = run_claude(
        gateway,
        world.secret,
        "Please [[bash: echo tollgate-$((6*7))-routed]] and report.",
        tmp_path,
        "--allowedTools",
        "Bash",
    )
    result = result_of(tool)
    assert tool.returncode == 0, tool.stderr[-2000:]
    assert "tollgate-42-routed" in result["result"], result
    opus = [
        r
        for r in ledger(3, key_prefix=world.key.prefix)
        if r.model_requested.startswith("claude-opus")
    ]
    assert len(opus) >= 3
    assert all(
        r.model_served == served and r.provider_kind == kind and r.status == 200 for r in opus
    )
    assert all(r.cost_usd > 0 and not r.unpriced for r in opus), [
        (r.model_served, r.cost_usd) for r in opus
    ]


@pytest.mark.xfail(
    strict=False,
    reason="known bug, open in the budgets issue: in a full suite run (and on a worker of its own) the "
    "reservation estimate after ~38 runs exceeds the $0.11 left and the test stops at $0.886 spent; "
    "alone on the session worker it serves to $0.98",
)
def test_it_serves_a_dollar_team_budget_until_a_request_no_longer_fits(
    gateway, world, publish, ledger, tmp_path
):
    """Real Claude Code on a $1.00 team budget: served until what is left is less
    than one request costs, then refused with a message that says so truly."""
    import time
    from decimal import Decimal

    from governance import services

    services.budget_set(
        actor=world.alice,
        level="team",
        organization=world.acme,
        team=world.payments,
        amount_usd=Decimal("1.00"),
        period="monthly",
    )
    publish()
    started = time.monotonic()
    outputs = []
    stumbles = []  # runs that failed for another reason (a loaded machine's timeouts), retried
    for _ in range(60):
        proc = run_claude(
            gateway, world.secret, "Say hello", tmp_path, "--model", "opus", timeout=60
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0 and "billing_error" not in output and len(stumbles) < 3:
            stumbles.append(output[-500:])
            continue
        outputs.append(output)
        if proc.returncode != 0:
            break
    else:
        pytest.fail("the budget never ran out")
    rows = [r for r in ledger(1, key_prefix=world.key.prefix, timeout=5)]
    served = [r for r in rows if r.status == 200]
    spent = sum(r.cost_usd for r in served)
    dearest = max(r.cost_usd for r in served)
    print(
        f"\n$1.00 team budget: {len(outputs) - 1} Claude Code runs, {len(served)} requests served, spent ${spent}, "
        f"dearest request ${dearest}, {time.monotonic() - started:.0f} s, {len(stumbles)} runs retried"
    )
    assert spent <= Decimal("1.00"), spent
    assert Decimal("1.00") - spent < dearest * Decimal("1.25"), (spent, dearest, outputs[-1][-800:], stumbles)
    message = outputs[-1]
    left = f"${Decimal('1.00') - spent:.2f}"
    assert (
        f"Team 'Payments' monthly budget of $1.00 has {left} left, less than this request may cost (about $"
        in message
    ), message[-1500:]
    assert "used up" not in message
