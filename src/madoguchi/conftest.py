"""The seeded cast shared by every test.

Workspace A ("Acme") has an admin, a manager, two agents, a team, a brand with an internal
channel account, and customers; workspace B ("Beta") has its own agent and a conversation
that nothing in A may ever see.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest
from django.test import Client
from django.utils import timezone

from madoguchi.accounts import actions as account_actions
from madoguchi.accounts.models import Brand, Role, Team, User, Workspace
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest.actions import IngestResult, do_ingest

PASSWORD = "correct horse battery staple"
_ids = itertools.count(1)


@dataclass
class Cast:
    ws: Workspace
    admin: User
    manager: User
    agent: User
    agent2: User
    team: Team
    brand: Brand
    account: ChannelAccount
    ws_b: Workspace
    agent_b: User
    account_b: ChannelAccount

    def inbound(
        self,
        text: str = "Hello, I need help",
        *,
        account: ChannelAccount | None = None,
        customer: str = "cust-1",
        name: str = "Yui Sato",
        external_id: str | None = None,
        **extra: object,
    ) -> IngestResult:
        """A customer writes in through the real ingest entry point."""
        item = InboundItem(
            external_id=external_id or f"ext-{next(_ids)}",
            author=InboundAuthor(external_id=customer, handle=customer, display_name=name),
            text=text,
            created_at=timezone.now(),
            **extra,  # type: ignore[arg-type]
        )
        return do_ingest(account or self.account, item)


def _make_cast() -> Cast:
    ws = account_actions.do_create_workspace("Acme")
    brand = Brand.objects.get(workspace=ws)
    users = {
        role: account_actions.do_create_user(f"{role}@acme.example", workspace=ws, role=role, password=PASSWORD, name=role.title())
        for role in (Role.ADMIN, Role.MANAGER, Role.AGENT)
    }
    agent2 = account_actions.do_create_user("agent2@acme.example", workspace=ws, role=Role.AGENT, password=PASSWORD, name="Agent Two")
    team = account_actions.do_create_team(ws, "Tier 1", [users[Role.AGENT], agent2])
    account = ChannelAccount.objects.create(workspace=ws, brand=brand, kind="internal", name="Acme internal")
    ws_b = account_actions.do_create_workspace("Beta")
    agent_b = account_actions.do_create_user("agent@beta.example", workspace=ws_b, role=Role.AGENT, password=PASSWORD)
    account_b = ChannelAccount.objects.create(workspace=ws_b, brand=Brand.objects.get(workspace=ws_b), kind="internal", name="Beta internal")
    return Cast(ws, users[Role.ADMIN], users[Role.MANAGER], users[Role.AGENT], agent2, team, brand, account, ws_b, agent_b, account_b)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is deliberately slow; tests that are not about hashing use a fast hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_listening_rules():
    """Compiled rule sets are cached per workspace id and rule-set version; rolled-back tests
    reuse both, so each test starts from an empty cache."""
    from madoguchi.listening.actions import forget_compiled_rules

    forget_compiled_rules()
    yield
    forget_compiled_rules()


@pytest.fixture
def cast(db) -> Cast:
    return _make_cast()


@pytest.fixture
def client_for(db):
    """A CSRF-enforcing test client logged in as the given user."""

    def make(user: User) -> Client:
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        return client

    return make


def csrf_post(client: Client, url: str, data: dict | None = None, **extra: object):
    """POST like a browser: fetch the CSRF cookie first and send the token."""
    if "csrftoken" not in client.cookies:
        client.get("/settings/")
    token = client.cookies["csrftoken"].value
    return client.post(url, data or {}, HTTP_X_CSRFTOKEN=token, **extra)


@pytest.fixture
def in_a_minute():
    return timezone.now() + dt.timedelta(minutes=1)
