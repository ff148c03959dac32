"""The demo's website chat: a real widget account, and sample visitors who write through it.

The visitors are scripted (connectors/webchat/fake.py) and talk to the widget API in this
process, the way widget.js does on a website: same endpoints, token header and Origin check.
"""

from __future__ import annotations

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.fake import FakeVisitor, in_process
from madoguchi.connectors.webchat.widget import Visitor, new_key, sign_visitor
from madoguchi.inbox.models import Message
from madoguchi.ingest.actions import IngestResult

# Any page served from this machine may show the demo widget (the try-it page, a local test site).
DEMO_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*"]
DEMO_VISITOR_ORIGIN = "http://127.0.0.1:8000"
DEMO_HOURS = {
    "time_zone": "Asia/Tokyo",
    "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [["10:00", "17:00"]], "sun": []},
    "closed_dates": [],
}


def setup_demo_widget(account: ChannelAccount) -> None:
    """Turn the demo's simulated web chat account into a real widget (idempotent)."""
    if account.kind != "webchat" or account.config.get("widget_key"):
        return
    account.config = {
        "widget_key": new_key(),
        "allowed_origins": DEMO_ORIGINS,
        "business_hours": DEMO_HOURS,
        # All demo visitors come from one address: allow them plenty.
        "rate_limits": {"visitor_per_minute": 20, "ip_per_minute": 1000},
    }
    account.save(update_fields=["config"])


def send(account: ChannelAccount, customer: dict, text: str) -> IngestResult:
    """A sample visitor (one per demo customer) writes in through the widget API."""
    setup_demo_widget(account)
    visitor_id = customer["id"] if customer["id"].startswith("vdemo-") else f"vdemo-{customer['id']}"
    token = sign_visitor(Visitor(account.pk, visitor_id, customer["name"], ""))
    with FakeVisitor(
        key=account.config["widget_key"],
        origin=DEMO_VISITOR_ORIGIN,
        token=token,
        lang=customer.get("lang", "en"),
        transport=in_process(),
    ) as visitor:
        sent = visitor.say(text)
    return IngestResult(created=True, message=Message.objects.get(pk=sent["id"]))
