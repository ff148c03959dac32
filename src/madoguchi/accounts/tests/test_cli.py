"""The operator's command line: createuser and token create."""

import io

import pytest
from django.core.management import CommandError, call_command

from madoguchi.accounts.models import User
from madoguchi.accounts.queries import user_for_token

pytestmark = pytest.mark.django_db


def test_createuser_reads_the_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    out = io.StringIO()
    call_command("createuser", "Boss@Example.com", workspace="Gamma", role="admin", password_stdin=True, stdout=out)
    user = User.objects.get(email="boss@example.com")
    assert user.role == "admin" and user.workspace.name == "Gamma"
    assert user.check_password("a long enough secret")
    assert "created admin" in out.getvalue()


def test_createuser_refuses_a_short_password_and_a_duplicate(cast, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(CommandError, match="8 characters"):
        call_command("createuser", "new@example.com", workspace="Acme", role="agent", password_stdin=True)
    with pytest.raises(CommandError, match="already exists"):
        call_command("createuser", "agent@acme.example", workspace="Acme", role="agent")


def test_token_create_prints_a_working_token(cast):
    out = io.StringIO()
    call_command("token", "create", "agent@acme.example", stdout=out)
    assert user_for_token(out.getvalue().strip()) == cast.agent


def test_token_create_for_unknown_user_fails_clearly(cast):
    with pytest.raises(CommandError, match="no user"):
        call_command("token", "create", "nobody@example.com")
