from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import DailyUsage, RequestLog, RollupState
from ledger.selectors import (
    GROUP_BY,
    ReportScope,
    cost_report,
    cost_reports,
    spend_since,
    top_sessions,
)
from ledger.services import usage_rollup
from tests.ledger.factories import at, log_cost, log_row, log_rows

pytestmark = pytest.mark.django_db

EVERYTHING = ReportScope(organization_ids=None)
SPREAD = [
    {"organization_id": 1, "team_id": 10, "user_id": 100, "key_id": 1000, "session_id": "s-a"},
    {"organization_id": 1, "team_id": None, "user_id": 101, "key_id": 1001, "session_id": "s-b"},
    {"organization_id": 1, "team_id": 10, "user_id": 100, "key_id": 1000, "session_id": ""},
    {
        "organization_id": 2,
        "team_id": 20,
        "user_id": 200,
        "key_id": 2000,
        "model_served": "claude-opus-4-1",
    },
    {
        "organization_id": None,
        "team_id": None,
        "user_id": None,
        "key_id": None,
        "status": 401,
        "cost_usd": 0,
    },
]


@pytest.fixture
def today() -> date:
    return timezone.now().astimezone(UTC).date()


@pytest.fixture
def history(today: date) -> list[date]:
    """Three closed days rolled up, and rows today that no roll-up has seen."""
    days = [today - timedelta(days=n) for n in (5, 4, 3)]
    log_rows(700, spread=SPREAD, days=days)
    for day in days:
        usage_rollup(day=day)
    log_rows(70, spread=SPREAD, days=[today])
    return days


@pytest.mark.parametrize("group_by", GROUP_BY)
def test_it_totals_the_request_log_exactly(history: list[date], today: date, group_by: str) -> None:
    report = cost_report(scope=EVERYTHING, group_by=group_by, start=history[0], end=today)
    assert report.totals["cost_usd"] == log_cost()
    assert sum(r["cost_usd"] for r in report.rows) == log_cost()
    assert report.totals["requests"] == RequestLog.objects.count() == 770
    assert report.totals["errors"] == 770 // len(SPREAD)
    assert report.totals["input_tokens"] == sum(
        RequestLog.objects.values_list("input_tokens", flat=True)
    )


def test_it_reads_settled_days_from_the_rollup(history: list[date], today: date) -> None:
    # Proof of which source is read: change a rolled-up figure and see it in the report.
    DailyUsage.objects.filter(day=history[0], organization_id=2).update(requests=10**6)
    report = cost_report(scope=EVERYTHING, group_by="organization", start=history[0], end=today)
    assert {r["organization_id"]: r["requests"] for r in report.rows}[2] > 10**6


def test_it_reads_a_day_rolled_up_before_it_settled_from_the_log(today: date) -> None:
    yesterday = today - timedelta(days=1)
    log_rows(10, spread=SPREAD, days=[yesterday])
    usage_rollup(day=yesterday)
    RollupState.objects.filter(day=yesterday).update(
        rolled_at=datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(minutes=1)
    )
    # The writer was a little behind at midnight: a row arrives after the roll-up.
    log_row(created_at=at(yesterday, 86_399), cost_usd=Decimal("0.0123456789")).save()
    report = cost_report(scope=EVERYTHING, group_by="day", start=yesterday, end=yesterday)
    assert report.totals["requests"] == 11
    assert report.totals["cost_usd"] == log_cost()


def test_it_groups_by_team_within_each_organization(history: list[date], today: date) -> None:
    report = cost_report(scope=EVERYTHING, group_by="team", start=history[0], end=today)
    teams = {(r["organization_id"], r["team_id"]): r["requests"] for r in report.rows}
    per = 770 // len(SPREAD)
    assert teams == {(1, 10): 2 * per, (1, None): per, (2, 20): per, (None, None): per}


def test_it_groups_by_served_model_and_by_day(history: list[date], today: date) -> None:
    models = cost_report(scope=EVERYTHING, group_by="model", start=history[0], end=today)
    assert {r["model"] for r in models.rows} == {"claude-sonnet-4-5", "claude-opus-4-1"}
    days = cost_report(scope=EVERYTHING, group_by="day", start=history[0], end=today)
    assert [r["day"] for r in days.rows] == [*history, today]
    per_day = [
        RequestLog.objects.filter(
            created_at__gte=at(d), created_at__lt=at(d + timedelta(days=1))
        ).count()
        for d in [*history, today]
    ]
    assert [r["requests"] for r in days.rows] == per_day


def test_it_reports_spend_per_session(history: list[date], today: date) -> None:
    report = cost_report(scope=EVERYTHING, group_by="session", start=history[0], end=today)
    sessions = {(r["session_id"], r["user_id"], r["key_id"]): r for r in report.rows}
    assert set(sessions) == {
        ("s-a", 100, 1000),
        ("s-b", 101, 1001),
        (None, 100, 1000),
        (None, 200, 2000),
        (None, None, None),
    }
    a = sessions[("s-a", 100, 1000)]
    assert a["first_seen"] == at(history[0])
    assert a["last_seen"].date() == today
    expected = RequestLog.objects.filter(session_id="s-a").values_list("cost_usd", flat=True)
    assert a["cost_usd"] == sum(expected, Decimal(0))


