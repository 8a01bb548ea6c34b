"""`manage.py bootstrap_admin`: the first admin of a production install from its secrets."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
User = get_user_model()


def run(capsys) -> str:
    call_command("bootstrap_admin")
    return capsys.readouterr().out


def test_it_creates_the_first_admin_from_environment_values(monkeypatch, capsys):
    monkeypatch.setenv("TOLLGATE_ADMIN_USERNAME", "alice")
    monkeypatch.setenv("TOLLGATE_ADMIN_EMAIL", "alice@example.com")
    monkeypatch.setenv("TOLLGATE_ADMIN_PASSWORD", "correct horse battery staple")
    out = run(capsys)
    assert "Created the first admin 'alice' with the given password." in out
    assert "correct horse" not in out
    alice = User.objects.get(username="alice")
    assert alice.is_superuser and alice.is_staff and alice.email == "alice@example.com"
    assert alice.check_password("correct horse battery staple")
    event = AuditEvent.objects.get(action="user.bootstrap_admin")
    assert event.actor_label == "system"


def test_it_reads_the_password_from_a_secret_file(monkeypatch, capsys, tmp_path):
    secret = tmp_path / "admin_password"
    secret.write_text("a long mounted secret value\n")
    monkeypatch.delenv("TOLLGATE_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("TOLLGATE_ADMIN_USERNAME", raising=False)
    monkeypatch.setenv("TOLLGATE_ADMIN_PASSWORD_FILE", str(secret))
    run(capsys)
    assert User.objects.get(username="admin").check_password("a long mounted secret value")


def test_it_changes_nothing_when_run_again(monkeypatch, capsys):
    monkeypatch.setenv("TOLLGATE_ADMIN_USERNAME", "alice")
    monkeypatch.setenv("TOLLGATE_ADMIN_PASSWORD", "correct horse battery staple")
    run(capsys)
    monkeypatch.setenv("TOLLGATE_ADMIN_USERNAME", "bob")
    monkeypatch.setenv("TOLLGATE_ADMIN_PASSWORD", "another strong passphrase")
    assert "An admin exists already; nothing changed." in run(capsys)
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    assert User.objects.get(username="alice").check_password("correct horse battery staple")
    assert AuditEvent.objects.filter(action="user.bootstrap_admin").count() == 1


def test_it_prints_a_generated_password_once_when_none_is_given(monkeypatch, capsys):
    monkeypatch.delenv("TOLLGATE_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("TOLLGATE_ADMIN_PASSWORD_FILE", raising=False)
    monkeypatch.setenv("TOLLGATE_ADMIN_USERNAME", "charlie")
    out = run(capsys)
    password = out.rsplit(": ", 1)[1].strip()
    assert len(password) >= 20
    assert User.objects.get(username="charlie").check_password(password)


def test_it_refuses_a_weak_password(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ADMIN_PASSWORD", "password")
    with pytest.raises(CommandError, match="TOLLGATE_ADMIN_PASSWORD is too weak"):
        call_command("bootstrap_admin")
    assert not User.objects.exists()
