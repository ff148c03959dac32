"""The demo with the connectors' fakes as its social networks, in this process (no server): a
LINE message arrives as a signed webhook, an X mention and DM through polling, an email through
the signed inbound endpoint; each becomes a conversation, and an agent's reply on each reaches
its fake (and is announced on the demo console)."""

from __future__ import annotations

import random
from importlib import import_module

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from madoguchi.accounts.models import User
from madoguchi.connectors.line import tasks as line_tasks
from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.x import inbound as x_inbound
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Delivery, Message, Outbox
from madoguchi.inbox.tasks import deliver_outbox
from madoguchi.web.demo import networks as demo_networks
from madoguchi.web.demo.networks import Networks
from madoguchi.web.demo.seed import TRAFFIC, seed_demo

pytestmark = pytest.mark.django_db
SEEDED: set[int] = set()
YUI, EMMA, LIAM = (next(c for c in TRAFFIC["customers"] if c["id"] == cid) for cid in ("u-sato", "u-emma", "u-liam"))


def client_post(client: Client):
    def post(path: str, body: bytes, headers: dict[str, str]) -> int:
        extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k.lower() != "content-type"}
        return client.post(path, data=body, content_type=headers.get("Content-Type", "application/octet-stream"), **extra).status_code

    return post


@pytest.fixture
def demo():
    seeded = seed_demo()
    SEEDED.clear()
    SEEDED.update(Conversation.objects.values_list("pk", flat=True))
    return seeded


@pytest.fixture
def console() -> list[str]:
    return []


@pytest.fixture
def nets(demo, console):
    networks = Networks(demo, client_post(Client(enforce_csrf_checks=True)), log=console.append, kinds=("line", "x", "email"))
    assert networks.start() == ["line", "x", "email"]
    yield networks
    networks.stop()


def account(demo, kind: str) -> ChannelAccount:
    return next(a for a in demo.accounts if a.kind == kind)


def run_line_deliveries() -> None:
    for row in DBTaskResult.objects.filter(task_path__endswith="line.tasks.process_delivery").order_by("enqueued_at"):
        line_tasks.process_delivery.call(*row.args_kwargs["args"])
        row.delete()


def only_conversation(acc: ChannelAccount) -> Conversation:
    """The conversation the test's traffic opened (the listening replay opened others on X)."""
    return Conversation.objects.exclude(pk__in=SEEDED).get(channel_account=acc)


def agent_reply(conv: Conversation, text: str) -> Message:
    agent = User.objects.get(email="agent1@demo.example")
    reply = inbox_actions.do_reply(conv, author=agent, text=text)
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    reply.refresh_from_db()
    return reply


def test_traffic_arrives_through_the_fakes_and_replies_reach_them(demo, nets, console):
    rng = random.Random(3)
    line, x, email = account(demo, "line"), account(demo, "x"), account(demo, "email")
    for acc in (line, x, email):
        acc.refresh_from_db()
        assert not acc.config.get("simulated") and not Conversation.objects.exclude(pk__in=SEEDED).exists()

    # LINE: a signed webhook delivery to our endpoint, processed by the worker's task.
    assert "signed webhook" in nets.write("line", YUI, "注文した商品がまだ届きません。", "", rng)
    run_line_deliveries()
    line_conv = only_conversation(line)
    assert line_conv.messages.get().text == "注文した商品がまだ届きません。"
    assert line_conv.contact.name == YUI["name"]  # the profile was read from the fake

    # X: a mention on the fake, picked up by the polling task.
    nets.write("x", EMMA, "My order still hasn't arrived.", "", rng, private=False)
    assert x_inbound.do_poll_mentions(x, force=True)["created"] == 1
    x_conv = only_conversation(x)
    mention = x_conv.messages.get()
    assert mention.text == "@demo_support My order still hasn't arrived." and mention.public

    # Email: raw RFC 5322 posted to the signed inbound endpoint.
    nets.write("email", LIAM, "I was charged twice this month.", "Double charge", rng)
    mail_conv = only_conversation(email)
    assert mail_conv.subject == "Double charge" and "charged twice" in mail_conv.messages.get().text

    # The agent answers each; every reply leaves through the adapter and reaches its fake.
    assert agent_reply(line_conv, "ご迷惑をおかけしております。確認いたします。").delivery == Delivery.SENT
    assert agent_reply(x_conv, "Sorry about that! Could you DM us the order number?").delivery == Delivery.SENT
    assert agent_reply(mail_conv, "We are refunding the second charge.").delivery == Delivery.SENT
    line_fake, x_fake, smtp = (nets.networks[k].fake for k in ("line", "x", "email"))
    assert [s["endpoint"] for s in line_fake.sent] == ["reply"]  # the free reply token
    assert line_fake.sent[0]["messages"][0]["text"] == "ご迷惑をおかけしております。確認いたします。"
    assert x_fake.posted[0]["in_reply_to_tweet_id"] == mention.external_id
    assert [m.rcpt_tos for m in smtp.messages] == [[demo_networks.mail_address(LIAM)]]

    shown = nets.replies()
    assert any(s.startswith("→ LINE reply to 佐藤 ゆい (reply token, free)") for s in shown)
    assert any(s.startswith("→ X reply to @emma_w: Sorry about that!") for s in shown)
    assert any(s.startswith(f"→ email to {demo_networks.mail_address(LIAM)} (SMTP) “Re: Double charge") for s in shown)
    assert nets.replies() == []  # each reply is announced once


