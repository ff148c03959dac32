"""Background work of the web form connector: the confirmation mail to the customer."""

from __future__ import annotations

from django_tasks import task

from madoguchi.connectors.models import ChannelKind
from madoguchi.connectors.webform import outbound
from madoguchi.inbox.models import Message


@task()
def send_confirmation(message_id: int) -> dict[str, str]:
    """Mail "we received your message" with the reference number to a form's sender."""
    message = (
        Message.objects.select_related("conversation", "channel_account__brand")
        .filter(pk=message_id, channel_account__kind=ChannelKind.WEBFORM)
        .first()
    )
    if message is None:
        return {"skipped": "no such web form message"}
    return {"sent": outbound.send_confirmation(message)}
