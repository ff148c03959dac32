"""A helper process that talks to the browser tests' database the way the outside world would.

The web server under test is another process, so the tests cannot use pytest-django's test
database. This script sets Django up against the same MADOGUCHI_DATA_DIR and reads one JSON
command per line on stdin, answering one JSON line on stdout. Customers write in through the
real ingest entry point, so the server sees them exactly as it sees a connector's messages.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "madoguchi.config.settings")

import django  # noqa: E402

django.setup()

from django.db import close_old_connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from madoguchi.accounts.models import Brand, User  # noqa: E402
from madoguchi.connectors.base import InboundAuthor, InboundItem  # noqa: E402
from madoguchi.connectors.models import ChannelAccount  # noqa: E402
from madoguchi.inbox import actions as inbox_actions  # noqa: E402
from madoguchi.inbox.models import Conversation  # noqa: E402
from madoguchi.ingest.actions import do_ingest  # noqa: E402
from madoguchi.kb.models import Article  # noqa: E402
from madoguchi.web.demo.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo, send_one  # noqa: E402

_counter = iter(range(1, 10**9))


def seed() -> dict[str, Any]:
    demo = seed_demo()
    return {
        "password": DEMO_PASSWORD,
        "users": {email: name for email, name, _role in DEMO_USERS},
        "accounts": {a.kind: a.pk for a in demo.accounts},
        "brand": Brand.objects.filter(workspace=demo.workspace).order_by("pk").values_list("pk", flat=True)[0],
    }


def ingest(account: str, text: str, name: str, handle: str = "", subject: str = "", language: str = "", thread: str = "") -> dict[str, Any]:
    acc = ChannelAccount.objects.get(workspace__slug="demo", kind=account)
    handle = handle or name.lower().replace(" ", "_")
    item = InboundItem(
        external_id=f"browser-{os.getpid()}-{next(_counter)}",
        author=InboundAuthor(external_id=f"{account}:{handle}", handle=handle, display_name=name, language=language),
        text=text,
        subject=subject,
        language=language,
        thread_id=thread,
        created_at=timezone.now(),
    )
    result = do_ingest(acc, item)
    assert result.message is not None, result
    return {"conversation": result.message.conversation_id, "message": result.message.pk}


def status(conversation: int) -> dict[str, Any]:
    return {"status": Conversation.objects.get(pk=conversation).status}


def reply(conversation: int, email: str, text: str) -> dict[str, Any]:
    conv = Conversation.objects.get(pk=conversation)
    author = User.objects.get(email=email)
    inbox_actions.do_mark_seen(conv, author)
    msg = inbox_actions.do_reply(conv, author=author, text=text)
    return {"message": msg.pk}


def article(external_id: str) -> dict[str, Any]:
    """A demo article's id, title and feedback counters, as the database has them."""
    a = Article.objects.get(workspace__slug="demo", external_id=external_id)
    return {"id": a.pk, "title": a.title, "helpful_yes": a.helpful_yes, "helpful_no": a.helpful_no, "votes": a.votes.count()}


def traffic(count: int, seed: int = 7) -> dict[str, Any]:
    demo = seed_demo()
    rng = random.Random(seed)
    ids = [send_one(demo, rng).conversation_id for _ in range(count)]
    return {"conversations": ids}


COMMANDS = {"seed": seed, "ingest": ingest, "status": status, "reply": reply, "traffic": traffic, "article": article}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = {"ok": COMMANDS[request.pop("cmd")](**request)}
        except Exception as exc:  # report to the test instead of dying silently
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            close_old_connections()
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
