"""Background work of the Instagram connector: ingesting verified webhook deliveries. (Token
checks for Facebook and Instagram accounts run in facebook/tasks.py.)"""

from __future__ import annotations

from django_tasks import task

from madoguchi.connectors.instagram import inbound
from madoguchi.connectors.models import ChannelAccount


@task()
def process_delivery(account_id: int, body: str) -> dict[str, int]:
    """Ingest the comments, mentions and messages of one verified Instagram webhook delivery."""
    account = ChannelAccount.objects.filter(pk=account_id, kind="instagram").first()
    if account is None:
        return {}
    return inbound.process_delivery(account, body)
