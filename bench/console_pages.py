"""Console page timings with a big request log: server time per page, read from the roll-ups.

    .venv/bin/python bench/console_pages.py              # 1,000,000 rows, SQLite in a temp dir
    .venv/bin/python bench/console_pages.py --rows 100000
    DATABASE_URL=postgres://… .venv/bin/python bench/console_pages.py   # an empty database of your own

Seeds one organization (3 teams, 6 people, 12 keys) and ``--rows`` request-log
rows spread over the last 60 days, rolls every day up (as the schedule does),
then asks each console page as its admin through Django's test client, three
times, and prints the median server time and the query count. The request
log explorer pages newest-first by id and sums its totals over the filtered
set; a whole month's totals come from the roll-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--explain", action="store_true", help="print each page's slowest queries")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        os.environ["TOLLGATE_DATA_DIR"] = tempfile.mkdtemp(prefix="tollgate-console-bench-")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ["TOLLGATE_ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from governance import services
    from governance.models import Role
    from ledger.models import RequestLog
    from ledger.services import usage_rollup

    call_command("migrate", verbosity=0)
    admin = services.admin_bootstrap(username="bench-admin")[0]
    acme = services.organization_create(actor=admin, name="Acme", slug="acme")
    teams = [services.team_create(actor=admin, organization=acme, name=n) for n in ("Payments", "Platform", "Mobile")]
    keys = []
    for i in range(6):
        team = teams[i % 3]
        person = services.user_create(actor=admin, username=f"dev{i}", email=f"dev{i}@example.com", organization=acme, role=Role.DEVELOPER, team=team)
        for purpose in ("laptop", "ci"):
            key, _ = services.key_create(actor=admin, organization=acme, team=team, user=person, name=f"dev{i} {purpose}")
            keys.append((key, person, team))
    services.budget_set(actor=admin, level="organization", organization=acme, amount_usd=Decimal("100000"), period="monthly")
    for team in teams:
        services.budget_set(actor=admin, level="team", organization=acme, team=team, amount_usd=Decimal("10000"), period="monthly")

    now = timezone.now()
    span = 60 * 86400
    models = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")
    started = time.monotonic()
    # Plain executemany: the ORM's bulk_create would take a quarter of an hour for a million rows.
    columns = (
        "request_id", "created_at", "endpoint", "key_id", "key_prefix", "user_id", "team_id", "organization_id",
        "model_requested", "model_served", "provider_kind", "status", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "cost_usd", "latency_ms", "overhead_ms", "session_id",
        "attempts", "fallback", "stream", "unpriced", "client_disconnected", "error_type", "error_message",
        "user_agent", "mcp_server", "mcp_tool", "request_bytes", "response_bytes",
    )  # fmt: skip
    extra = {f.column: f.get_default() for f in RequestLog._meta.concrete_fields if f.column not in (*columns, "id")}
    columns = columns + tuple(extra)
    sql = f"INSERT INTO {RequestLog._meta.db_table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"

    def row(n: int) -> tuple:
        key, person, team = keys[n % len(keys)]
        created = now - timedelta(seconds=span * (args.rows - n) / args.rows)
        return (
            uuid.uuid4().hex, created, "anthropic.messages", key.pk, key.prefix, person.pk, team.pk, acme.pk,
            models[n % 3], models[n % 3], "anthropic", 402 if n % 41 == 0 else 200, 1000 + n % 5000, 200 + n % 900,
            0, 0, Decimal("0.0123456789"), 1234.5, 1.2, f"session-{n // 50}", 1, False, True, False, False, "", "",
            "claude-cli", "", "", 0, 0, *extra.values(),
        )  # fmt: skip

    with connection.cursor() as cursor:
        for first in range(0, args.rows, 20_000):
            with transaction.atomic():
                cursor.executemany(sql, [row(n) for n in range(first, min(args.rows, first + 20_000))])
    print(f"seeded {args.rows:,} rows in {time.monotonic() - started:.0f} s on {connection.vendor}")
    started = time.monotonic()
    today = now.date()
    for d in range(61):
        usage_rollup(day=today - timedelta(days=60 - d))
    print(f"rolled up 61 days in {time.monotonic() - started:.0f} s")
    if connection.vendor == "postgresql":
        # A million rows written in one go: give the planner the statistics
        # autovacuum would have gathered by then in production.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    # Today and yesterday stay live (read from the log) until they settle, as in production.

    browser = Client()
    browser.force_login(admin)
    pages = [
        ("Overview", "/?org=acme"),
        ("My usage", "/me/"),
        ("Keys", "/keys/?org=acme"),
        ("Budgets and limits", "/budgets/?org=acme"),
        ("Request log", "/requests/?org=acme"),
        ("Request log, one team", "/requests/?org=acme&team=payments"),
        ("Cost report team × model, this month", "/costs/?org=acme&first=team&second=model"),
        ("Cost report user × day, 60 days", f"/costs/?org=acme&first=user&second=day&since={today - timedelta(days=59)}&until={today}"),
        ("Teams and people", "/people/?org=acme"),
        ("Audit log", "/audit/"),
        ("Providers and prices", "/providers/"),
    ]
    print(f"\n| page ({args.rows:,} log rows, {connection.vendor}) | median server time | queries |")
    print("| --- | ---: | ---: |")
    for name, path in pages:
        times = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = browser.get(path)
                times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        print(f"| {name} | {statistics.median(times):.0f} ms | {len(queries)} |")
        if args.explain:
            slow = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]
            for q in slow:
                print(f"    {float(q['time']) * 1000:.0f} ms  {q['sql'][:300]}")


if __name__ == "__main__":
    main()
