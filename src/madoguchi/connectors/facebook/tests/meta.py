"""Helpers of the Facebook and Instagram tests: connect an account to the fake, post a signed
delivery to its webhook, run the queued ingest tasks as a worker would, and answer as an agent."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django_tasks_db.models import DBTaskResult

from madoguchi.connectors.facebook import tasks as facebook_tasks
from madoguchi.connectors.facebook.fake import FakeGraph
from madoguchi.connectors.instagram import tasks as instagram_tasks
from madoguchi.connectors.models import ChannelAccount
from madoguchi.inbox import actions as inbox_actions
from madoguchi.inbox.models import Conversation, Message, Outbox
from madoguchi.inbox.tasks import deliver_outbox

OBJECTS = {"facebook": "page", "instagram": "instagram"}


def connect(cast: Any, fake: FakeGraph, kind: str, name: str = "") -> ChannelAccount:
    """A ChannelAccount of workspace A talking to the fake."""
    config, secrets = fake.account_settings(kind)
    return ChannelAccount.objects.create(workspace=cast.ws, brand=cast.brand, kind=kind, name=name or kind, config=config, secrets=secrets)


def post(account: ChannelAccount, body: bytes, signature: str | None):
    """POST a body to the account's own webhook URL, signed or not, as Meta would."""
    headers: dict[str, Any] = {} if signature is None else {"HTTP_X_HUB_SIGNATURE_256": signature}
    return Client(enforce_csrf_checks=True).post(f"/connectors/{account.kind}/{account.pk}/webhook/", data=body, content_type="application/json", **headers)


def run_queued() -> list[dict]:
    """Run the queued delivery tasks of both networks, oldest first."""
    results = []
    for row in DBTaskResult.objects.filter(task_path__contains=".tasks.process_delivery").order_by("enqueued_at"):
        task = facebook_tasks.process_delivery if ".facebook." in row.task_path else instagram_tasks.process_delivery
        results.append(task.call(*row.args_kwargs["args"]))
        row.delete()
    return results


def deliver(fake: FakeGraph, account: ChannelAccount, *entries: dict) -> list[dict]:
    """A signed delivery of these entries to the account's webhook, then ingested."""
    body, signature = fake.delivery(*entries, object_=OBJECTS[account.kind])
    assert post(account, body, signature).status_code == 200
    return run_queued()


def agent_reply(cast: Any, conversation: Conversation, text: str, **options: Any) -> Message:
    """The agent answers and the outbox sends it at once."""
    reply = inbox_actions.do_reply(conversation, author=cast.agent, text=text, **options)
    deliver_outbox.call(Outbox.objects.get(message=reply).pk)
    reply.refresh_from_db()
    return reply
