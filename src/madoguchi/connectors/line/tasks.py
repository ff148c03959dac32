"""Background work of the LINE connector: ingesting verified webhook deliveries."""

from __future__ import annotations

from django_tasks import task

from madoguchi.connectors.line import inbound
from madoguchi.connectors.models import ChannelAccount


@task()
def process_delivery(account_id: int, body: str) -> dict[str, int]:
    """Ingest the events of one verified webhook delivery (fetching profiles and media)."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="line").first()
    if account is None:
        return {}
    return inbound.process_delivery(account, body)
