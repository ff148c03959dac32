"""Fixtures of the email connector tests: a mailbox account in the cast's workspace, .eml files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from madoguchi.connectors.models import ChannelAccount

EML = Path(__file__).parent / "eml"


@pytest.fixture
def eml() -> Callable[[str], bytes]:
    return lambda name: (EML / name).read_bytes()


@pytest.fixture
def mailbox(cast) -> ChannelAccount:
    """The Acme support mailbox (no servers configured; tests add what they need)."""
    return ChannelAccount.objects.create(
        workspace=cast.ws,
        brand=cast.brand,
        kind="email",
        name="support@acme.example",
        handle="support@acme.example",
        config={"address": "support@acme.example", "from_name": "Acme サポート"},
        secrets={"inbound_secret": "s3cret-inbound"},
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """These tests never log in: the cast's users need no argon2 work (seconds on a busy machine)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
