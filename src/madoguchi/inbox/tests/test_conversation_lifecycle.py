"""A conversation's life: new → open (seen) → pending (replied) → resolved → reopened by the customer."""

import datetime as dt

import pytest
from django.utils import timezone

from madoguchi.connectors.models import InternalDelivery
from madoguchi.inbox import actions, queries
from madoguchi.inbox.models import Conversation, Delivery, Outbox, OutboxStatus, Status
from madoguchi.inbox.tasks import deliver_outbox, run_periodic

pytestmark = pytest.mark.django_db


def todo_ids(user):
    return [c.pk for c in queries.conversations_for(user, queries.InboxFilter(view="todo"))]


def test_inbound_message_creates_a_new_conversation_in_todo(cast):
    result = cast.inbound("注文した商品が届きません")
    conv = result.message.conversation
    assert conv.status == Status.NEW
    assert conv.waiting_since is not None
    assert conv.pk in todo_ids(cast.agent)


def test_opening_marks_seen_and_reply_moves_out_of_todo(cast):
    conv = cast.inbound("help").message.conversation
    actions.do_mark_seen(conv, cast.agent)
    conv.refresh_from_db()
    assert conv.status == Status.OPEN and conv.seen_by == cast.agent
    actions.do_reply(conv, author=cast.agent, text="We are on it")
    conv.refresh_from_db()
    assert conv.status == Status.PENDING
    assert conv.waiting_since is None and conv.first_response_at is not None
    assert conv.pk not in todo_ids(cast.agent)
    assert conv.assignee == cast.agent


def test_customer_message_reopens_pending_snoozed_and_resolved(cast, in_a_minute):
    conv = cast.inbound("first", customer="c9").message.conversation
    for status, kwargs in [(Status.PENDING, {}), (Status.SNOOZED, {"snoozed_until": in_a_minute}), (Status.RESOLVED, {})]:
        actions.do_set_status(conv, status, actor=cast.agent, **kwargs)
        result = cast.inbound("again", customer="c9", reply_to=[conv.messages.first().external_id])
        assert result.message.conversation_id == conv.pk
        conv.refresh_from_db()
        assert conv.status == Status.OPEN, status


def test_reply_is_delivered_through_the_outbox_once(cast):
    conv = cast.inbound("hi").message.conversation
    msg = actions.do_reply(conv, author=cast.agent, text="Hello!")
    outbox = Outbox.objects.get(message=msg)
    assert deliver_outbox.call(outbox.pk) == "sent"
    assert deliver_outbox.call(outbox.pk) == "not due or already claimed"
    msg.refresh_from_db()
    assert msg.delivery == Delivery.SENT and msg.external_id
    assert InternalDelivery.objects.filter(text="Hello!").count() == 1


def test_temporary_failure_is_retried_then_sent(cast):
    cast.account.config = {"simulate": "temporary", "fail_times": 2}
    cast.account.save()
    conv = cast.inbound("hi").message.conversation
    msg = actions.do_reply(conv, author=cast.agent, text="retry me")
    outbox = Outbox.objects.get(message=msg)
    assert deliver_outbox.call(outbox.pk) == "retrying"
    outbox.refresh_from_db()
    assert outbox.status == OutboxStatus.PENDING and outbox.attempts == 1
    Outbox.objects.filter(pk=outbox.pk).update(next_attempt_at=timezone.now())
    assert deliver_outbox.call(outbox.pk) == "retrying"
    Outbox.objects.filter(pk=outbox.pk).update(next_attempt_at=timezone.now())
    assert deliver_outbox.call(outbox.pk) == "sent"
    assert InternalDelivery.objects.filter(text="retry me").count() == 1


def test_permanent_failure_marks_the_message_failed_and_retry_button_requeues(cast):
    cast.account.config = {"simulate": "permanent"}
    cast.account.save()
    conv = cast.inbound("hi").message.conversation
    msg = actions.do_reply(conv, author=cast.agent, text="nope")
    assert deliver_outbox.call(Outbox.objects.get(message=msg).pk) == "failed"
    msg.refresh_from_db()
    assert msg.delivery == Delivery.FAILED and "simulated" in msg.delivery_error
    cast.account.config = {}
    cast.account.save()
    actions.do_retry_delivery(msg, actor=cast.agent)
    assert deliver_outbox.call(msg.outbox.pk) == "sent"


def test_snoozed_conversation_wakes_up(cast):
    conv = cast.inbound("later").message.conversation
    actions.do_set_status(conv, Status.SNOOZED, actor=cast.agent, snoozed_until=timezone.now() + dt.timedelta(seconds=1))
    Conversation.objects.filter(pk=conv.pk).update(snoozed_until=timezone.now() - dt.timedelta(seconds=1))
    assert run_periodic.call()["woke"] == 1
    conv.refresh_from_db()
    assert conv.status == Status.OPEN


def test_snooze_needs_a_future_time(cast):
    conv = cast.inbound("x").message.conversation
    with pytest.raises(actions.InboxError):
        actions.do_set_status(conv, Status.SNOOZED, actor=cast.agent, snoozed_until=timezone.now())


def test_note_is_never_sent(cast):
    conv = cast.inbound("x").message.conversation
    actions.do_add_note(conv, author=cast.agent, text="internal only")
    assert not Outbox.objects.exists()
    conv.refresh_from_db()
    assert conv.status == Status.NEW


def test_empty_reply_is_refused(cast):
    conv = cast.inbound("x").message.conversation
    with pytest.raises(actions.InboxError):
        actions.do_reply(conv, author=cast.agent, text="   ")


def test_move_message_to_another_conversation_of_the_same_contact(cast):
    c1 = cast.inbound("one", customer="same", thread_id="t1").message.conversation
    m2 = cast.inbound("two", customer="same", thread_id="t2").message
    assert m2.conversation_id != c1.pk
    actions.do_move_message(m2, c1, actor=cast.agent)
    c1.refresh_from_db()
    assert c1.message_count == 2
    other = cast.inbound("other person", customer="other").message.conversation
    with pytest.raises(actions.InboxError):
        actions.do_move_message(m2, other, actor=cast.agent)


def test_cursor_pagination_walks_every_conversation_once(cast):
    for i in range(7):
        cast.inbound(f"m{i}", customer=f"cust-{i}")
    qs = queries.conversations_for(cast.agent, queries.InboxFilter(view="all"))
    seen, cursor = [], ""
    while True:
        rows, cursor = queries.page(qs, cursor, limit=3)
        seen += [r.pk for r in rows]
        if not cursor:
            break
    assert len(seen) == 7 == len(set(seen))


def test_bulk_assign_to_me_skips_a_colleagues_conversation_for_agents(cast, client_for):
    from madoguchi.conftest import csrf_post

    mine = cast.inbound("a", customer="a").message.conversation
    theirs = cast.inbound("b", customer="b").message.conversation
    actions.do_assign(theirs, assignee=cast.agent2, team=None, actor=cast.manager)
    csrf_post(client_for(cast.agent), "/inbox/bulk/", {"ids": [mine.pk, theirs.pk], "action": "assign_me"})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.assignee == cast.agent and theirs.assignee == cast.agent2
