"""A web chat account's widget settings and the checks every widget request passes.

The widget key (``config["widget_key"]``) is public: it sits in the host page's script tag. It
only names the account; what a visitor may read is decided by the visitor token, a value signed
with Django's SECRET_KEY (django.core.signing) that the widget keeps in the host site's
localStorage and sends in the ``X-Madoguchi-Visitor`` header. A token is bound to one account and
one visitor id, so it opens that visitor's own conversations and nothing else.

Origins: every widget request must come from an origin listed in ``config["allowed_origins"]``
(``https://shop.example``, ``http://127.0.0.1:*`` for any port, or ``*``); CORS headers are
only ever sent back to such an origin.

Rate limits use Django's cache (fixed one-minute windows). With several web processes, point
CACHES at a shared cache (database or Redis) or each process counts on its own.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.cache import cache

from madoguchi.connectors.models import ChannelAccount
from madoguchi.connectors.webchat.hours import BusinessHours

TOKEN_SALT = "madoguchi.webchat.visitor"
FILE_SALT = "madoguchi.webchat.file"
TOKEN_MAX_AGE = 365 * 24 * 3600  # the widget renews the token on every visit
FILE_URL_MAX_AGE = 7 * 24 * 3600
VISITOR_HEADER = "X-Madoguchi-Visitor"
MAX_TEXT = 5000
DEFAULT_UPLOAD_BYTES = 5 * 1024 * 1024
# Files a visitor may send: pictures, PDFs and plain text. Anything else is refused at the edge.
UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain")


def new_key() -> str:
    return "wk_" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class WidgetConfig:
    """The widget's settings, read from the account's config with defaults."""

    key: str
    allowed_origins: tuple[str, ...] = ()
    visitor_per_minute: int = 20
    ip_per_minute: int = 60
    max_upload_bytes: int = DEFAULT_UPLOAD_BYTES
    title: str = ""
    hours: BusinessHours = field(default_factory=BusinessHours)

    @classmethod
    def of(cls, account: ChannelAccount) -> WidgetConfig:
        c: dict[str, Any] = account.config or {}
        limits = c.get("rate_limits") or {}
        try:
            hours = BusinessHours.from_config(c)
        except ValueError:
            hours = BusinessHours()  # a broken schedule must not take the chat down: always open
        return cls(
            key=str(c.get("widget_key") or ""),
            allowed_origins=tuple(str(o) for o in c.get("allowed_origins") or ()),
            visitor_per_minute=int(limits.get("visitor_per_minute", 20)),
            ip_per_minute=int(limits.get("ip_per_minute", 60)),
            max_upload_bytes=min(int(c.get("max_upload_bytes") or DEFAULT_UPLOAD_BYTES), settings.ATTACHMENT_MAX_BYTES),
            title=str(c.get("title") or account.brand.name if account.brand_id else ""),
            hours=hours,
        )


def access_widget(key: str) -> ChannelAccount | None:
    """The active web chat account with this widget key, or None."""
    if not key.startswith("wk_") or len(key) > 64:
        return None
    return (
        ChannelAccount.objects.select_related("brand")
        .filter(kind="webchat", is_active=True, config__widget_key=key)
        .first()
    )


def normalize_origin(value: str) -> str:
    """"https://Shop.example/path" -> "https://shop.example"; "" if it is not an http(s) origin."""
    value = value.strip().rstrip("/")
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    port = parts.netloc.rsplit(":", 1)[1] if parts.netloc.count(":") and not parts.netloc.endswith("]") else ""
    if port and port != "*" and not port.isdigit():
        return ""
    return f"{parts.scheme}://{parts.hostname}{':' + port if port else ''}"


def origin_allowed(config: WidgetConfig, origin: str) -> bool:
    """Whether a request's Origin header names a site this widget may run on."""
    if not origin or origin == "null":
        return False
    origin = origin.lower()
    for allowed in config.allowed_origins:
        allowed = allowed.lower()
        if allowed == "*" or allowed == origin:
            return True
        if allowed.endswith(":*") and origin.startswith(allowed[:-1]) and origin[len(allowed) - 1 :].isdigit():
            return True
    return False


@dataclass(frozen=True)
class Visitor:
    """Who the token says the visitor is: an id on one account, and what they told us."""

    account_id: int
    id: str
    name: str = ""
    email: str = ""


def new_visitor(account: ChannelAccount) -> Visitor:
    return Visitor(account.pk, "v" + secrets.token_hex(12))


def sign_visitor(visitor: Visitor) -> str:
    payload = {"a": visitor.account_id, "v": visitor.id, "n": visitor.name, "e": visitor.email}
    return signing.dumps(payload, salt=TOKEN_SALT, compress=True)


def access_visitor(account: ChannelAccount, token: str) -> Visitor | None:
    """The visitor of a valid token for this account, else None (forged, expired, other account)."""
    if not token or len(token) > 2000:
        return None
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") != account.pk or not isinstance(data.get("v"), str):
        return None
    return Visitor(account.pk, data["v"], str(data.get("n") or "")[:120], str(data.get("e") or "")[:254])


def sign_file(account_id: int, visitor_id: str, attachment_id: int) -> str:
    return signing.dumps([account_id, visitor_id, attachment_id], salt=FILE_SALT)


def access_file(value: str) -> tuple[int, str, int] | None:
    try:
        account_id, visitor_id, attachment_id = signing.loads(value, salt=FILE_SALT, max_age=FILE_URL_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return int(account_id), str(visitor_id), int(attachment_id)


clock = time.time  # the rate windows' clock (tests hold it still)


def check_rate(account: ChannelAccount, scope: str, who: str, per_minute: int) -> bool:
    """Count one request of `who` in this minute; False once the limit is passed."""
    if per_minute <= 0:
        return True
    window = int(clock() // 60)
    key = f"webchat:rate:{account.pk}:{scope}:{who}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        count = 1
    return count <= per_minute
