"""The demo workspace and the sample traffic that keeps its inbox alive.

Everything goes through the real entry points: do_ingest for customers' messages, the inbox
actions for agents. Channel accounts are created `simulated`: replies leave through the outbox
and the internal channel instead of a real platform. `madoguchi demo` then connects them to the
connectors' local fakes (networks.py), so its traffic and replies take the platforms' real paths.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from madoguchi.accounts import actions as account_actions
from madoguchi.accounts.models import Brand, Role, Team, User, Workspace
from madoguchi.connectors.base import InboundAuthor, InboundItem
from madoguchi.connectors.models import ChannelAccount
from madoguchi.inbox.models import Conversation, Status
from madoguchi.ingest.actions import IngestResult, do_ingest
from madoguchi.web.demo import webchat as demo_webchat
from madoguchi.web.demo import webform as demo_webform

TRAFFIC = json.loads((Path(__file__).parent / "traffic.json").read_text(encoding="utf-8"))
DEMO_PASSWORD = "madoguchi-demo"
DEMO_USERS = [
    ("admin@demo.example", "Aiko Admin", Role.ADMIN),
    ("manager@demo.example", "Mori Manager", Role.MANAGER),
    ("agent1@demo.example", "Kenta Agent", Role.AGENT),
    ("agent2@demo.example", "Sara Agent", Role.AGENT),
]
DEMO_ACCOUNTS = [
    ("x", "@demo_support"),
    ("line", "Demo LINE"),
    ("email", "support@demo.example"),
    ("webchat", "Website chat"),
    ("bluesky", "@demo-support.bsky.social"),
    ("mastodon", "@demo_support@mastodon.example"),
    ("facebook", "Demo Mobile (Facebook)"),
    ("instagram", "@demomobile"),
    ("webform", "Contact form"),
]


@dataclass
class Demo:
    workspace: Workspace
    accounts: list[ChannelAccount]


@transaction.atomic
def seed_demo() -> Demo:
    """Create the demo workspace, its users, brand, team and simulated channel accounts (idempotent)."""
    ws = Workspace.objects.filter(slug="demo").first()
    if ws is None:
        ws = account_actions.do_create_workspace("Demo", brand="Demo Mobile")
        ws.slug = "demo"
        ws.save()
        users = [
            account_actions.do_create_user(email, workspace=ws, role=role, password=DEMO_PASSWORD, name=name)
            for email, name, role in DEMO_USERS
        ]
        account_actions.do_create_team(ws, "Tier 1", users[2:])
        _create_accounts(ws)
        _seed_knowledge_and_listening(ws, users[1])
    _create_accounts(ws)  # the channels added to the demo since this workspace was made
    for account in ChannelAccount.objects.filter(workspace=ws, kind="webchat"):
        demo_webchat.setup_demo_widget(account)  # a real widget: its sample visitors write through it
    for account in ChannelAccount.objects.filter(workspace=ws, kind="webform"):
        demo_webform.setup_demo_form(account)  # a real form: its sample customers fill it in
    return Demo(ws, list(ChannelAccount.objects.filter(workspace=ws)))


def _create_accounts(ws: Workspace) -> None:
    brand = Brand.objects.filter(workspace=ws).order_by("pk")[0]
    for kind, name in DEMO_ACCOUNTS:
        if not ChannelAccount.objects.filter(workspace=ws, kind=kind, name=name).exists():
            ChannelAccount.objects.create(workspace=ws, brand=brand, kind=kind, name=name, handle=name, config={"simulated": True})


def _seed_knowledge_and_listening(ws: Workspace, manager: User) -> None:
    """FAQ articles for the suggestions panel and help site; listening rules and a day of public posts."""
    from madoguchi.kb.actions import do_import
    from madoguchi.listening.actions import do_import_rules
    from madoguchi.listening.replay import do_replay

    faq = (Path(__file__).parent / "faq.jsonl").read_text(encoding="utf-8").splitlines()
    do_import(ws, ((n, json.loads(line)) for n, line in enumerate(faq, start=1)), actor=manager)
    fixtures = Path(__file__).resolve().parents[2] / "listening" / "fixtures"
    do_import_rules(ws, (fixtures / "demo_rules.yaml").read_text(encoding="utf-8"))
    do_replay(ws, (fixtures / "demo_day.jsonl").read_text(encoding="utf-8").splitlines())


def _item(account: ChannelAccount, customer: dict, text: str, subject: str = "") -> InboundItem:
    now = timezone.now()
    return InboundItem(
        external_id=f"demo-{account.pk}-{now.timestamp():.6f}-{random.randrange(10**6)}",
        author=InboundAuthor(
            external_id=f"{account.kind}:{customer['id']}",
            handle=customer["handle"] if account.kind != "email" else f"{customer['handle']}@mail.example",
            display_name=customer["name"],
            email=f"{customer['handle'].replace('.', '_')}@mail.example" if account.kind == "email" else "",
            followers=customer["followers"] if account.kind == "x" else None,
            language=customer["lang"],
        ),
        text=text,
        subject=subject if account.kind == "email" else "",
        created_at=now,
        language=customer["lang"],
        public=account.kind == "x" and random.random() < 0.4,
    )


def send_one(demo: Demo, rng: random.Random) -> IngestResult:
    """One customer message: usually a new question, sometimes a follow-up to a pending conversation."""
    pending = list(
        Conversation.objects.filter(workspace=demo.workspace, status=Status.PENDING).select_related("contact", "channel_account")[:20]
    )
    if pending and rng.random() < 0.3:
        conv = rng.choice(pending)
        identity = conv.contact.identities.filter(kind=conv.channel_account.kind).first()
        if identity is not None:
            customer = {"id": identity.external_id.split(":", 1)[-1], "handle": identity.handle.split("@")[0], "name": identity.display_name, "lang": identity.language or "en", "followers": identity.followers or 0}
            text = rng.choice(TRAFFIC["followups"][customer["lang"]])
            return _write(conv.channel_account, customer, text)
    customer = rng.choice(TRAFFIC["customers"])
    account = rng.choice(demo.accounts)
    lang = customer["lang"]
    return _write(account, customer, rng.choice(TRAFFIC["openers"][lang]), rng.choice(TRAFFIC["subjects"][lang]))


def _write(account: ChannelAccount, customer: dict, text: str, subject: str = "") -> IngestResult:
    if account.kind == "webchat":  # through the chat widget's API, as a visitor on a website
        return demo_webchat.send(account, customer, text)
    if account.kind == "webform":  # the hosted contact form, filled in as a browser does
        return demo_webform.send(account, customer, text, subject, f"{customer['handle'].replace('.', '_')}@mail.example")
    return do_ingest(account, _item(account, customer, text, subject))


def agents(demo: Demo) -> list[User]:
    return list(User.objects.filter(workspace=demo.workspace))


def teams(demo: Demo) -> list[Team]:
    return list(Team.objects.filter(workspace=demo.workspace))
