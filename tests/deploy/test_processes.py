"""The process set is one list: `make run`, compose, systemd and Kubernetes start
its processes by name, and each name runs the command line built in one place."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from controlplane.processes import (
    DRAIN_SECONDS,
    EMBEDDED,
    PRODUCTION,
    Binding,
    process_set,
    shape_processes,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
TOLLGATE_IMAGE = "tollgate:latest"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def tollgate_services() -> dict[str, dict]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image") == TOLLGATE_IMAGE}


def test_it_lists_each_process_with_its_command_line(capsys):
    call_command("process")
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    by_name = {name: (kind, shapes, command) for name, kind, shapes, command in lines}
    assert set(by_name) == set(process_set())
    assert by_name["dataplane"][0] == "service"
    assert "--timeout-graceful-shutdown 30" in by_name["dataplane"][2]
    assert by_name["migrate"][0] == "job"
    assert by_name["scheduler"][1] == EMBEDDED


def test_it_refuses_an_unknown_process():
    with pytest.raises(CommandError, match="Unknown process 'web'.*controlplane"):
        call_command("process", "web")


def test_it_runs_the_scheduler_under_make_run_and_celery_in_production():
    embedded = shape_processes(EMBEDDED)
    production = shape_processes(PRODUCTION)
    assert {"controlplane", "dataplane", "ledger-writer", "scheduler"} <= set(embedded)
    assert not {"celery-worker", "celery-beat"} & set(embedded)
    assert {"celery-worker", "celery-beat", "migrate", "bootstrap-admin"} <= set(production)
    assert "scheduler" not in production


def test_it_believes_forwarded_headers_only_behind_a_proxy():
    direct = Binding("0.0.0.0", 8000, 8080, 2, "127.0.0.1", behind_proxy=False)
    proxied = Binding("0.0.0.0", 8000, 8080, 2, "10.0.0.0/8", behind_proxy=True)
    assert "--proxy-headers" not in process_set(direct)["controlplane"].argv
    assert "--proxy-headers" in process_set(proxied)["controlplane"].argv
    dataplane = process_set(proxied)["dataplane"].argv
    assert dataplane[dataplane.index("--forwarded-allow-ips") + 1] == "10.0.0.0/8"
    assert dataplane[dataplane.index("--workers") + 1] == "2"


def test_it_starts_every_compose_service_through_the_process_set():
    services = tollgate_services()
    named = {}
    for name, svc in services.items():
        command = svc["command"]
        assert command[:3] == ["python", "manage.py", "process"], (name, command)
        assert len(command) == 4, (name, command)
        named[name] = command[3]
    assert set(named.values()) == set(shape_processes(PRODUCTION)), "compose and the production process set drifted"
    assert all(service == process for service, process in named.items())


def test_it_gives_every_compose_service_a_health_check():
    for name, svc in compose()["services"].items():
        assert "healthcheck" in svc and svc["healthcheck"]["test"], f"{name} has no health check"
    for name, svc in tollgate_services().items():
        assert svc["healthcheck"]["test"][:5] == ["CMD", "python", "manage.py", "process", name]
        assert "--check" in svc["healthcheck"]["test"]


def test_it_lets_streams_drain_before_compose_kills_a_worker():
    grace = tollgate_services()["dataplane"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > DRAIN_SECONDS


def test_it_keeps_secrets_out_of_the_compose_environment():
    stack = compose()
    for name, svc in tollgate_services().items():
        env = svc["environment"]
        for secret in ("TOLLGATE_SECRET_KEY", "TOLLGATE_KEY_PEPPER", "TOLLGATE_ENCRYPTION_KEYS", "TOLLGATE_AUDIT_SIGNING_KEY", "DATABASE_URL", "REDIS_URL"):
            assert secret not in env, (name, secret)
            assert env[f"{secret}_FILE"].startswith("/run/secrets/"), (name, secret)
        mounted = set(svc["secrets"])
        for value in env.values():
            if str(value).startswith("/run/secrets/"):
                assert str(value).removeprefix("/run/secrets/") in mounted, (name, value)
        assert ("admin_password" in mounted) == (name == "bootstrap-admin")
    assert "--requirepass" in " ".join(stack["services"]["redis"]["command"])
    assert all("file" in s for s in stack["secrets"].values())


def test_it_becomes_the_process_it_names(state_dir, tmp_path):
    """`process controlplane` execs daphne: the pid a supervisor holds is the server's,
    so its SIGTERM reaches the server, and `--check` sees it answer."""
    port = free_port()
    env = {**os.environ, "TOLLGATE_CONTROL_PORT": str(port), "TOLLGATE_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "manage.py", "process", "controlplane"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        check = [sys.executable, "manage.py", "process", "controlplane", "--check"]
        while True:
            result = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            assert proc.poll() is None, "the control plane exited"
            time.sleep(0.5)
        assert result.returncode == 0, result.stderr
        assert "controlplane: ok" in result.stdout
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"daphne" in cmdline and b"manage.py" not in cmdline
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    down = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True)
    assert down.returncode != 0 and "Connection refused" in down.stderr


@pytest.mark.django_db
def test_it_checks_the_migrations_job_is_done(capsys):
    call_command("process", "migrate", "--check")
    assert "migrate: ok" in capsys.readouterr().out


@pytest.mark.django_db
def test_it_checks_the_first_admin_job_is_done(django_user_model):
    with pytest.raises(CommandError, match="no admin exists yet"):
        call_command("process", "bootstrap-admin", "--check")
    django_user_model.objects.create_superuser(username="alice", password="x")
    call_command("process", "bootstrap-admin", "--check")


@pytest.mark.django_db
def test_it_checks_a_worker_without_http_by_its_dependencies(capsys):
    call_command("process", "ledger-writer", "--check")
    assert "ledger-writer: ok" in capsys.readouterr().out
