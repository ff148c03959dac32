"""The demo's contact form: a real web form account, and sample customers who fill it in.

The customers are scripted (connectors/webform/fake.py): they open the brand's hosted form in
this process, the way a browser does (page, signed token, honeypot left empty), and submit it.
Answers go out by email through the brand's mailbox (the local SMTP fake when the demo runs).
"""

from __future__ import annotations

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webform.fake import FormVisitor
from madoguchi.inbox.models import Direction, Message
from madoguchi.ingest.actions import IngestResult

# Everyone on this machine shares one address (the demo's customers, a person trying the form).
DEMO_PER_IP_PER_HOUR = 1000


def setup_demo_form(account: ChannelAccount) -> None:
    """Turn the demo's web form account into a real form (idempotent)."""
    if account.kind != "webform" or "max_per_ip_per_hour" in account.config:
        return
    account.config = {"max_per_ip_per_hour": DEMO_PER_IP_PER_HOUR}
    account.save(update_fields=["config"])


def send(account: ChannelAccount, customer: dict, text: str, subject: str, email: str) -> IngestResult:
    """A sample customer submits the hosted contact form."""
    setup_demo_form(account)
    visitor = FormVisitor(account.brand_id, lang="ja" if customer.get("lang") == "ja" else "en")
    response = visitor.submit(name=customer["name"], email=email, subject=subject or text[:40], message=text)
    if response.status_code != 200 or b"name=\"token\"" in response.content:  # refused, or the form again with errors
        raise RuntimeError(f"the contact form refused the submission ({response.status_code})")
    message = Message.objects.filter(channel_account=account, direction=Direction.INBOUND).order_by("-pk").first()
    return IngestResult(created=True, message=message)
