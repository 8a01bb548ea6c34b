"""Production mode refuses to start half-configured and passes ``check --deploy``;
DEBUG is on only when asked for. Each runs the real settings in a fresh process."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
# As docs/security.md documents it: the four secrets, the audit signing key, the host name, TLS at the load balancer.
DOCUMENTED = {
    "TOLLGATE_ENV": "production",
    "TOLLGATE_SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://tollgate:pw@127.0.0.1:5432/tollgate",
    "TOLLGATE_KEY_PEPPER": secrets.token_urlsafe(32),
    "TOLLGATE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "TOLLGATE_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    "TOLLGATE_ALLOWED_HOSTS": "gateway.example.com",
    "TOLLGATE_CSRF_TRUSTED_ORIGINS": "https://gateway.example.com",
}


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "DATABASE_URL", "REDIS_URL"))}
    full = {**base, "DJANGO_SETTINGS_MODULE": "controlplane.settings", "TOLLGATE_DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


def test_it_passes_check_deploy_as_documented(tmp_path: Path) -> None:
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **DOCUMENTED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_it_warns_when_audit_checkpoints_cannot_be_signed(tmp_path: Path) -> None:
    env = {k: v for k, v in DOCUMENTED.items() if k != "TOLLGATE_AUDIT_SIGNING_KEY"}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **env)
    assert result.returncode != 0
    assert "tollgate.W101" in result.stderr and "TOLLGATE_AUDIT_SIGNING_KEY" in result.stderr
    # Production invents no key of its own.
    assert not (tmp_path / "audit_signing_key").exists()
    bad = run(["manage.py", "check", "--deploy"], tmp_path, **{**DOCUMENTED, "TOLLGATE_AUDIT_SIGNING_KEY": "hunter2"})
    assert bad.returncode != 0 and "tollgate.E101" in bad.stderr


@pytest.mark.parametrize(
    "missing", ["TOLLGATE_SECRET_KEY", "DATABASE_URL", "TOLLGATE_KEY_PEPPER", "TOLLGATE_ENCRYPTION_KEYS"]
)
def test_it_refuses_to_start_production_without_each_secret(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in DOCUMENTED.items() if k != missing}
    result = run(["manage.py", "check"], tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr, result.stderr
    # Nothing was invented in its place.
    assert not list(tmp_path.iterdir())


def test_it_takes_secrets_from_files(tmp_path: Path) -> None:
    env = dict(DOCUMENTED)
    pepper = tmp_path / "key_pepper"
    pepper.write_text(env.pop("TOLLGATE_KEY_PEPPER") + "\n")
    code = "from django.conf import settings; print(settings.KEY_PEPPER.decode())"
    result = run(["-c", f"import django; django.setup(); {code}"], tmp_path, TOLLGATE_KEY_PEPPER_FILE=str(pepper), **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == pepper.read_text().strip()


def test_it_refuses_an_encryption_key_that_is_not_one(tmp_path: Path) -> None:
    result = run(["manage.py", "check"], tmp_path, **{**DOCUMENTED, "TOLLGATE_ENCRYPTION_KEYS": "hunter2"})
    assert result.returncode != 0 and "not a Fernet key" in result.stderr


PROBE = (
    "import django; django.setup()\n"
    "from django.conf import settings\n"
    "from django.test import Client\n"
    "response = Client().get('/no-such-page/')\n"
    "print(settings.DEBUG, response.status_code, b'URLconf' in response.content)\n"
)


def test_it_keeps_debug_off_in_the_embedded_default(tmp_path: Path) -> None:
    result = run(["-c", PROBE], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "404", "False"]


def test_it_turns_debug_on_only_when_asked(tmp_path: Path) -> None:
    result = run(["-c", PROBE], tmp_path, TOLLGATE_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "404", "True"]