def test_it_limits_a_developer_to_their_own_spend(history: list[date], today: date) -> None:
    mine = ReportScope(
        organization_ids=frozenset(), own_organization_ids=frozenset({1}), user_id=100
    )
    report = cost_report(scope=mine, group_by="user", start=history[0], end=today)
    assert [(r["organization_id"], r["user_id"]) for r in report.rows] == [(1, 100)]
    own = RequestLog.objects.filter(user_id=100).values_list("cost_usd", flat=True)
    assert report.totals["cost_usd"] == sum(own, Decimal(0))


def test_it_limits_an_organization_reader_to_the_organization(
    history: list[date], today: date
) -> None:
    org = ReportScope(organization_ids=frozenset({2}))
    report = cost_report(scope=org, group_by="key", start=history[0], end=today)
    assert [r["key_id"] for r in report.rows] == [2000]


def test_it_reads_in_a_fixed_number_of_queries(
    history: list[date], today: date, django_assert_max_num_queries
) -> None:
    # state, roll-up, log, organizations, users, keys: whatever the row count.
    with django_assert_max_num_queries(6):
        cost_report(scope=EVERYTHING, group_by="session", start=history[0], end=today)
    with django_assert_max_num_queries(5):
        cost_report(scope=EVERYTHING, group_by="team", start=history[0], end=today)


def _logged_since(since: datetime) -> dict[tuple, Decimal]:
    sums: dict[tuple, Decimal] = {}
    rows = RequestLog.objects.filter(organization_id__in=(1, 2), created_at__gte=since)
    for *ident, cost in rows.values_list(
        "organization_id", "team_id", "user_id", "key_id", "cost_usd"
    ):
        sums[tuple(ident)] = sums.get(tuple(ident), Decimal(0)) + cost
    return sums


def test_it_sums_budget_periods_exactly_from_the_rollup_and_the_log(
    history: list[date], today: date
) -> None:
    # Periods from midnight (calendar ones) and from 07:00 (rolling ones): settled
    # days from the roll-up, the first hours, the unsettled days and today from the log.
    starts = [at(history[0]), at(history[0], 7 * 3600), at(history[2], 7 * 3600), at(today)]
    spent = spend_since(organization_ids={1, 2}, starts=starts)
    for since in starts:
        got = {
            (r["organization_id"], r["team_id"], r["user_id"], r["key_id"]): r["cost_usd"]
            for r in spent[since]
        }
        logged = _logged_since(since)
        assert {k: v for k, v in got.items() if k in logged} == logged
        assert sum(got.values()) == sum(logged.values())


def test_it_sums_budget_periods_in_three_queries(
    history: list[date], today: date, django_assert_num_queries
) -> None:
    starts = [at(history[0]), at(history[0], 3600), at(history[1], 7200), at(today)]
    with django_assert_num_queries(3):  # roll-up state, roll-up, log
        spend_since(organization_ids={1, 2}, starts=starts)


def test_it_reads_a_budget_periods_settled_days_from_the_rollup(
    history: list[date], today: date
) -> None:
    DailyUsage.objects.filter(day=history[1], organization_id=2).update(cost_usd=Decimal(1000))
    (row,) = spend_since(organization_ids={2}, starts=[at(history[0])])[at(history[0])]
    assert row["cost_usd"] > 1000
    # A period starting after the settled days reads the log alone.
    (row,) = spend_since(organization_ids={2}, starts=[at(today)])[at(today)]
    assert row["cost_usd"] == sum(
        RequestLog.objects.filter(organization_id=2, created_at__gte=at(today)).values_list(
            "cost_usd", flat=True
        ),
        Decimal(0),
    )


def test_it_gives_several_reports_as_each_alone(history: list[date], today: date) -> None:
    wanted = ["day,team", "day,model", "user", "key", "session"]
    together = cost_reports(scope=EVERYTHING, group_bys=wanted, start=history[0], end=today)
    for group_by, report in zip(wanted, together, strict=True):
        alone = cost_report(scope=EVERYTHING, group_by=group_by, start=history[0], end=today)
        assert report.rows == alone.rows and report.totals == alone.totals


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_it_ranks_the_top_sessions_as_the_session_report(today: date, limit: int) -> None:
    # Equal costs in several sessions: the ties are broken as the report breaks them.
    log_rows(60, spread=SPREAD, days=[today])
    for n, cost in enumerate(["0.5", "0.5", "0.25"]):
        log_row(created_at=at(today, 60), session_id=f"s-tie-{n}", cost_usd=Decimal(cost)).save()
    report = cost_report(scope=EVERYTHING, group_by="session", start=today, end=today)
    expected = [r for r in report.rows if r["session_id"]][:limit]
    assert top_sessions(scope=EVERYTHING, day=today, limit=limit) == expected
