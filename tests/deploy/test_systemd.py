"""deploy/systemd/: one template per kind of process, instantiated for the process set."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.processes import DRAIN_SECONDS, PRODUCTION, shape_processes

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
EXEC = "/opt/tollgate/venv/bin/python /opt/tollgate/app/manage.py process %i"


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """systemd's format allows a key many times, which configparser does not."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    (value,) = values(section, key)
    return value


def env_names(service: list[tuple[str, str]]) -> dict[str, str]:
    pairs = [item.split("=", 1) for line in values(service, "Environment") for item in line.split()]
    return dict(pairs)


def test_it_wants_exactly_the_production_process_set():
    wants = {name for line in values(unit(UNITS / "tollgate.target")["Unit"], "Wants") for name in line.split()}
    expected = {
        f"tollgate-job@{name}.service" if p.kind == "job" else f"tollgate@{name}.service"
        for name, p in shape_processes(PRODUCTION).items()
    }
    assert wants == expected


@pytest.mark.parametrize("template", ["tollgate@.service", "tollgate-job@.service"])
def test_it_runs_each_process_by_name_hardened(template):
    service = unit(UNITS / template)["Service"]
    assert one(service, "ExecStart") == EXEC
    assert one(service, "EnvironmentFile") == "/etc/tollgate/tollgate.env"
    assert env_names(service)["TOLLGATE_ENV"] == "production"
    assert env_names(service)["TOLLGATE_DATA_DIR"] == "/var/lib/tollgate"
    for key, expected in {
        "DynamicUser": "yes",
        "User": "tollgate",
        "StateDirectory": "tollgate",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert one(service, key) == expected, key


@pytest.mark.parametrize("template", ["tollgate@.service", "tollgate-job@.service"])
def test_it_reads_every_secret_from_a_credential_file(template):
    service = unit(UNITS / template)["Service"]
    env = env_names(service)
    credentials = {line.split(":", 1)[0].lstrip("-") for line in values(service, "LoadCredential")}
    assert {"secret_key", "key_pepper", "encryption_keys", "audit_signing_key", "database_url", "redis_url"} <= credentials
    for name in credentials:
        assert f"%d/{name}" in env.values(), name
    for secret in ("TOLLGATE_SECRET_KEY", "TOLLGATE_KEY_PEPPER", "TOLLGATE_ENCRYPTION_KEYS", "TOLLGATE_AUDIT_SIGNING_KEY", "DATABASE_URL", "REDIS_URL"):
        assert secret not in env and f"{secret}_FILE" in env
    assert ("admin_password" in credentials) == (template == "tollgate-job@.service")


def test_it_gives_streams_time_to_drain_on_stop():
    service = unit(UNITS / "tollgate@.service")["Service"]
    assert int(one(service, "TimeoutStopSec").rstrip("s")) > DRAIN_SECONDS
    assert one(service, "KillMode") == "mixed"


def test_it_starts_long_running_processes_after_the_migrations():
    service_unit = unit(UNITS / "tollgate@.service")["Unit"]
    assert "tollgate-job@migrate.service" in one(service_unit, "Requires")
    admin = unit(UNITS / "tollgate-job@bootstrap-admin.service.d" / "after-migrate.conf")["Unit"]
    assert one(admin, "Requires") == "tollgate-job@migrate.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_it_passes_systemd_analyze_verify(tmp_path):
    """Every instance of the set, with the install paths pointed at this checkout
    (verify checks that ExecStart's program exists)."""
    for path in UNITS.rglob("*"):
        if path.is_file():
            target = tmp_path / path.relative_to(UNITS)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text().replace("/opt/tollgate/venv/bin/python", sys.executable)
            target.write_text(text.replace("/opt/tollgate/app", str(ROOT)))
    instances = [
        tmp_path / (f"tollgate-job@{name}.service" if p.kind == "job" else f"tollgate@{name}.service")
        for name, p in shape_processes(PRODUCTION).items()
    ]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, instances), str(tmp_path / "tollgate.target")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # verify only warns (exit 0) on unknown keys and unparsable values: any output fails.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result.stderr