def test_an_x_dm_is_polled_and_answered_by_dm(demo, nets):
    x = account(demo, "x")
    nets.write("x", YUI, "ポイントの有効期限を教えてください。", "", random.Random(1), private=True)
    assert x_inbound.do_poll_dms(x, force=True)["created"] == 1
    conv = only_conversation(x)
    assert not conv.messages.get().public
    agent_reply(conv, "有効期限は最終ご利用日から1年です。")
    assert nets.networks["x"].fake.dms[0]["to"] == demo_networks.x_user_id(YUI)
    assert nets.replies() == ["→ X DM to @sato_yui: 有効期限は最終ご利用日から1年です。"]


def test_a_fake_that_does_not_start_leaves_its_channel_simulated(demo, console, monkeypatch):
    def broken(self, acc):
        raise OSError("no free port")

    monkeypatch.setattr(Networks, "_start_line", broken)
    networks = Networks(demo, client_post(Client()), log=console.append, kinds=("line", "x"))
    x_id = account(demo, "x").pk
    try:
        assert networks.start() == ["x"]
        assert account(demo, "line").config.get("simulated") is True
        assert any("LINE: the local fake did not start (OSError: no free port); stays simulated" in line for line in console)
        # Sample traffic on the simulated channel is still ingested (directly).
        networks.demo.accounts = [account(demo, "line")]
        shown = networks.send_one(random.Random(5))
        assert shown.startswith("← LINE message from ") and shown.endswith(" (simulated)")
        assert Conversation.objects.exclude(pk__in=SEEDED).filter(channel_account=account(demo, "line")).count() == 1
    finally:
        networks.stop()
    x = ChannelAccount.objects.get(pk=x_id)
    assert x.config.get("simulated") is True  # nothing answers its settings once the demo stops


def test_the_seed_keeps_accounts_stable_and_adds_new_channels(demo):
    ids = {a.kind: a.pk for a in demo.accounts}
    assert {"line", "x", "email", "webchat", "bluesky", "mastodon", "facebook"} <= set(ids)
    ChannelAccount.objects.filter(pk=ids["facebook"]).delete()
    again = seed_demo()
    assert {a.kind: a.pk for a in again.accounts if a.kind != "facebook"} == {k: v for k, v in ids.items() if k != "facebook"}
    assert any(a.kind == "facebook" for a in again.accounts)


def run_queued(task_path: str) -> None:
    """Run the queued tasks of one path, as the worker would."""
    from django.utils.module_loading import import_string

    task = import_string(task_path)
    for row in DBTaskResult.objects.filter(task_path=task_path).order_by("enqueued_at"):
        task.call(*row.args_kwargs["args"], **row.args_kwargs["kwargs"])
        row.delete()


def poll(kind: str):
    def run(acc: ChannelAccount) -> None:
        module = import_module(f"madoguchi.connectors.{kind}.inbound")
        assert module.do_poll_notifications(acc, force=True).get("created") == 1

    return run


def webhook(kind: str):
    return lambda acc: run_queued(f"madoguchi.connectors.{kind}.tasks.process_delivery")


