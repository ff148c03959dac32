"""Recording what we already said outside the outbox (a call we made): sent, never queued, and it
moves the conversation like a reply only when it answers the customer's latest message."""

import datetime as dt

import pytest
from django.utils import timezone

from madoguchi.inbox import actions
from madoguchi.inbox.models import Conversation, Delivery, Direction, LiveEvent, Outbox, Status

pytestmark = pytest.mark.django_db


def test_a_recorded_message_is_sent_without_an_outbox_row_and_answers_the_customer(cast):
    conv = cast.inbound("please call me").message.conversation
    actions.do_mark_seen(conv, cast.agent)
    message = actions.do_record_outbound(
        conv, author=cast.agent, text="Called back, solved", external_id="call-1", raw={"call": 1}
    )
    assert message.direction == Direction.OUTBOUND and message.delivery == Delivery.SENT
    assert message.channel_account_id == conv.channel_account_id and message.raw == {"call": 1}
    assert not Outbox.objects.exists()
    conv.refresh_from_db()
    assert conv.status == Status.PENDING and conv.waiting_since is None
    assert conv.first_response_at == message.created_at and conv.assignee == cast.agent
    assert conv.preview == "Called back, solved" and conv.message_count == 2
    event = LiveEvent.objects.filter(kind="message.created").latest("id")
    assert event.conversation_id == conv.pk and event.data["message"] == message.pk


def test_recording_the_same_external_id_twice_stores_it_once(cast):
    conv = cast.inbound("hi").message.conversation
    first = actions.do_record_outbound(conv, author=None, text="Outgoing call", external_id="c-7")
    again = actions.do_record_outbound(conv, author=None, text="Outgoing call", external_id="c-7")
    assert again.pk == first.pk
    conv.refresh_from_db()
    assert conv.message_count == 2 and conv.assignee is None  # a provider's event assigns nobody


def test_a_message_recorded_late_is_history_and_the_customer_keeps_waiting(cast):
    conv = cast.inbound("are you there?").message.conversation
    before = conv.messages.get().created_at - dt.timedelta(minutes=5)
    actions.do_record_outbound(conv, author=cast.agent, text="earlier call", created_at=before)
    conv.refresh_from_db()
    assert conv.status == Status.NEW and conv.waiting_since is not None
    assert conv.first_response_at is None and conv.assignee is None
    assert conv.preview == "are you there?"


@pytest.mark.parametrize("status", [Status.SNOOZED, Status.RESOLVED])
def test_snoozed_and_resolved_conversations_keep_their_status(cast, in_a_minute, status):
    conv = cast.inbound("hello").message.conversation
    kwargs = {"snoozed_until": in_a_minute} if status == Status.SNOOZED else {}
    actions.do_set_status(conv, status, actor=cast.agent, **kwargs)
    actions.do_record_outbound(conv, author=cast.agent, text="follow-up call")
    assert Conversation.objects.get(pk=conv.pk).status == status


def test_an_empty_record_is_refused(cast):
    conv = cast.inbound("hello").message.conversation
    with pytest.raises(actions.InboxError):
        actions.do_record_outbound(conv, author=cast.agent, text="  ", created_at=timezone.now())
