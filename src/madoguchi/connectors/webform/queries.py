"""Reads of the web form connector: which form serves a brand, and which mailbox answers for it."""

from __future__ import annotations

from django.conf import settings

from madoguchi.connectors.models import ChannelAccount, ChannelKind


def form_account(brand_id: int) -> ChannelAccount | None:
    """The brand's active web form account (the oldest, if there are several)."""
    return (
        ChannelAccount.objects.select_related("brand")
        .filter(brand_id=brand_id, kind=ChannelKind.WEBFORM, is_active=True)
        .order_by("pk")
        .first()
    )


def brand_mailbox(account: ChannelAccount) -> ChannelAccount | None:
    """The brand's active email account, through which the form's mail goes out when it has one."""
    return (
        ChannelAccount.objects.filter(
            workspace_id=account.workspace_id,
            brand_id=account.brand_id,
            kind=ChannelKind.EMAIL,
            is_active=True,
        )
        .order_by("pk")
        .first()
    )


def sender_address(account: ChannelAccount) -> str:
    """The address our mail about this form comes from: the brand mailbox, the form's own
    `config["from_address"]`, else the site's DEFAULT_FROM_EMAIL."""
    mailbox = brand_mailbox(account)
    if mailbox is not None:
        address = str(mailbox.config.get("address") or mailbox.handle or "")
        if "@" in address:
            return address
    return str(account.config.get("from_address") or settings.DEFAULT_FROM_EMAIL)


def sender_name(account: ChannelAccount) -> str:
    mailbox = brand_mailbox(account)
    name = (mailbox.config.get("from_name") if mailbox else "") or account.config.get("from_name")
    return str(name or account.brand.name)