@pytest.mark.parametrize(
    ("kind", "private", "arrive", "shown"),
    [
        ("bluesky", False, poll("bluesky"), "→ Bluesky reply to @emma-w.bsky.social: "),
        ("mastodon", True, poll("mastodon"), "→ Mastodon reply to @emma_w@mastodon.social (direct): "),
        ("facebook", False, webhook("facebook"), "→ Facebook comment reply to Emma Wilson: "),
        ("facebook", True, webhook("facebook"), "→ Facebook Messenger reply to Emma Wilson: "),
        ("instagram", False, webhook("instagram"), "→ Instagram comment reply to @emma_w: "),
        ("instagram", True, webhook("instagram"), "→ Instagram DM to @emma_w: "),
    ],
    ids=["bluesky-mention", "mastodon-direct", "facebook-comment", "facebook-messenger", "instagram-comment", "instagram-dm"],
)
def test_the_other_networks_bring_messages_in_and_take_replies_out(demo, console, kind, private, arrive, shown):
    networks = Networks(demo, client_post(Client(enforce_csrf_checks=True)), log=console.append, kinds=(kind,))
    try:
        assert networks.start() == [kind]
        acc = account(demo, kind)
        networks.write(kind, EMMA, "Is there an outage in my area?", "", random.Random(2), private=private)
        arrive(acc)
        conv = only_conversation(acc)
        assert "Is there an outage in my area?" in conv.messages.get().text
        assert agent_reply(conv, "No outage right now; let's check your router.").delivery == Delivery.SENT
        lines = networks.replies()
        assert len(lines) == 1 and lines[0].startswith(shown) and "check your router" in lines[0]
    finally:
        networks.stop()


def test_a_contact_form_submission_is_answered_by_mail_through_the_demo_mailbox(demo, console):
    networks = Networks(demo, client_post(Client()), log=console.append, kinds=("email",))
    try:
        assert networks.start() == ["email"]
        form = account(demo, "webform")
        networks.demo.accounts = [form]
        assert networks.send_one(random.Random(4)).endswith("(hosted form)")
        conv = only_conversation(form)
        assert conv.contact.identities.filter(kind="email").exists() or conv.contact.email
        agent_reply(conv, "Thank you for your message; here is our answer.")
        smtp = networks.networks["email"].fake
        assert len(smtp.messages) == 1 and smtp.messages[0].mail_from == "support@demo.example"
        assert any("here is our answer" in line for line in networks.replies())
    finally:
        networks.stop()


def test_without_fakes_the_sample_traffic_still_reaches_every_channel(demo):
    """The browser tests' driver and screenshots use this path (no fakes, simulated channels)."""
    from madoguchi.web.demo.seed import send_one

    rng = random.Random(11)
    results = [send_one(demo, rng) for _ in range(40)]
    assert all(r.message is not None for r in results)
    kinds = set(Conversation.objects.exclude(pk__in=SEEDED).values_list("channel_account__kind", flat=True))
    assert {"line", "x", "email", "webchat", "webform", "mastodon"} <= kinds


@pytest.mark.parametrize("kind", ["x", "mastodon"])
def test_after_a_restart_a_mention_from_the_last_run_can_still_be_answered(demo, console, kind):
    first = Networks(demo, client_post(Client()), log=console.append, kinds=(kind,))
    first.start()
    acc = account(demo, kind)
    first.write(kind, YUI, "アプリにログインできません。", "", random.Random(1), private=False)
    poll = x_inbound.do_poll_mentions if kind == "x" else import_module("madoguchi.connectors.mastodon.inbound").do_poll_notifications
    assert poll(acc, force=True)["created"] == 1
    first.stop()
    again = Networks(seed_demo(), client_post(Client()), log=console.append, kinds=(kind,))
    again.start()
    try:
        conv = only_conversation(acc)
        assert agent_reply(conv, "ご不便をおかけしております。").delivery == Delivery.SENT
        (shown,) = again.replies()
        assert "reply to @sato_yui" in shown and shown.endswith("ご不便をおかけしております。")
    finally:
        again.stop()


def test_a_follow_up_mail_joins_the_pending_conversation(demo, nets):
    email = account(demo, "email")
    nets.write("email", LIAM, "I was charged twice this month.", "Double charge", random.Random(1))
    conv = only_conversation(email)
    agent_reply(conv, "Could you send us the invoice number?")
    conv.refresh_from_db()
    assert conv.status == "pending"
    nets.demo.accounts = [email]
    rng = random.Random(1)  # its first draw (< 0.3) picks a follow-up
    assert nets.send_one(rng).startswith("← email from liam_j@mail.example")
    assert conv.messages.filter(direction="in").count() == 2 and only_conversation(email) == conv
