"""The process set: every process Tollgate runs, its command line and its health check.

`make run` (``manage.py serve``), deploy/compose.yaml, deploy/systemd/ and
deploy/kubernetes/ all start a process as ``manage.py process <name>``, which
execs the command line built here, so a flag changed here changes it
everywhere; tests/deploy/ fails when an artifact names a process this module
does not know or leaves one out.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

EMBEDDED = "embedded"
PRODUCTION = "production"


@dataclass(frozen=True)
class Process:
    name: str
    summary: str
    argv: tuple[str, ...]
    # "service" runs until stopped; "job" runs once to completion (migrations, first admin).
    kind: str
    # Which shapes run it: the embedded default (`make run`) and/or production.
    shapes: frozenset[str]
    port: int | None = None
    # HTTP path a probe may GET on `port` (liveness/readiness); None when the
    # process serves no HTTP and is checked by `manage.py process <name> --check`.
    health_path: str | None = None
    ready_path: str | None = None

    def command_line(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class Binding:
    host: str
    control_port: int
    data_port: int
    data_workers: int
    # Addresses whose X-Forwarded-For/-Proto uvicorn believes: the load balancer.
    forwarded_allow_ips: str
    # Daphne believes X-Forwarded-For from anyone, so only when a proxy fronts it
    # (the sign-in throttle counts failures per client address).
    behind_proxy: bool = False

    @classmethod
    def from_env(cls) -> Binding:
        return cls(
            host=os.environ.get("TOLLGATE_BIND", "127.0.0.1"),
            control_port=int(os.environ.get("TOLLGATE_CONTROL_PORT", "8000")),
            data_port=int(os.environ.get("TOLLGATE_DATA_PORT", "8080")),
            data_workers=int(os.environ.get("TOLLGATE_DATA_WORKERS", "1")),
            forwarded_allow_ips=os.environ.get("TOLLGATE_FORWARDED_ALLOW_IPS", "127.0.0.1"),
            behind_proxy=settings.BEHIND_PROXY,
        )


# Seconds uvicorn lets in-flight streams finish after SIGTERM before closing
# them; every stop timeout in deploy/ (compose stop_grace_period, systemd
# TimeoutStopSec, Kubernetes terminationGracePeriodSeconds) is longer than this.
DRAIN_SECONDS = 30
STOP_TIMEOUT_SECONDS = DRAIN_SECONDS + 15


def process_set(binding: Binding | None = None, *, python: str | None = None) -> dict[str, Process]:
    b = binding or Binding.from_env()
    py = python or sys.executable
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    both = frozenset({EMBEDDED, PRODUCTION})
    production = frozenset({PRODUCTION})
    embedded = frozenset({EMBEDDED})
    processes = [
        Process(
            name="migrate",
            summary="apply database migrations, then exit (before every other process on each release)",
            argv=(py, manage, "migrate", "--noinput"),
            kind="job",
            shapes=both,
        ),
        Process(
            name="bootstrap-admin",
            summary="create the first admin from TOLLGATE_ADMIN_* values if no admin exists, then exit",
            argv=(py, manage, "bootstrap_admin"),
            kind="job",
            shapes=production,
        ),
        Process(
            name="controlplane",
            summary="console, REST API, sign-in and Django admin (daphne)",
            argv=(
                py, "-m", "daphne", "-b", b.host, "-p", str(b.control_port),
                *(("--proxy-headers",) if b.behind_proxy else ()),
                "--application-close-timeout", str(DRAIN_SECONDS),
                "controlplane.asgi:application",
            ),
            kind="service",
            shapes=both,
            port=b.control_port,
            health_path="/healthz",
            ready_path="/readyz",
        ),
        Process(
            name="dataplane",
            summary="model traffic, MCP and Claude Code sign-in endpoints (uvicorn workers)",
            argv=(
                py, "-m", "uvicorn", "dataplane.asgi:application", "--host", b.host, "--port", str(b.data_port),
                "--workers", str(b.data_workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--proxy-headers", "--forwarded-allow-ips", b.forwarded_allow_ips,
                "--timeout-graceful-shutdown", str(DRAIN_SECONDS),
            ),
            kind="service",
            shapes=both,
            port=b.data_port,
            health_path="/healthz",
            ready_path="/readyz",
        ),
        Process(
            name="ledger-writer",
            summary="drain usage events into the request log",
            argv=(py, manage, "run_ledger_writer"),
            kind="service",
            shapes=both,
        ),
        Process(
            name="scheduler",
            summary="the beat schedule's tasks run in-process (the embedded default's Celery worker and beat)",
            argv=(py, manage, "run_schedule"),
            kind="service",
            shapes=embedded,
        ),
        Process(
            name="celery-worker",
            summary="background tasks: snapshot republish, budget persistence and warnings, roll-ups",
            argv=(py, "-m", "celery", "-A", "controlplane.celery", "worker", "--loglevel=INFO"),
            kind="service",
            shapes=production,
        ),
        Process(
            name="celery-beat",
            summary="the schedule that enqueues those tasks (exactly one per install)",
            argv=(
                py, "-m", "celery", "-A", "controlplane.celery", "beat", "--loglevel=INFO",
                f"--schedule={Path(settings.DATA_DIR) / 'celerybeat-schedule'}",
            ),
            kind="service",
            shapes=production,
        ),
    ]
    return {p.name: p for p in processes}


def shape_processes(shape: str, binding: Binding | None = None, *, python: str | None = None) -> dict[str, Process]:
    return {name: p for name, p in process_set(binding, python=python).items() if shape in p.shapes}
