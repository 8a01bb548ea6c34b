"""A month of plausible traffic for one organization, for page pictures and browser tests."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from governance import services
from governance.models import Role
from ledger.models import RequestLog
from ledger.services import usage_rollup_recent
from tests.controlplane.conftest import PASSWORD

MODELS = {
    "claude-sonnet-4-5": (Decimal("3"), Decimal("15")),
    "claude-opus-4-1": (Decimal("15"), Decimal("75")),
    "claude-haiku-4-5": (Decimal("1"), Decimal("5")),
}


def demo_world(*, rows: int = 900) -> dict[str, Any]:
    alice = get_user_model().objects.create_superuser("alice", "alice@example.com", PASSWORD)
    acme = services.organization_create(actor=alice, name="Acme", slug="acme")
    teams = {name: services.team_create(actor=alice, organization=acme, name=name) for name in ("Payments", "Platform", "Mobile")}
    people = {}
    for username, role, team in (
        ("bob", Role.ADMIN, None),
        ("charlie", Role.DEVELOPER, "Payments"),
        ("dave", Role.VIEWER, None),
        ("erin", Role.DEVELOPER, "Platform"),
        ("frank", Role.DEVELOPER, "Mobile"),
    ):
        people[username] = services.user_create(
            actor=alice, username=username, email=f"{username}@example.com", password=PASSWORD,
            organization=acme, role=role, team=teams[team] if team else None,
        )  # fmt: skip
    provider = services.provider_create(
        actor=alice, name="anthropic", kind="anthropic", base_url="https://api.anthropic.com", credential="sk-ant-demo"
    )
    keys = []
    for username in ("charlie", "erin", "frank"):
        member = people[username]
        team = next(t for t in teams.values() if t.memberships.filter(user=member).exists())
        for purpose in ("laptop", "ci"):
            key, _ = services.key_create(
                actor=alice, organization=acme, team=team, user=member, name=f"{username} {purpose}",
                allowed_models=["claude-sonnet-*", "claude-haiku-*"] if purpose == "ci" else [],
            )  # fmt: skip
            keys.append((key, member, team))
    services.budget_set(actor=alice, level="organization", organization=acme, amount_usd=Decimal("500"), period="monthly")
    services.budget_set(actor=alice, level="team", organization=acme, team=teams["Payments"], amount_usd=Decimal("60"), period="monthly")
    services.budget_set(actor=alice, level="team", organization=acme, team=teams["Platform"], amount_usd=Decimal("150"), period="monthly")
    services.budget_set(actor=alice, level="user", organization=acme, user=people["charlie"], amount_usd=Decimal("5"), period="daily")
    services.rate_limit_set(actor=alice, level="team", organization=acme, team=teams["Mobile"], metric="requests", limit=600, window_seconds=60)
    services.mcp_server_create(
        actor=alice, name="github", transport="http", url="https://mcp.example.com/github/mcp", auth="headers",
        headers={"Authorization": "Bearer demo-token"}, description="Issues and pull requests",
    )  # fmt: skip
    services.mcp_server_create(
        actor=alice, name="files", transport="stdio", command=["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"],
    )  # fmt: skip
    services.mcp_tool_policy_set(
        actor=alice, level="team", organization=acme, team=teams["Payments"], allowed=["files", "github__*_issue*"],
        denied=["files__write_*"],
    )  # fmt: skip
    _traffic(acme, keys, provider, rows)
    usage_rollup_recent()
    return {"alice": alice, "acme": acme, "teams": teams, "people": people, "keys": keys, "provider": provider}


def _traffic(acme: Any, keys: list[Any], provider: Any, count: int) -> None:
    rng = random.Random(7)
    now = timezone.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = max(3600.0, (now - start).total_seconds())
    rows = []
    sessions = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(12)]
    for n in range(count):
        key, member, team = keys[n % len(keys)]
        model = rng.choices(list(MODELS), weights=(6, 1, 3))[0]
        price_in, price_out = MODELS[model]
        tokens_in, tokens_out = rng.randint(2_000, 40_000), rng.randint(100, 3_000)
        refused = n % 37 == 0
        error = n % 53 == 0
        cost = Decimal(0) if refused or error else (price_in * tokens_in + price_out * tokens_out) / 1_000_000
        rows.append(
            RequestLog(
                request_id=uuid.uuid4().hex,
                created_at=start + timedelta(seconds=span * (n + 1) / (count + 1)),
                endpoint="anthropic.messages",
                key_id=key.pk, key_prefix=key.prefix, user_id=member.pk, team_id=team.pk, organization_id=acme.pk,
                model_requested=model, model_served="" if refused else model,
                provider_id=None if refused else provider.pk, provider_kind="" if refused else "anthropic",
                status=402 if refused else 529 if error else 200,
                error_type="billing_error" if refused else "overloaded_error" if error else "",
                input_tokens=0 if refused else tokens_in, output_tokens=0 if refused else tokens_out,
                cache_read_tokens=0 if refused else rng.randint(0, 20_000),
                cost_usd=cost.quantize(Decimal("0.0000000001")),
                latency_ms=rng.uniform(800, 25_000), ttfb_ms=rng.uniform(300, 1_800), overhead_ms=rng.uniform(0.4, 2.5),
                stream=True, session_id=sessions[n % len(sessions)], user_agent="claude-cli/2.1.330 (external, cli)",
            )
        )  # fmt: skip
    RequestLog.objects.bulk_create(rows, batch_size=500)
