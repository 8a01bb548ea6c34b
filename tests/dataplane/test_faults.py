"""The log writer and its database failing under traffic: a PostgreSQL of the
test's own goes down for a minute, the writer is killed mid-batch. Every
request served is logged exactly once, and the log sums to what was charged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from tests.conftest import ROOT, free_port

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
PG_BIN = Path(shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl").resolve().parent
DOWN_SECONDS = 60


def as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivatePostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tollgate-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/ledger"
        subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"]),
                       check=True, capture_output=True)
        self.start()
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "ledger"], check=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"]),
                       check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]), capture_output=True)

    def query(self, sql: str, *args: object) -> tuple:
        with psycopg.connect(self.url.replace("postgres://", "postgresql://")) as conn:
            return conn.execute(sql, args).fetchone()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg(state_dir):
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL's server binaries are not installed")
    pg = PrivatePostgres()
    env = writer_env(state_dir, pg.url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    yield pg
    pg.destroy()


def writer_env(state_dir: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "TOLLGATE_SECRET_KEY": settings.SECRET_KEY,
        "TOLLGATE_DATA_DIR": str(state_dir),
        "TOLLGATE_REDIS_PREFIX": settings.REDIS_PREFIX,
        "DATABASE_URL": database_url,
    }


def start_writer(state_dir: Path, pg: PrivatePostgres) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_ledger_writer"], cwd=ROOT, env=writer_env(state_dir, pg.url),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def logged(pg: PrivatePostgres, prefix: str) -> tuple[int, Decimal]:
    count, total = pg.query("SELECT count(*), coalesce(sum(cost_usd), 0) FROM ledger_requestlog WHERE key_prefix = %s", prefix)
    return int(count), Decimal(total)


def wait_logged(pg: PrivatePostgres, prefix: str, count: int, timeout: float = 30) -> tuple[int, Decimal]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = logged(pg, prefix)
        except psycopg.OperationalError:
            got = (0, Decimal(0))
        if got[0] >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def send(gateway, secret: str, n: int, workers: int = 4) -> list[httpx.Response]:
    def one(_: int) -> httpx.Response:
        return httpx.post(f"{gateway.url}/v1/messages", json=BODY, headers={"x-api-key": secret}, timeout=30)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


def test_it_logs_everything_served_while_postgresql_was_down_for_a_minute(gateway, world, private_pg, state_dir):
    writer = start_writer(state_dir, private_pg)
    try:
        before = send(gateway, world.secret, 30)
        assert wait_logged(private_pg, world.key.prefix, 30)[0] == 30
        private_pg.stop()
        during: list[httpx.Response] = []
        deadline = time.monotonic() + DOWN_SECONDS
        while time.monotonic() < deadline:
            during += send(gateway, world.secret, 4)
            time.sleep(0.5)
        assert logged_or_none(private_pg) is None  # really down
        private_pg.start()
        served = before + during
        assert all(r.status_code == 200 for r in served)
        count, total = wait_logged(private_pg, world.key.prefix, len(served), timeout=60)
        assert count == len(served), (count, len(served))
        assert total == one_request_cost(private_pg, world.key.prefix) * count  # each charged once, in full
        print(f"\nPostgreSQL down {DOWN_SECONDS} s: sent {len(served)}, served {len(served)}, logged {count}, log sum ${total}")
    finally:
        writer.kill()
        writer.wait(10)


def one_request_cost(pg: PrivatePostgres, prefix: str) -> Decimal:
    low, high = pg.query("SELECT min(cost_usd), max(cost_usd) FROM ledger_requestlog WHERE key_prefix = %s", prefix)
    assert low == high and low > 0  # identical requests cost the same
    return Decimal(low)


def logged_or_none(pg: PrivatePostgres) -> object:
    try:
        return pg.query("SELECT 1")
    except psycopg.OperationalError:
        return None


def test_it_logs_each_request_once_when_the_writer_is_killed_mid_batch(gateway, world, private_pg, state_dir):
    writer = start_writer(state_dir, private_pg)
    try:
        with ThreadPoolExecutor(1) as pool:
            burst = pool.submit(send, gateway, world.secret, 400, 8)
            time.sleep(1.0)
            writer.send_signal(signal.SIGKILL)
            writer.wait(10)
            writer = start_writer(state_dir, private_pg)
            served = burst.result()
        assert all(r.status_code == 200 for r in served)
        count, _ = wait_logged(private_pg, world.key.prefix, len(served), timeout=90)
        assert count == len(served), (count, len(served))
        dupes = private_pg.query(
            "SELECT count(*) - count(DISTINCT request_id) FROM ledger_requestlog WHERE key_prefix = %s", world.key.prefix
        )[0]
        assert dupes == 0
        print(f"\nwriter killed mid-batch: sent {len(served)}, served {len(served)}, logged {count}, duplicates {dupes}")
    finally:
        writer.kill()
        writer.wait(10)
