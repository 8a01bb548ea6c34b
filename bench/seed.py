"""Create the benchmark's world in a throwaway database and publish the snapshot.

Run by bench/run.py with DJANGO_SETTINGS_MODULE, TOLLGATE_DATA_DIR,
DATABASE_URL and TOLLGATE_SECRET_KEY set (after ``manage.py migrate``), and
REDIS_URL and TOLLGATE_REDIS_PREFIX for the Redis backend (the snapshot is then
published to Redis):

    python bench/seed.py UPSTREAM_URL PROVIDER_KEY [--governed]

Creates one provider and a plain virtual key (organization "bench", no budgets
or rate limits). With ``--governed``, also a second organization, team, user
and key carrying a USD budget at each of the four levels (organization, team,
user, key) and a request-rate limit on the key, all far above anything the
benchmark can spend, so every request pays for admission and settlement but
none is refused. It gets its own organization and team because organization
and team budgets apply to every key below them: the plain key stays plain.

Prints one JSON line: the secrets and the snapshot version.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from governance import services  # noqa: E402
from governance.models import Role  # noqa: E402
from governance.snapshot import snapshot_publish  # noqa: E402

BUDGET_USD = Decimal("1000000")
RATE_LIMIT = 10**9


def world(admin: object, slug: str, username: str) -> tuple[object, object, object]:
    org = services.organization_create(actor=admin, name=slug.title(), slug=slug)
    team = services.team_create(actor=admin, organization=org, name="Load")
    user = services.user_create(
        actor=admin,
        username=username,
        email=f"{username}@example.com",
        organization=org,
        role=Role.DEVELOPER,
        team=team,
    )
    return org, team, user


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("upstream")
    parser.add_argument("provider_key")
    parser.add_argument(
        "--governed",
        action="store_true",
        help="also create a key with budgets at every level and a rate limit",
    )
    args = parser.parse_args()

    admin = get_user_model().objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-password-1"
    )
    services.provider_create(
        actor=admin,
        name="anthropic",
        kind="anthropic",
        base_url=args.upstream,
        credential=args.provider_key,
    )
    org, team, user = world(admin, "bench", "bench-dev")
    _, secret = services.key_create(
        actor=admin, organization=org, team=team, user=user, name="bench"
    )
    out: dict[str, object] = {"secret": secret}

    if args.governed:
        org, team, user = world(admin, "bench-governed", "bench-governed-dev")
        key, governed = services.key_create(
            actor=admin, organization=org, team=team, user=user, name="bench-governed"
        )
        for level, target in (
            ("organization", {}),
            ("team", {"team": team}),
            ("user", {"user": user}),
            ("key", {"key": key}),
        ):
            services.budget_set(
                actor=admin,
                level=level,
                organization=org,
                amount_usd=BUDGET_USD,
                period="monthly",
                **target,
            )
        services.rate_limit_set(
            actor=admin,
            level="key",
            organization=org,
            key=key,
            metric="requests",
            limit=RATE_LIMIT,
            window_seconds=60,
        )
        out["governed_secret"] = governed
        out["governed_organization_id"] = org.pk

    out["version"] = snapshot_publish()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
