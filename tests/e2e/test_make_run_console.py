"""`make run` as a newcomer runs it: a Claude Code request shows in the console within 10 s.

`manage.py serve` on the embedded default (SQLite, in-process counters, no
Redis) with its own data directory and ports; set up through the REST API
with the admin password the banner prints; the real Claude Code CLI sends one
prompt; the console's overview, request log and budget bar are then read
until they show it.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.e2e.test_claude_code import CLAUDE, result_of, run_claude

pytestmark = pytest.mark.timeout(240)


class Served:
    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "var"
        self.control = f"http://127.0.0.1:{free_port()}"
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "TOLLGATE_COUNTERS_REDIS_URL")
        }
        env |= {
            "TOLLGATE_DATA_DIR": str(tmp_path / "var"),
            "TOLLGATE_CONTROL_PORT": self.control.rsplit(":", 1)[1],
            "TOLLGATE_DATA_PORT": self.url.rsplit(":", 1)[1],
            "TOLLGATE_GATEWAY_URL": self.url,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        }
        env.pop("TOLLGATE_SECRET_KEY", None)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        self.log = tmp_path / "serve.log"
        self._out = open(self.log, "w")  # noqa: SIM115 (open for the process's lifetime)
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while "Press Ctrl-C to stop." not in self.log.read_text():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)
        self.password = re.search(r"password  (\S+)", self.log.read_text()).group(1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    server = Served(tmp_path_factory.mktemp("make-run"))
    yield server
    server.stop()
    assert "Traceback" not in server.log.read_text(), server.log.read_text()[-4000:]


def _console(served: Served) -> httpx.Client:
    browser = httpx.Client(base_url=served.control, follow_redirects=True, timeout=10)
    browser.get("/accounts/login/")
    answer = browser.post(
        "/accounts/login/",
        data={
            "login": "admin",
            "password": served.password,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": served.control + "/accounts/login/"},
    )
    assert answer.url.path == "/", answer.text[:500]
    return browser


@pytest.mark.skipif(not CLAUDE.exists(), reason="the Claude Code CLI is installed by `make test`")
def test_it_shows_a_claude_code_request_in_the_console_within_ten_seconds(
    served, anthropic_upstream, tmp_path
) -> None:
    before = httpx.get(f"{served.url}/readyz").json()["snapshot_version"]
    api = httpx.Client(base_url=served.control + "/api/v1", timeout=20)
    token = api.post(
        "/auth/token/", json={"username": "admin", "password": served.password}
    ).json()["token"]
    api.headers["Authorization"] = f"Token {token}"
    assert api.post("/organizations/", json={"name": "Acme", "slug": "acme"}).status_code == 201
    assert api.post("/organizations/acme/teams/", json={"name": "Payments"}).status_code == 201
    provider = {
        "name": "anthropic",
        "kind": "anthropic",
        "base_url": anthropic_upstream.url,
        "credential": anthropic_upstream.api_key,
    }
    assert api.post("/providers/", json=provider).status_code == 201
    key = api.post("/organizations/acme/keys/", json={"name": "laptop", "team": "payments"}).json()
    budget = {"level": "team", "team": "payments", "amount_usd": "10", "period": "monthly"}
    assert api.post("/organizations/acme/budgets/", json=budget).status_code == 201

    # The data plane picks the key up from the snapshot within its poll interval.
    deadline = time.monotonic() + 10
    while (
        httpx.get(f"{served.url}/readyz").json()["snapshot_version"] <= before
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    answer = result_of(run_claude(served, key["secret"], "Say hello.", tmp_path))
    assert answer["is_error"] is False, answer
    sent = time.monotonic()

    browser = _console(served)
    seen: dict[str, float] = {}
    while len(seen) < 3 and time.monotonic() - sent < 10:
        if (
            "log" not in seen
            and "laptop" in browser.get("/requests/").text.split('id="requests"')[-1]
        ):
            seen["log"] = time.monotonic() - sent
        if "overview" not in seen and not re.search(
            r'id="spend-today">\$0\.00<', browser.get("/").text
        ):
            seen["overview"] = time.monotonic() - sent
        if "budget" not in seen:
            spent = re.search(
                r'<td class="num spent-usd">\$([0-9.,]+)</td>', browser.get("/budgets/").text
            )
            if spent and Decimal(spent.group(1).replace(",", "")) > 0:
                seen["budget"] = time.monotonic() - sent
        time.sleep(0.2)
    print(
        f"console caught up after the request: {', '.join(f'{k} {v:.1f} s' for k, v in seen.items())}"
    )
    assert set(seen) == {"log", "overview", "budget"}, seen


def test_it_runs_the_beat_schedule_in_process(served) -> None:
    # The schedule's first round runs at start: today's roll-up is recorded in the database.
    database = sqlite3.connect(served.data_dir / "tollgate.sqlite3")
    deadline = time.monotonic() + 30
    rolled: list[tuple[str]] = []
    while not rolled and time.monotonic() < deadline:
        rolled = database.execute(
            "SELECT day FROM ledger_rollupstate WHERE day = date('now')"
        ).fetchall()
        time.sleep(0.3)
    database.close()
    assert rolled, served.log.read_text()[-2000:]
    assert served.proc.poll() is None
