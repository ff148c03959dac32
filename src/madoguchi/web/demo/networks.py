"""The demo's social networks: each connector's local fake, with the demo's channel accounts
pointed at it, and sample customers who write in through the platform's real path.

- LINE: a signed webhook delivery (`x-line-signature`) POSTed to our endpoint; replies use the
  reply token (or push) on the fake.
- X: mentions and DMs placed on the fake; the worker's polling tasks pick them up; replies are
  posts with `in_reply_to_tweet_id` or DMs on the fake.
- Email: raw RFC 5322 mail POSTed to the signed inbound endpoint; replies leave by SMTP to a
  local aiosmtpd server.
- Bluesky and Mastodon: mentions (and Mastodon direct messages) on their fakes, picked up by
  their pollers; replies are posts threaded on the fake.
- Facebook and Instagram: comments and direct messages as signed webhook deliveries
  (`X-Hub-Signature-256`); replies are comment replies and Send API messages on the fake.

A channel whose fake is missing or does not start stays simulated (replies go through the
internal channel) and its sample messages are ingested directly, as before. The accounts keep
their ids across restarts (their conversations persist); only their settings change, since the
fakes listen on new ports each time.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

from django.utils import timezone

from madoguchi.connectors.models import ChannelAccount
from madoguchi.inbox.models import Conversation, Direction, Message, Status
from madoguchi.web.demo import seed

logger = logging.getLogger(__name__)

# Where traffic goes in: (path, body, headers) → HTTP status. The demo posts to its running
# server; the tests post through Django's test client.
Post = Callable[[str, bytes, dict[str, str]], int]

X_BRAND = ("1500000000000000001", "demo_support")
BLUESKY_BRAND = ("did:plc:madoguchidemo7x2kq4nwzvb", "demo-support.bsky.social")
MASTODON_BRAND = "demo_support"
POLL_SECONDS = 5  # the demo's pollers ask their fakes this often (the connectors' defaults are 30-60 s)
NETWORK_KINDS = ("line", "x", "email", "bluesky", "mastodon", "facebook", "instagram")
LABELS = {"line": "LINE", "x": "X", "email": "email", "bluesky": "Bluesky", "mastodon": "Mastodon", "facebook": "Facebook", "instagram": "Instagram", "webchat": "web chat", "webform": "contact form"}
INSTAGRAM_BRAND = "demomobile"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def line_user_id(customer: dict) -> str:
    return "U" + _digest(customer["id"])[:32]


def x_user_id(customer: dict) -> str:
    return str(1_600_000_000_000_000_000 + int(_digest(customer["id"])[:12], 16))


def x_username(customer: dict) -> str:
    return customer["handle"].replace(".", "_")[:15]


def bluesky_did(customer: dict) -> str:
    return "did:plc:" + base64.b32encode(bytes.fromhex(_digest(customer["id"])[:30])).decode().lower()[:24]


def bluesky_handle(customer: dict) -> str:
    return customer["handle"].replace("_", "-").replace(".", "-") + ".bsky.social"


def facebook_psid(customer: dict) -> str:
    return str(7_000_000_000_000_000 + int(_digest(customer["id"])[:12], 16) % 10**15)


def instagram_id(customer: dict) -> str:
    return str(17_841_000_000_000_000 + int(_digest("ig" + customer["id"])[:12], 16) % 10**12)


def mail_address(customer: dict) -> str:
    return f"{customer['handle'].replace('.', '_')}@mail.example"


@dataclass
class Network:
    """One running fake and the demo account that talks to it."""

    kind: str
    account: ChannelAccount
    fake: Any
    stop: Callable[[], None]
    reported: dict[str, int] = field(default_factory=dict)  # outgoing list → how many were shown
    extra: dict[str, Any] = field(default_factory=dict)


class Networks:
    """Start the fakes, connect the demo's accounts to them, write as customers, watch replies."""

    def __init__(self, demo: seed.Demo, post: Post, log: Callable[[str], None] = print, kinds: tuple[str, ...] = NETWORK_KINDS):
        self.demo = demo
        self.post = post
        self.log = log
        self.kinds = kinds
        self.networks: dict[str, Network] = {}
        self.customers: list[dict] = seed.TRAFFIC["customers"]

    # --- starting and stopping ---------------------------------------------------------------

    def start(self) -> list[str]:
        """Start every fake that can start; returns the kinds now connected to a fake."""
        for kind in NETWORK_KINDS:
            account = self._account(kind)
            if account is None:
                continue
            if kind not in self.kinds:  # left pointing at a fake of a run that was killed, perhaps
                if not account.config.get("simulated"):
                    _set_simulated(account)
                continue
            try:
                network = getattr(self, f"_start_{kind}")(account)
            except Exception as exc:  # a missing or broken fake: this channel stays simulated
                logger.warning("the %s fake did not start (%s: %s); the channel stays simulated", kind, type(exc).__name__, exc)
                self.log(f"  {LABELS[kind]}: the local fake did not start ({type(exc).__name__}: {exc}); stays simulated")
                _set_simulated(account)
                continue
            self.networks[kind] = network
        return list(self.networks)

    def stop(self) -> None:
        """Stop the fakes and mark their accounts simulated again (nothing answers them now)."""
        for network in self.networks.values():
            try:
                network.stop()
            except Exception:
                logger.exception("stopping the %s fake failed", network.kind)
            try:
                _set_simulated(network.account)
            except Exception:
                logger.exception("could not mark the %s account simulated", network.kind)
        self.networks.clear()

    def _account(self, kind: str) -> ChannelAccount | None:
        name = dict(seed.DEMO_ACCOUNTS).get(kind)
        return ChannelAccount.objects.filter(workspace=self.demo.workspace, kind=kind, name=name).first()

    def _connect(self, account: ChannelAccount, config: dict[str, Any], secrets_: dict[str, str]) -> None:
        """Point the account at a freshly started fake: new settings, no cursors or health left
        over from the last run (the fake starts empty), not simulated."""
        account.config = config
        account.secrets = secrets_
        account.save(update_fields=["config", "secrets"])
        self.demo.accounts = [account if known.pk == account.pk else known for known in self.demo.accounts]

    def _attach(self, kind: str, account: ChannelAccount, fake: Any, *, config: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Network:
        """Connect the account to a started fake (the fake's own settings, plus `config`)."""
        settings, secrets_ = fake.account_settings()
        self._connect(account, {**settings, **(config or {})}, secrets_)
        return Network(kind, account, fake, fake.stop, extra=extra or {})

    def _start_line(self, account: ChannelAccount) -> Network:
        from madoguchi.connectors.line.fake import FakeLine

        fake = FakeLine(channel_secret=secrets.token_hex(16), access_token=secrets.token_urlsafe(24)).start()
        for customer in self.customers:
            fake.add_user(line_user_id(customer), customer["name"], language=customer["lang"])
        return self._attach("line", account, fake, extra={"tokens": {}})

    def _start_x(self, account: ChannelAccount) -> Network:
        from madoguchi.connectors.x.fake import FakeX

        fake = FakeX(brand_id=X_BRAND[0], brand_username=X_BRAND[1])
        # Ids like X's snowflakes (time-based), so a restarted fake never reuses a stored post's id.
        fake._ids = itertools.count((int(time.time() * 1000) - 1288834974657) << 22, 4_194_304)
        fake.start()
        for customer in self.customers:
            fake.add_user(x_user_id(customer), x_username(customer), customer["name"], followers=customer["followers"])
        for tweet_id, author_id, text in _earlier_posts(account):
            if tweet_id.isdigit() and tweet_id not in fake.tweets:
                fake.tweets[tweet_id] = {"id": tweet_id, "text": text, "author_id": author_id, "edit_history_tweet_ids": [tweet_id], "conversation_id": tweet_id, "created_at": "2026-01-01T00:00:00.000Z", "lang": "und"}
        return self._attach("x", account, fake, config={"poll_seconds": POLL_SECONDS, "poll_dms": True, "username": X_BRAND[1]})

    def _start_email(self, account: ChannelAccount) -> Network:
        from madoguchi.connectors.email.fake import SmtpServer

        smtp = SmtpServer()
        smtp.__enter__()
        address = str(account.config.get("address") or "support@demo.example")
        config = {"address": address, "from_name": "Demo Mobile", "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none"}
        secret = str((account.secrets or {}).get("inbound_secret") or secrets.token_urlsafe(24))
        self._connect(account, config, {"inbound_secret": secret})
        return Network("email", account, smtp, lambda: smtp.__exit__(None, None, None))

    def mail_settings(self) -> dict[str, str]:
        """Environment for the web server and worker: Django's own mail (form confirmations,
        health alerts, password resets) goes to the local SMTP fake too, when it runs."""
        network = self.networks.get("email")
        if network is None:
            return {}
        return {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(network.fake.port), "DEFAULT_FROM_EMAIL": str(network.account.config.get("address") or "")}

    def _start_bluesky(self, account: ChannelAccount) -> Network:
        from madoguchi.connectors.bluesky.fake import FakeBluesky

        fake = FakeBluesky(brand_did=BLUESKY_BRAND[0], brand_handle=BLUESKY_BRAND[1]).start()
        for customer in self.customers:
            fake.add_user(bluesky_did(customer), bluesky_handle(customer), customer["name"], followers=customer["followers"])
        return self._attach("bluesky", account, fake, config={"poll_seconds": POLL_SECONDS})

    def _start_mastodon(self, account: ChannelAccount) -> Network:
        from madoguchi.connectors.mastodon.fake import FakeMastodon

        fake = FakeMastodon(brand_username=MASTODON_BRAND)
        now_ms = int(time.time() * 1000)
        fake._status_ids = itertools.count(now_ms << 16, 65_536)  # Mastodon's ids are time-based too
        fake._notification_ids = itertools.count(now_ms)
        fake.start()
        ids = {}
        for customer in self.customers:
            domain = "mstdn.jp" if customer["lang"] == "ja" else "mastodon.social"
            ids[customer["id"]] = fake.add_account(customer["handle"].replace(".", "_"), customer["name"], followers=customer["followers"], domain=domain)["id"]
        for status_id, author_id, text in _earlier_posts(account):
            author = fake.accounts.get(author_id)
            if author is not None and status_id not in fake.statuses:
                fake.statuses[status_id] = {"id": status_id, "account": author, "visibility": "public", "text": text, "content": "", "mentions": [], "tags": []}
        return self._attach("mastodon", account, fake, config={"poll_seconds": POLL_SECONDS}, extra={"ids": ids})

    def _start_facebook(self, account: ChannelAccount) -> Network:
        from madoguchi.connectors.facebook.fake import FakeGraph

        fake = FakeGraph(page_name="Demo Mobile").start()
        for customer in self.customers:
            fake.add_user(facebook_psid(customer), customer["name"], picture=False)
            # They may have written in an earlier run (this fake starts empty); the Send API
            # must know them. Our own 24-hour window check, from the stored messages, still applies.
            fake.last_user_message[facebook_psid(customer)] = time.time()
        post = fake.page_post("新しいスマホプランの受付を始めました！ご質問はコメントでどうぞ。/ Our new plans are here — ask us anything in the comments.")
        return self._attach("facebook", account, fake, extra={"post": post["id"]})

    def _start_instagram(self, account: ChannelAccount) -> Network:
        from madoguchi.connectors.instagram.fake import FakeInstagram

        fake = FakeInstagram(page_name="Demo Mobile", ig_username=INSTAGRAM_BRAND).start()
        for customer in self.customers:
            fake.add_user(instagram_id(customer), customer["name"], username=customer["handle"], followers=customer["followers"], picture=False)
            fake.last_user_message[instagram_id(customer)] = time.time()  # as for Facebook above
        media = fake.ig_media("冬の新作ケース、発売しました📱 / Our winter cases are out!")
        return self._attach("instagram", account, fake, extra={"media": media})

    # --- customers writing in ----------------------------------------------------------------

    def send_one(self, rng: random.Random) -> str:
        """One customer message on a random channel: usually a new question, sometimes a
        follow-up to a pending conversation. Returns a line for the console."""
        accounts = self.demo.accounts
        pending = list(
            Conversation.objects.filter(workspace=self.demo.workspace, status=Status.PENDING, channel_account__kind__in=list(self.networks))
            .select_related("contact", "channel_account")[:20]
        )
        if pending and rng.random() < 0.3:
            conv = rng.choice(pending)
            customer = self._customer_of(conv)
            if customer is not None:
                public = Message.objects.filter(conversation=conv, direction=Direction.INBOUND).order_by("-pk").values_list("public", flat=True).first()
                text = rng.choice(seed.TRAFFIC["followups"][customer["lang"]])
                subject = f"Re: {conv.subject} [#{conv.pk}]"  # the token our replies carry threads it by subject
                return self.write(conv.channel_account.kind, customer, text, subject, rng, private=None if public is None else not public)
        customer = rng.choice(self.customers)
        account = rng.choice(accounts)
        lang = customer["lang"]
        text, subject = rng.choice(seed.TRAFFIC["openers"][lang]), rng.choice(seed.TRAFFIC["subjects"][lang])
        if account.kind in self.networks:
            return self.write(account.kind, customer, text, subject, rng)
        seed._write(account, customer, text, subject)  # web chat (through its widget) or a simulated channel
        how = {"webchat": "widget API", "webform": "hosted form"}.get(account.kind, "simulated")
        return f"← {LABELS.get(account.kind, account.kind)} message from {customer['name']} ({how})"

    def _customer_of(self, conv: Conversation) -> dict | None:
        names = set(conv.contact.identities.values_list("display_name", flat=True)) | {conv.contact.name}
        return next((c for c in self.customers if c["name"] in names), None)

    def write(self, kind: str, customer: dict, text: str, subject: str, rng: random.Random, *, private: bool | None = None) -> str:
        """`customer` writes `text` on the `kind` network, the way that platform delivers it."""
        network = self.networks[kind]
        return str(getattr(self, f"_write_{kind}")(network, customer, text, subject, rng, private))

    def _deliver(self, network: Network, endpoint: str, body: bytes, headers: dict[str, str]) -> None:
        """POST a signed delivery to the connector's `endpoint`, as the platform would."""
        status = self.post(f"/connectors/{network.kind}/{network.account.pk}/{endpoint}/", body, headers)
        if not 200 <= status < 300:
            raise RuntimeError(f"{LABELS[network.kind]} {endpoint} answered {status}")

    def _write_line(self, network: Network, customer: dict, text: str, subject: str, rng: random.Random, private: bool | None) -> str:
        fake, user = network.fake, line_user_id(customer)
        event = fake.text_event(user, text)
        network.extra["tokens"][event["replyToken"]] = customer
        body, signature = fake.delivery([event])
        self._deliver(network, "webhook", body, {"Content-Type": "application/json; charset=utf-8", "X-Line-Signature": signature})
        return f"← LINE message from {customer['name']} (signed webhook)"

    def _write_x(self, network: Network, customer: dict, text: str, subject: str, rng: random.Random, private: bool | None) -> str:
        fake, user = network.fake, x_user_id(customer)
        dm = rng.random() < 0.4 if private is None else private
        if dm:
            fake.dm(user, text)
            return f"← X DM from @{x_username(customer)} (picked up by polling)"
        fake.post(user, f"@{X_BRAND[1]} {text}", lang=customer["lang"])
        return f"← X mention from @{x_username(customer)} (picked up by polling)"

    def _write_email(self, network: Network, customer: dict, text: str, subject: str, rng: random.Random, private: bool | None) -> str:
        from madoguchi.connectors.email.views import SIGNATURE_HEADER, sign

        mail = EmailMessage()
        mail["From"] = formataddr((customer["name"], mail_address(customer)))
        mail["To"] = formataddr(("Demo Mobile", str(network.account.config.get("address"))))
        mail["Subject"] = subject or ("お問い合わせ" if customer["lang"] == "ja" else "Question")
        mail["Date"] = format_datetime(timezone.now())
        mail["Message-ID"] = make_msgid(idstring=uuid.uuid4().hex[:12], domain="mail.example")
        mail.set_content(text)
        body = mail.as_bytes()
        secret = str(network.account.secrets.get("inbound_secret"))
        self._deliver(network, "inbound", body, {"Content-Type": "message/rfc822", SIGNATURE_HEADER: sign(secret, body)})
        return f"← email from {mail_address(customer)} (signed inbound endpoint)"

    def _write_bluesky(self, network: Network, customer: dict, text: str, subject: str, rng: random.Random, private: bool | None) -> str:
        fake = network.fake
        fake.post(bluesky_did(customer), f"@{BLUESKY_BRAND[1]} {text}", mention=BLUESKY_BRAND[0], langs=(customer["lang"],))
        return f"← Bluesky mention from @{bluesky_handle(customer)} (picked up by polling)"

    def _write_mastodon(self, network: Network, customer: dict, text: str, subject: str, rng: random.Random, private: bool | None) -> str:
        fake = network.fake
        direct = rng.random() < 0.3 if private is None else private
        author = network.extra["ids"][customer["id"]]
        fake.post(author, f"@{MASTODON_BRAND} {text}", visibility="direct" if direct else "public", language=customer["lang"])
        what = "direct message" if direct else "mention"
        return f"← Mastodon {what} from @{fake.accounts[author]['acct']} (picked up by polling)"

    def _write_facebook(self, network: Network, customer: dict, text: str, subject: str, rng: random.Random, private: bool | None) -> str:
        fake, psid = network.fake, facebook_psid(customer)
        messenger = rng.random() < 0.4 if private is None else private
        entry = fake.messaging(fake.message(psid, text)) if messenger else fake.feed(fake.comment(psid, network.extra["post"], text))
        body, signature = fake.delivery(entry)
        self._deliver(network, "webhook", body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature})
        return f"← Facebook {'Messenger message' if messenger else 'comment'} from {customer['name']} (signed webhook)"

    def _write_instagram(self, network: Network, customer: dict, text: str, subject: str, rng: random.Random, private: bool | None) -> str:
        fake, igsid = network.fake, instagram_id(customer)
        direct = rng.random() < 0.4 if private is None else private
        if direct:
            entry = fake.messaging(fake.message(igsid, text, instagram=True), instagram=True)
        else:
            entry = fake.ig_changes("comments", fake.ig_comment(igsid, network.extra["media"], text))
        body, signature = fake.delivery(entry)
        self._deliver(network, "webhook", body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature})
        return f"← Instagram {'DM' if direct else 'comment'} from @{customer['handle']} (signed webhook)"

    # --- replies going out -------------------------------------------------------------------

    def replies(self) -> list[str]:
        """One console line for each reply the fakes received since the last call."""
        lines: list[str] = []
        for network in self.networks.values():
            try:
                lines += getattr(self, f"_replies_{network.kind}")(network)
            except Exception:  # a reply we cannot describe must not stop the demo
                logger.exception("reading the %s fake's replies failed", network.kind)
        return lines

    def _new(self, network: Network, name: str, items: list[Any]) -> list[Any]:
        seen = network.reported.get(name, 0)
        fresh = items[seen:]
        network.reported[name] = seen + len(fresh)
        return fresh

    def _replies_line(self, network: Network) -> list[str]:
        fake, tokens = network.fake, network.extra["tokens"]
        by_id = {line_user_id(c): c for c in self.customers}
        out = []
        for sent in self._new(network, "sent", fake.sent):
            customer = tokens.get(sent.get("replyToken")) if sent["endpoint"] == "reply" else by_id.get(sent.get("to"))
            how = "reply token, free" if sent["endpoint"] == "reply" else "push"
            out.append(f"→ LINE reply to {customer['name'] if customer else '?'} ({how}): {_short(sent['messages'][0].get('text', ''))}")
        return out

    def _replies_x(self, network: Network) -> list[str]:
        fake = network.fake
        out = []
        for posted in self._new(network, "posted", fake.posted):
            parent = fake.tweets.get(posted.get("in_reply_to_tweet_id") or "", {})
            user = fake.users.get(parent.get("author_id", ""), {})
            out.append(f"→ X reply to @{user.get('username', '?')}: {_short(posted['text'])}")
        for dm in self._new(network, "dms", fake.dms):
            out.append(f"→ X DM to @{fake.users.get(dm['to'], {}).get('username', '?')}: {_short(dm['text'])}")
        return out

    def _replies_email(self, network: Network) -> list[str]:
        import email
        from email import policy

        out = []
        for received in self._new(network, "messages", network.fake.messages):
            mail = email.message_from_bytes(received.content, policy=policy.default)
            part = mail.get_body(preferencelist=("plain",))
            text = part.get_content() if part is not None else ""
            out.append(f"→ email to {', '.join(received.rcpt_tos)} (SMTP) “{_short(str(mail['Subject'] or ''), 40)}”: {_short(text)}")
        return out

    def _replies_bluesky(self, network: Network) -> list[str]:
        fake = network.fake
        out = []
        for created in self._new(network, "created", fake.created):
            record = created.get("record") or {}
            parent = ((record.get("reply") or {}).get("parent") or {}).get("uri", "")
            did = parent[len("at://"):].split("/")[0] if parent.startswith("at://") else ""
            out.append(f"→ Bluesky reply to @{fake.users.get(did, {}).get('handle', '?')}: {_short(record.get('text', ''))}")
        return out

    def _replies_mastodon(self, network: Network) -> list[str]:
        fake = network.fake
        out = []
        for posted in self._new(network, "posted", fake.posted):
            parent = fake.statuses.get(posted.get("in_reply_to_id") or "", {})
            acct = (parent.get("account") or {}).get("acct", "?")
            text = re.sub(r"^(@[\w.@-]+\s+)+", "", posted["status"])  # the mentions that address it
            out.append(f"→ Mastodon reply to @{acct} ({posted['visibility']}): {_short(text)}")
        return out

    def _replies_facebook(self, network: Network) -> list[str]:
        fake = network.fake
        out = []
        for reply in self._new(network, "replies", fake.replies):
            who = (fake.comments.get(reply["to"], {}).get("from") or {}).get("name", "?")
            out.append(f"→ Facebook comment reply to {who}: {_short(reply['message'])}")
        for message in self._new(network, "messages", fake.messages):
            out.append(f"→ Facebook Messenger reply to {fake.users.get(message['to'], {}).get('name', '?')}: {_short(message['text'])}")
        return out

    def _replies_instagram(self, network: Network) -> list[str]:
        fake = network.fake
        out = []
        for reply in self._new(network, "replies", fake.replies):
            who = fake.comments.get(reply["to"], {}).get("username", "?")
            out.append(f"→ Instagram comment reply to @{who}: {_short(reply['message'])}")
        for message in self._new(network, "messages", fake.messages):
            out.append(f"→ Instagram DM to @{fake.users.get(message['to'], {}).get('username', '?')}: {_short(message['text'])}")
        return out


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _earlier_posts(account: ChannelAccount, limit: int = 500) -> list[tuple[str, str, str]]:
    """(post id, author id, text) of the public posts this account received in earlier runs: a
    restarted fake starts empty, and without them it would refuse replies to those posts."""
    rows = (
        Message.objects.filter(channel_account=account, direction=Direction.INBOUND, public=True, external_id__isnull=False)
        .order_by("-pk")
        .values_list("external_id", "identity__external_id", "text")[:limit]
    )
    return [(str(post_id), str(author_id or ""), text) for post_id, author_id, text in rows]


def _set_simulated(account: ChannelAccount) -> None:
    from madoguchi.connectors import health

    health.update_config(account, lambda config: config.update(simulated=True))
