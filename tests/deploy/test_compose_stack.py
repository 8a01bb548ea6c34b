"""The compose stack's load balancer and secrets, checked without Docker."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from audit.signing import private_key_parse
from dataplane import signin
from dataplane.app import ROUTES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HAPROXY_CFG = DEPLOY / "haproxy" / "haproxy.cfg"


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    """deploy/make-secrets run in a copy of deploy/, so the real secrets/ is never touched."""
    copy = tmp_path_factory.mktemp("deploy")
    shutil.copy(DEPLOY / "make-secrets", copy / "make-secrets")
    subprocess.run(
        [str(copy / "make-secrets"), "tollgate.example.com"], check=True, capture_output=True
    )
    return copy / "secrets"


def test_it_makes_every_secret_the_stack_mounts(secrets_dir):
    import yaml

    stack = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, secret in stack["secrets"].items():
        assert (secrets_dir / Path(secret["file"]).name).read_text(), name
    Fernet((secrets_dir / "encryption_keys").read_text().encode())
    private_key_parse((secrets_dir / "audit_signing_key").read_text())
    redis_password = (secrets_dir / "redis_password").read_text()
    assert (secrets_dir / "redis_url").read_text() == f"redis://:{redis_password}@redis:6379/0"
    pg_password = (secrets_dir / "postgres_password").read_text()
    assert (
        secrets_dir / "database_url"
    ).read_text() == f"postgres://tollgate:{pg_password}@postgres:5432/tollgate"
    assert (secrets_dir.stat().st_mode & 0o777) == 0o700


def test_it_keeps_secrets_when_run_again(secrets_dir):
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    subprocess.run(
        [str(secrets_dir.parent / "make-secrets"), "tollgate.example.com"],
        check=True,
        capture_output=True,
    )
    assert {p.name: p.read_bytes() for p in secrets_dir.iterdir()} == before


@pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="haproxy is not installed (Debian package haproxy)"
)
def test_it_ships_a_load_balancer_config_haproxy_accepts(secrets_dir, tmp_path):
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        HAPROXY_CFG.read_text().replace("/run/secrets/tls.pem", str(secrets_dir / "tls.pem"))
    )
    result = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout


def test_it_sends_every_model_route_to_the_data_plane():
    text = HAPROXY_CFG.read_text()
    prefixes = [
        p for line in re.findall(r"acl model_traffic path_beg (.+)", text) for p in line.split()
    ]
    exact = [p for line in re.findall(r"acl model_traffic path (.+)", text) for p in line.split()]
    model_paths = [
        *ROUTES,
        "/mcp",
        "/genai/v1beta/models/x:generateContent",
        "/anthropic/v1/messages",
    ]
    # Claude Code's sign-in: the discovery document and OTLP from the data plane.
    for path in [*model_paths, signin.DISCOVERY_PATH, *signin.OTLP_PATHS]:
        assert path in exact or any(path.startswith(p) for p in prefixes), path
    console_paths = [
        "/",
        "/api/v1/keys/",
        "/accounts/login/",
        "/admin/",
        "/static/app.css",
        "/device/",
    ]
    # The sign-in calls the control plane answers itself.
    for console_path in [*console_paths, *signin.CONTROL_PLANE_PATHS]:
        assert console_path not in exact and not any(
            console_path.startswith(p) for p in prefixes
        ), console_path
