"""What Facebook Pages and Instagram share: Meta's webhook handshake and signature (per account,
and one URL for the whole app), a small Graph API client, the mapping of Graph errors to the
outbox's retry-or-fail, the 24-hour messaging window, private replies to comments, and the
Messenger-shaped `messaging` events both platforms deliver.

Documentation (November 2026):
- Webhooks, verification request and payload signature:
  https://developers.facebook.com/docs/graph-api/webhooks/getting-started — the subscription
  handshake is `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`, answered with the
  challenge; every POST carries `X-Hub-Signature-256: sha256=` + hex HMAC-SHA256(app secret, raw
  body). Meta signs the escaped-unicode bytes it sends, so the signature is checked on the raw
  request body, never on re-serialized JSON. Deliveries are batched (up to 1,000 changes) and
  retried for up to 36 hours, so duplicates and out-of-order deliveries happen.
- Graph API errors: https://developers.facebook.com/docs/graph-api/guides/error-handling —
  `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id", "is_transient"}}`;
  190 = access token expired or invalid, 4/17/32/613 and 80001–80014 = rate limits, 10/200–299
  = permissions, 100 with subcode 33 = the object does not exist (deleted) or is not visible.
- Rate limits: https://developers.facebook.com/docs/graph-api/overview/rate-limiting —
  `X-App-Usage` `{"call_count", "total_time", "total_cputime"}` in percent, and
  `X-Business-Use-Case-Usage` `{"<id>": [{"type", "call_count", …, "estimated_time_to_regain_access"}]}`
  where the estimated time is in minutes.
- Messenger webhook events: https://developers.facebook.com/docs/messenger-platform/reference/webhook-events
  (`message` with `mid`, `text`, `attachments[{type, payload: {url}}]`, `reply_to`; `message_reactions`
  `{reaction: {reaction, emoji, action: react|unreact, mid}}`; `message_reads` `{read: {watermark}}`;
  `message_edits` `{message_edit: {mid, text, num_edit}}`). Instagram's are the same shapes
  (https://developers.facebook.com/docs/instagram-platform/webhooks/examples) with `read: {mid}`,
  `is_deleted` for an unsent message, `reply_to.story` for a story reply and `story_mention`
  attachments.
- Private replies: https://developers.facebook.com/documentation/business-messaging/messenger-platform/discovery/private-replies
  and, for Instagram, https://developers.facebook.com/documentation/instagram-platform/private-replies —
  the Send API addressed to a comment, `POST /{PAGE-ID or IG-ID}/messages {"recipient":
  {"comment_id": …}, "message": {"text"}}` (Facebook also takes `{"post_id"}` for a visitor
  post) → `{"recipient_id", "message_id"}`: one message per comment, within 7 days of it; the
  person's answer opens the ordinary 24-hour window. Refusals: see ALREADY_REPLIED_CODE below.
- The 24-hour standard messaging window:
  https://developers.facebook.com/docs/messenger-platform/policy/policy-overview — a business may
  answer with `messaging_type: RESPONSE` within 24 hours of the person's last message; after
  that only tagged messages (`MESSAGE_TAG`) are allowed, which a helpdesk reply is not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation

from madoguchi.connectors import health
from madoguchi.connectors.base import (
    InboundAttachment,
    InboundAuthor,
    InboundEvent,
    InboundItem,
    OutboundMessage,
    PermanentError,
    SendResult,
    TemporaryError,
)
from madoguchi.connectors.models import ChannelAccount
from madoguchi.ingest import actions as ingest

if TYPE_CHECKING:
    from madoguchi.inbox.models import Conversation, Message

logger = logging.getLogger(__name__)

API_BASE = "https://graph.facebook.com"
API_VERSION = "v24.0"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
WINDOW = dt.timedelta(hours=24)

RATE_LIMIT_CODES = {4, 17, 32, 613} | set(range(80001, 80015))
TOKEN_CODES = {190, 102}  # 102: the session key is invalid (old name of the same failure)
PERMISSION_CODES = {10} | set(range(200, 300))
OUTSIDE_WINDOW_SUBCODE = 2018278
# Private replies (not in Meta's error reference; as Meta answers, seen in public client code):
# "(#10900) Activity already replied to"; "(#10903) This user cant reply to this activity" (the
# comment is over 7 days old, or its author cannot be messaged); Instagram's subcode 2534025 for a
# comment whose one private reply is used.
ALREADY_REPLIED_CODE = 10900
CANNOT_REPLY_CODE = 10903
IG_PRIVATE_REPLY_USED_SUBCODE = 2534025
PRIVATE_REPLY_WINDOW = dt.timedelta(days=7)
DELETED_SUBCODE = 33

PLATFORM_NAMES = {"facebook": "Facebook", "instagram": "Instagram"}


# --- webhooks -----------------------------------------------------------------------------------


def check_signature(app_secret: str, body: bytes, header: str) -> bool:
    """True if `header` ("sha256=<hex>") is Meta's signature of exactly these bytes."""
    if not app_secret or not header:
        return False
    algorithm, _, digest = header.strip().partition("=")
    if algorithm.lower() != "sha256" or not digest:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.lower())


def sign(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header Meta sends with `body` (for the fakes and tests)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verification_response(params: dict[str, str], verify_token: str) -> str | None:
    """The challenge to echo for a valid subscription handshake, else None."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(params.get("hub.verify_token", "").encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge", "")


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain")


def _signed_body(request: HttpRequest) -> tuple[bytes, str] | HttpResponse:
    """The raw body and its X-Hub-Signature-256, or the refusal: 413 too large, 401 unsigned."""
    try:
        body = request.body
    except RequestDataTooBig:
        return _text(413, "body too large")
    signature = request.headers.get("x-hub-signature-256", "")
    if not signature:
        return _text(401, "missing X-Hub-Signature-256")
    return body, signature


def webhook_view(
    request: HttpRequest, account_id: int, kind: str, accept: Callable[[ChannelAccount, bytes], int]
) -> HttpResponse:
    """The shared webhook endpoint: GET is the handshake; POST is 401 without a signature, 403
    with a wrong one, 200 once `accept` stored the delivery durably."""
    account = ChannelAccount.objects.filter(pk=account_id, kind=kind, is_active=True).first()
    if account is None:
        return HttpResponse("unknown channel", status=404, content_type="text/plain")
    secrets = account.secrets or {}
    if request.method == "GET":
        challenge = verification_response(request.GET.dict(), str(secrets.get("verify_token", "")))
        if challenge is None:
            return HttpResponse("verification failed", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    signed = _signed_body(request)
    if isinstance(signed, HttpResponse):
        return signed
    body, signature = signed
    if not check_signature(str(secrets.get("app_secret", "")), body, signature):
        return HttpResponse("bad signature", status=403, content_type="text/plain")
    accept(account, body)
    return HttpResponse("EVENT_RECEIVED", content_type="text/plain")


# What a delivery's `entry[].id` is, per network: the page id, or the Instagram account's id.
ENTRY_ID_KEYS = {"facebook": "page_id", "instagram": "ig_user_id"}


def app_webhook_view(
    request: HttpRequest, kind: str, expected_object: str, accept: Callable[[ChannelAccount, bytes], int]
) -> HttpResponse:
    """The app-level endpoint: one callback URL for every page (or Instagram account) the Meta app
    serves. GET is the handshake against any account's verify token; POST is 401 without a
    signature, 403 when no account's app secret signed it, else 200 once every entry is stored
    (queued for its account, or quarantined with the reason)."""
    accounts = list(ChannelAccount.objects.filter(kind=kind, is_active=True).order_by("pk"))
    if request.method == "GET":
        params = request.GET.dict()
        for account in accounts:
            challenge = verification_response(params, str((account.secrets or {}).get("verify_token", "")))
            if challenge is not None:
                return HttpResponse(challenge, content_type="text/plain")
        return HttpResponse("verification failed", status=403, content_type="text/plain")
    signed = _signed_body(request)
    if isinstance(signed, HttpResponse):
        return signed
    body, signature = signed
    kept = route_delivery(kind, accounts, body, signature, expected_object, accept)
    if not kept:
        return HttpResponse("bad signature", status=403, content_type="text/plain")
    return HttpResponse("EVENT_RECEIVED", content_type="text/plain")


def route_delivery(
    kind: str,
    accounts: list[ChannelAccount],
    body: bytes,
    signature: str,
    expected_object: str,
    accept: Callable[[ChannelAccount, bytes], int],
) -> int:
    """Give each entry of an app-level delivery to the account of its page, checking the signature
    with that account's app secret; returns how many entries were kept (queued or quarantined).

    An entry for a page no account connects, or whose account's app secret did not sign the body,
    is quarantined with the reason under an account whose secret did sign it (or its own account):
    Meta would only resend it for a day and a half. A body that no account's secret signed is
    nobody's: nothing of it is kept, and the 403 makes Meta resend it.
    """
    verified: dict[str, bool] = {}

    def signed_by(account: ChannelAccount) -> bool:
        secret = str((account.secrets or {}).get("app_secret", ""))
        if secret not in verified:
            verified[secret] = check_signature(secret, body, signature)
        return verified[secret]

    signer = next((a for a in accounts if signed_by(a)), None)
    if signer is None:
        return 0  # refused: Meta resends for 36 hours, in time for a corrected app secret
    try:
        entries = parse_delivery(body, expected_object)
    except ValueError as exc:
        name = PLATFORM_NAMES.get(signer.kind, signer.kind)
        ingest.do_quarantine(signer, f"{name} webhook body (app-level URL): {exc}"[:5000], body)
        return 1
    if not entries:
        health.do_record_channel_ok(signer, received=True, reconnect=False)
        return 1
    key = ENTRY_ID_KEYS[kind]
    groups: dict[int, tuple[ChannelAccount, list[dict[str, Any]]]] = {}
    kept = 0
    for entry in entries:
        entry_id = str(entry.get("id", ""))
        owners = [a for a in accounts if entry_id and str((a.config or {}).get(key, "")) == entry_id]
        for account in owners:
            name = PLATFORM_NAMES.get(account.kind, account.kind)
            if signed_by(account):
                groups.setdefault(account.pk, (account, []))[1].append(entry)
            else:
                reason = f"{name} webhook entry for {entry_id!r}: the signature does not match this account's app secret (check the app secret, or the app the page is subscribed to)"
                ingest.do_quarantine(account, reason, json.dumps(entry))
                health.do_record_channel_error(account, reason)
            kept += 1
        if not owners:
            name = PLATFORM_NAMES.get(signer.kind, signer.kind)
            reason = f"{name} webhook entry for {entry_id!r}, which no connected account has as its {key} (add the account, or remove the page from the Meta app)"
            ingest.do_quarantine(signer, reason, json.dumps(entry))
            kept += 1
    for account, own in groups.values():
        accept(account, json.dumps({"object": expected_object, "entry": own}, ensure_ascii=False).encode())
    return kept


def parse_delivery(body: bytes | str, expected_object: str) -> list[dict[str, Any]]:
    """The entries of a webhook body; raises ValueError on anything that is not one."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise ValueError("not a webhook delivery (no entry list)")
    if payload.get("object") != expected_object:
        raise ValueError(f"object is {payload.get('object')!r}, expected {expected_object!r}")
    return [e for e in payload["entry"] if isinstance(e, dict)]


def accept_delivery(account: ChannelAccount, body: bytes, expected_object: str, enqueue: Callable[[int, str], object]) -> int:
    """Keep a verified delivery durably (a queued task row) and return how many entries it holds.

    A signed body that is not a delivery is quarantined, not refused: refusing would only make
    Meta send the same bytes again for a day and a half.
    """
    try:
        entries = parse_delivery(body, expected_object)
    except ValueError as exc:
        ingest.do_quarantine(account, f"{PLATFORM_NAMES.get(account.kind, account.kind)} webhook body: {exc}"[:5000], body)
        return 0
    if not entries:
        health.do_record_channel_ok(account, received=True, reconnect=False)
        return 0
    enqueue(account.pk, body.decode("utf-8", errors="replace"))
    return len(entries)


# --- the Graph API client -----------------------------------------------------------------------


@dataclass
class GraphError(Exception):
    """The Graph API answered with an error (or could not be reached: status 0)."""

    status: int
    message: str
    code: int = 0
    subcode: int = 0
    type: str = ""
    fbtrace_id: str = ""
    transient: bool = False
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    def __str__(self) -> str:
        if not self.status:
            return f"Graph API unreachable: {self.message}"
        sub = f"/{self.subcode}" if self.subcode else ""
        return f"Graph API {self.status} (code {self.code}{sub}): {self.message}"


def regain_seconds(headers: httpx.Headers) -> float | None:
    """How long Meta says to wait, from the usage headers (minutes in the header), if it says."""
    waits: list[float] = []
    raw = headers.get("x-business-use-case-usage")
    if raw:
        try:
            usage = json.loads(raw)
            for entries in usage.values():
                for entry in entries or []:
                    minutes = entry.get("estimated_time_to_regain_access")
                    if isinstance(minutes, int | float) and minutes > 0:
                        waits.append(float(minutes) * 60)
        except (ValueError, AttributeError, TypeError):
            pass
    raw = headers.get("x-app-usage")
    if raw and not waits:
        try:
            usage = json.loads(raw)
            if max(float(usage.get(k, 0) or 0) for k in ("call_count", "total_time", "total_cputime")) >= 100:
                waits.append(300.0)  # app-level usage is a rolling hour; a few minutes frees some
        except (ValueError, AttributeError, TypeError):
            pass
    return max(waits) if waits else None


class GraphClient:
    """Calls the Graph API (or the local fake) with the account's page (or Instagram) token."""

    def __init__(self, account: ChannelAccount, *, transport: httpx.BaseTransport | None = None):
        config = account.config or {}
        base = str(config.get("api_base") or API_BASE).rstrip("/")
        self.base = f"{base}/{config.get('api_version') or API_VERSION}"
        token = str((account.secrets or {}).get("page_access_token") or (account.secrets or {}).get("access_token") or "")
        # The token goes in a header, never in a URL that a log or an error message could show.
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport, headers={"Authorization": f"Bearer {token}"})
        self.last_headers = httpx.Headers()  # of the latest Graph response (usage headers)
        # Attachment URLs point at Meta's CDN: fetched without our token.
        self._media = httpx.Client(timeout=TIMEOUT, transport=transport, follow_redirects=True)

    def close(self) -> None:
        self._http.close()
        self._media.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, f"{self.base}/{path.lstrip('/')}", **kwargs)
            self.last_headers = response.headers
        except httpx.TimeoutException as exc:
            raise GraphError(0, f"timeout: {exc}", transient=True) from exc
        except httpx.HTTPError as exc:
            raise GraphError(0, f"{type(exc).__name__}: {exc}", transient=True) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400 or (isinstance(data, dict) and "error" in data):
            error = (data or {}).get("error") if isinstance(data, dict) else None
            if not isinstance(error, dict):
                raise GraphError(response.status_code, response.text[:200] or response.reason_phrase, headers=response.headers)
            raise GraphError(
                response.status_code,
                str(error.get("message", "")),
                code=int(error.get("code") or 0),
                subcode=int(error.get("error_subcode") or 0),
                type=str(error.get("type", "")),
                fbtrace_id=str(error.get("fbtrace_id", "")),
                transient=bool(error.get("is_transient", False)),
                headers=response.headers,
            )
        return data if isinstance(data, dict) else {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", path, json=body)

    def send_message(self, owner_id: str, person_id: str, text: str) -> str:
        """A direct message inside the 24-hour window (Messenger's Send API; Instagram's is the same)."""
        body = {"recipient": {"id": person_id}, "messaging_type": "RESPONSE", "message": {"text": text}}
        return str(self.post(f"{owner_id}/messages", body)["message_id"])

    def private_reply(self, owner_id: str, recipient: dict[str, str], text: str) -> dict[str, Any]:
        """The Send API addressed to a comment (or a visitor post): `{"recipient_id", "message_id"}`."""
        return self.post(f"{owner_id}/messages", {"recipient": recipient, "message": {"text": text}})

    def me(self) -> dict[str, Any]:
        """Who the token belongs to: the cheapest call that proves the token still works."""
        return self.get("me", fields="id,name")

    def media(self, url: str, max_bytes: int) -> tuple[bytes, str]:
        """The bytes behind an attachment URL; refuses more than `max_bytes`."""
        if not url.startswith(("https://", "http://")):
            raise GraphError(400, "attachment URL is not http(s)")
        try:
            with self._media.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise GraphError(response.status_code, f"attachment fetch failed: {response.reason_phrase}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise GraphError(413, f"attachment larger than {max_bytes} bytes")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise GraphError(413, f"attachment larger than {max_bytes} bytes")
                    chunks.append(chunk)
                content_type = response.headers.get("content-type", "application/octet-stream")
        except httpx.HTTPError as exc:
            raise GraphError(0, f"{type(exc).__name__}: {exc}", transient=True) from exc
        return b"".join(chunks), content_type.split(";")[0].strip()


# --- errors -------------------------------------------------------------------------------------


def failure(account: ChannelAccount, exc: GraphError, *, what: str = "the reply") -> Exception:
    """The outbox's view of a Graph error: retry later, or fail the message with a clear reason.
    Also records the error on the account's health (a refused token disconnects it)."""
    name = PLATFORM_NAMES.get(account.kind, "Meta")
    if exc.code in TOKEN_CODES:
        reason = f"{name} refused the access token (code {exc.code}): {exc.message} Reconnect the account."
        health.do_record_channel_error(account, reason, disconnected=True)
        return PermanentError(reason)
    health.do_record_channel_error(account, str(exc))
    if exc.code in RATE_LIMIT_CODES or exc.status == 429:
        wait = regain_seconds(exc.headers) or 60.0
        remember_wait(account, wait)
        return TemporaryError(f"{name} rate limit reached (code {exc.code}); retrying in {round(wait)} s", retry_after=wait)
    if exc.status == 0 or exc.status >= 500 or exc.transient or exc.code in {1, 2}:
        return TemporaryError(str(exc))
    if exc.code == ALREADY_REPLIED_CODE or exc.subcode == IG_PRIVATE_REPLY_USED_SUBCODE:
        return PermanentError(f"{name} refused {what}: the comment already has its one private reply (perhaps an earlier attempt of this reply that timed out)")
    if exc.code == CANNOT_REPLY_CODE:
        return PermanentError(f"{name} refused {what}: Meta no longer allows a private reply to this comment (it is more than 7 days old, or the person cannot be messaged)")
    if exc.subcode == OUTSIDE_WINDOW_SUBCODE:
        return PermanentError(f"{name} refused {what}: the 24-hour messaging window has closed; Meta allows only tagged messages")
    if exc.code == 100 and exc.subcode == DELETED_SUBCODE:
        return PermanentError(f"{name} refused {what}: the comment or post being answered was deleted or is not visible")
    if exc.code == 551:
        return PermanentError(f"{name} refused {what}: this person is not available (they blocked the page or left)")
    if exc.code in PERMISSION_CODES:
        return PermanentError(f"{name} refused {what}: the app lacks the permission for it (code {exc.code}): {exc.message}")
    return PermanentError(f"{name} refused {what}: {exc}")


def remember_wait(account: ChannelAccount, seconds: float) -> None:
    """Keep Meta's "wait this long" on the account, so no other reply calls before it passes."""
    until = (timezone.now() + dt.timedelta(seconds=seconds)).isoformat()
    health.update_config(account, lambda config: config.__setitem__("rate_limited_until", until))


def check_rate_limit(account: ChannelAccount) -> None:
    """Raise TemporaryError, without calling Meta, while a remembered rate limit lasts."""
    until = (account.config or {}).get("rate_limited_until")
    if not until:
        return
    left = (dt.datetime.fromisoformat(until) - timezone.now()).total_seconds()
    if left > 0:
        name = PLATFORM_NAMES.get(account.kind, "Meta")
        raise TemporaryError(f"{name} rate limit: waiting {round(left)} s before calling again", retry_after=left)
    health.update_config(account, lambda config: config.pop("rate_limited_until", None))


def note_usage(account: ChannelAccount, client: GraphClient) -> None:
    """After a successful call: if the usage headers already say to back off, remember it."""
    wait = regain_seconds(client.last_headers)
    if wait:
        remember_wait(account, wait)


def do_check_token(account: ChannelAccount, *, client: GraphClient | None = None) -> bool:
    """Ask Meta whether the account's token still works and the page still sends us webhooks.

    A refused token disconnects the account, and so does a lost webhook subscription (the page
    removed the app: nothing would arrive again), so an inbox never goes silent unnoticed; a
    working one reconnects it. Returns True if the token works.
    """
    own = client is None
    client = client or GraphClient(account)
    page_id = str((account.config or {}).get("page_id", ""))
    name = PLATFORM_NAMES.get(account.kind, "Meta")
    try:
        client.me()
        subscribed = client.get(f"{page_id}/subscribed_apps").get("data") if page_id else None
    except GraphError as exc:
        if exc.code in TOKEN_CODES:
            failure(account, exc)
            return False
        health.do_record_channel_error(account, f"{name} token check failed: {exc}")
        return True
    finally:
        if own:
            client.close()
    if subscribed == []:
        reason = f"{name}: the page no longer has the app installed, so no webhooks arrive; subscribe it again (POST /{page_id}/subscribed_apps)"
        health.do_record_channel_error(account, reason, disconnected=True)
        return True
    health.do_record_channel_ok(account, checked=True)  # the token works even on a quiet page
    return True


# --- the 24-hour window -------------------------------------------------------------------------


def window_closes_at(account: ChannelAccount, thread_key: str) -> dt.datetime | None:
    """When the 24-hour window of a direct-message thread closes (None: the customer never wrote)."""
    from madoguchi.inbox.models import Direction, Message

    if not thread_key:
        return None
    last = (
        Message.objects.filter(
            channel_account=account, conversation__thread_key=thread_key, direction=Direction.INBOUND, public=False
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return last + WINDOW if last else None


def messaging_window(conversation: Conversation) -> dt.datetime | None:
    """For the composer: when a private reply on this Facebook/Instagram conversation stops being
    allowed (None when the conversation is public comments, or another channel)."""
    account = conversation.channel_account
    if account.kind not in PLATFORM_NAMES or not conversation.thread_key.startswith("dm:"):
        return None
    return window_closes_at(account, conversation.thread_key)


def check_window(account: ChannelAccount, thread_key: str) -> None:
    """Raise a clear PermanentError when a message would fall outside the 24-hour window."""
    closes = window_closes_at(account, thread_key)
    name = PLATFORM_NAMES.get(account.kind, "Meta")
    if closes is None:
        raise PermanentError(f"{name}: the customer has not written to the page, so it may not message them")
    if closes <= timezone.now():
        raise PermanentError(
            f"{name}: the 24-hour window closed on {closes:%Y-%m-%d %H:%M} UTC; Meta allows only tagged messages after it"
        )


# --- private replies to comments ----------------------------------------------------------------


def answered_item(conversation: Conversation) -> Message | None:
    """The customer's message a reply in this conversation answers (as do_reply picks it)."""
    from madoguchi.inbox.models import Direction

    return conversation.messages.filter(direction=Direction.INBOUND).order_by("-created_at", "-id").first()


def private_reply_problem(account: ChannelAccount, comment: Message, *, sending: str = "") -> str:
    """Why Meta would refuse a private reply to this comment now ("" when it would not): one per
    comment, within 7 days of it. `sending`: the outbox key of the reply being sent (not counted)."""
    from django.utils.translation import gettext as _

    from madoguchi.inbox.models import Delivery, Direction, Message

    if comment.created_at + PRIVATE_REPLY_WINDOW <= timezone.now():
        return _("Meta allows a private reply only within 7 days of the comment (written %(date)s).") % {
            "date": timezone.localtime(comment.created_at).strftime("%Y-%m-%d %H:%M")
        }
    others = Message.objects.filter(
        channel_account=account, direction=Direction.OUTBOUND, public=False, reply_to_external_id=comment.external_id
    )
    others = others.filter(delivery=Delivery.SENT).exclude(outbox__idempotency_key=sending) if sending else others.exclude(delivery=Delivery.FAILED)
    if others.exists():
        return _("This comment already has its private reply (Meta allows one per comment).")
    return ""


def reply_modes(conversation: Conversation, comment: Message, private_label: str) -> tuple[tuple[str, str, str], ...]:
    """The composer's choice on a comment: answer it publicly, or privately (with why not, if not)."""
    from django.utils.translation import gettext as _

    problem = private_reply_problem(conversation.channel_account, comment)
    return (("public", _("Reply publicly"), ""), ("private", private_label, problem))


def send_private_reply(
    account: ChannelAccount, client: GraphClient, owner_id: str, recipient: dict[str, str], comment: Message, text: str, key: str
) -> str:
    """Send the one private reply to `comment` (checked first: one per comment, 7 days); link the
    person's Messenger/Instagram id to the commenter's contact so their answer, which arrives in
    its own direct-message conversation, sits beside the comment; returns the message id."""
    with translation.override("en"):
        problem = private_reply_problem(account, comment, sending=key)
    if problem:
        raise PermanentError(f"{PLATFORM_NAMES.get(account.kind, 'Meta')}: {problem}")
    try:
        answer = client.private_reply(owner_id, recipient, text)
    except GraphError as exc:
        raise failure(account, exc, what="the private reply") from exc
    note_usage(account, client)
    do_link_private_reply(account, comment, str(answer.get("recipient_id", "")))
    return str(answer["message_id"])


def do_link_private_reply(account: ChannelAccount, comment: Message, recipient_id: str) -> None:
    """The commenter's messaging id becomes an identity of their contact, so the direct-message
    conversation their answer opens is one of that contact's conversations (listed beside the
    comment's). Already someone else's: left alone (deciding that is a merge, made by a person)."""
    from madoguchi.contacts.actions import IdentityTaken, do_add_identity

    identity = comment.identity
    if not recipient_id or identity is None or identity.external_id == recipient_id:
        return  # Instagram: the commenter's id is already their messaging id
    author = InboundAuthor(external_id=recipient_id, handle=identity.handle, display_name=identity.display_name)
    try:
        do_add_identity(identity.contact, account.kind, author)
    except IdentityTaken:
        logger.info("%s id %s already belongs to another contact; not linked to contact %s", account.kind, recipient_id, identity.contact_id)


def dm_recipient(message: OutboundMessage) -> str:
    """Whom a direct message goes to: the person its `dm:<id>` thread is with (a contact may hold
    several ids on one network: a commenter's and, after a private reply, their Messenger id),
    else the outbox's pick."""
    return message.thread_id.removeprefix("dm:") if message.thread_id.startswith("dm:") else message.recipient


def previous_attempts(idempotency_key: str) -> int:
    """How many earlier attempts the outbox made for this reply (a timeout may have delivered it)."""
    from madoguchi.inbox.models import Outbox

    return Outbox.objects.filter(idempotency_key=idempotency_key).values_list("attempts", flat=True).first() or 0


# --- Messenger-shaped events (Messenger and Instagram direct messages) --------------------------


def when(millis: Any) -> dt.datetime | None:
    if not isinstance(millis, int | float) or millis <= 0:
        return None
    # Messenger timestamps are milliseconds; Instagram's `entry.time` may be seconds.
    seconds = millis / 1000 if millis > 10**11 else millis
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp", "video/mp4": ".mp4", "audio/mpeg": ".mp3", "audio/mp4": ".m4a"}
FETCHED_TYPES = {"image", "video", "audio", "file", "story_mention"}


def fetch_attachments(client: GraphClient | None, attachments: list[dict[str, Any]], mid: str) -> tuple[list[InboundAttachment], list[str]]:
    """Fetch the files of a message through their URLs (within the size limit); notes for the rest."""
    files: list[InboundAttachment] = []
    notes: list[str] = []
    for i, attachment in enumerate(attachments[:10]):
        kind = str(attachment.get("type", ""))
        payload = attachment.get("payload") or {}
        url = str(payload.get("url", "")) if isinstance(payload, dict) else ""
        if payload.get("sticker_id") if isinstance(payload, dict) else False:
            notes.append(f"[sticker {payload.get('sticker_id')}]")
            continue
        if kind not in FETCHED_TYPES or not url:
            title = str(attachment.get("title") or (payload.get("title") if isinstance(payload, dict) else "") or "")
            notes.append(f"[{kind or 'attachment'}]" + (f" {title}" if title else "") + (f" {url}" if url else ""))
            continue
        label = "[story mention]" if kind == "story_mention" else f"[{kind}]"
        if client is None:
            notes.append(f"{label} {url}")
            continue
        try:
            content, content_type = client.media(url, settings.ATTACHMENT_MAX_BYTES)
        except GraphError as exc:
            notes.append(f"{label} not fetched ({exc}): {url}")
            continue
        name = f"{kind}-{mid[-12:] or 'x'}-{i + 1}{EXTENSIONS.get(content_type, '')}"
        files.append(InboundAttachment(filename=name[:255], content_type=content_type, content=content))
        if kind == "story_mention":
            notes.append(label)
    return files, notes


@dataclass
class Messaging:
    """What one `messaging` event became: an item, an event, or nothing (echoes, deliveries)."""

    item: InboundItem | None = None
    event: InboundEvent | None = None
    duplicate: bool = False  # already stored: skipped before any fetch


def messaging_event(
    account: ChannelAccount,
    raw: dict[str, Any],
    author: Callable[[str], InboundAuthor],
    client: GraphClient | None,
    *,
    own_id: str,
) -> Messaging:
    """One Messenger-shaped `messaging` event as an item or an event. `author(id)` builds the
    sender's identity (profile fetched by the caller's platform)."""
    sender = str((raw.get("sender") or {}).get("id", ""))
    created_at = when(raw.get("timestamp"))
    thread = f"dm:{sender}"
    if sender == own_id:
        return Messaging()  # our own messages echoed back, our own reactions and reads
    message = raw.get("message")
    if isinstance(message, dict):
        mid = str(message.get("mid", ""))
        if message.get("is_echo") or not mid:
            return Messaging()  # our own messages, echoed back
        if not message.get("is_deleted") and already_stored(account, mid):
            return Messaging(duplicate=True)
        if message.get("is_deleted"):
            # Instagram: the person unsent the message; the original stays for audit.
            return Messaging(event=InboundEvent(external_id=f"unsend:{mid}", kind="delete", author=InboundAuthor(external_id=sender), target_external_id=mid, created_at=created_at, raw=raw))
        parts: list[str] = []
        reply_to: list[str] = []
        reply = message.get("reply_to") or {}
        if isinstance(reply, dict) and reply.get("mid"):
            reply_to.append(str(reply["mid"]))
        story = reply.get("story") if isinstance(reply, dict) else None
        if isinstance(story, dict):
            parts.append(f"[story reply] {story.get('url', '')}".strip())
        if message.get("quick_reply"):
            parts.append(f"[quick reply {message['quick_reply'].get('payload', '')}]")
        files, notes = fetch_attachments(client, list(message.get("attachments") or []), mid)
        text = str(message.get("text", ""))
        text = "\n".join(p for p in [*parts, text, *notes] if p)
        return Messaging(
            item=InboundItem(
                external_id=mid,
                author=author(sender),
                text=text or " ".join(f"[{f.content_type.split('/')[0]}]" for f in files) or "[message]",
                created_at=created_at,
                reply_to=reply_to,
                thread_id=thread,
                attachments=files,
                raw=raw,
            )
        )
    reaction = raw.get("reaction")
    if isinstance(reaction, dict) and reaction.get("mid"):
        action = str(reaction.get("action", "react"))
        mid = str(reaction["mid"])
        return Messaging(
            event=InboundEvent(
                external_id=f"reaction:{mid}:{sender}:{action}:{raw.get('timestamp', '')}",
                kind="unreaction" if action == "unreact" else "reaction",
                author=InboundAuthor(external_id=sender),
                target_external_id=mid,
                emoji=str(reaction.get("emoji") or reaction.get("reaction") or "")[:64],
                created_at=created_at,
                raw=raw,
            )
        )
    edit = raw.get("message_edit")
    if isinstance(edit, dict) and edit.get("mid"):
        mid = str(edit["mid"])
        return Messaging(
            event=InboundEvent(
                external_id=f"edit:{mid}:{edit.get('num_edit', raw.get('timestamp', ''))}",
                kind="edit",
                author=InboundAuthor(external_id=sender),
                target_external_id=mid,
                text=str(edit.get("text", "")),
                created_at=created_at,
                raw=raw,
            )
        )
    read = raw.get("read")
    if isinstance(read, dict):
        target = str(read.get("mid", "")) or _read_target(account, thread, read.get("watermark"))
        return Messaging(
            event=InboundEvent(
                external_id=f"read:{sender}:{read.get('mid') or read.get('watermark') or raw.get('timestamp', '')}",
                kind="read",
                author=InboundAuthor(external_id=sender),
                target_external_id=target,
                created_at=created_at,
                raw=raw,
            )
        )
    postback = raw.get("postback")
    if isinstance(postback, dict):
        mid = str(postback.get("mid") or f"postback:{sender}:{raw.get('timestamp', '')}")
        return Messaging(
            item=InboundItem(
                external_id=mid,
                author=author(sender),
                text=f"[postback] {postback.get('title', '')} {postback.get('payload', '')}".strip()[:1000],
                created_at=created_at,
                thread_id=thread,
                raw=raw,
            )
        )
    return Messaging()  # deliveries, optins, handovers: nothing a person needs to see


def _read_target(account: ChannelAccount, thread: str, watermark: Any) -> str:
    """Messenger marks everything up to a time as read: the latest of our messages before it."""
    from madoguchi.inbox.models import Direction, Message

    moment = when(watermark)
    if moment is None:
        return ""
    found = (
        Message.objects.filter(
            channel_account=account, conversation__thread_key=thread, direction=Direction.OUTBOUND, created_at__lte=moment
        )
        .exclude(external_id="")
        .order_by("-created_at")
        .values_list("external_id", flat=True)
        .first()
    )
    return found or ""


def already_stored(account: ChannelAccount, external_id: str) -> bool:
    """A redelivered item is skipped before any profile or attachment fetch."""
    from madoguchi.inbox.models import Message
    from madoguchi.ingest.models import Post

    return (
        Message.objects.filter(channel_account=account, external_id=external_id).exists()
        or Post.objects.filter(channel_account=account, external_id=external_id).exists()
    )


def thread_parent(account: ChannelAccount, parent_id: str, thread_key: str) -> bool:
    """Whether a comment's parent may thread it: not when the parent lives in another
    commenter's conversation (each commenter on a post has their own)."""
    from madoguchi.inbox.models import Message

    key = (
        Message.objects.filter(channel_account=account, external_id=parent_id)
        .values_list("conversation__thread_key", flat=True)
        .first()
    )
    return key is None or key == thread_key


def ingest_all(account: ChannelAccount, results: list[tuple[dict[str, Any], Callable[[], Messaging]]]) -> dict[str, int]:
    """Ingest what each raw change or event became; one that fails is quarantined, never lost."""
    counts = {"created": 0, "duplicate": 0, "events": 0, "quarantined": 0, "ignored": 0}
    name = PLATFORM_NAMES.get(account.kind, account.kind)
    for raw, build in results:
        try:
            built = build()
            if built.duplicate:
                counts["duplicate"] += 1
            elif built.item is not None:
                result = ingest.do_ingest(account, built.item)
                if result.quarantine is not None:
                    counts["quarantined"] += 1
                else:
                    counts["created" if result.created else "duplicate"] += 1
            elif built.event is not None:
                ingest.do_ingest_event(account, built.event)
                counts["events"] += 1
            else:
                counts["ignored"] += 1
        except Exception as exc:  # one bad event must not lose the others
            logger.exception("%s webhook event could not be ingested", name)
            ingest.do_quarantine(account, f"{name} event: {type(exc).__name__}: {exc}"[:5000], json.dumps(raw))
            counts["quarantined"] += 1
    health.do_record_channel_ok(account, received=True, reconnect=False)
    return counts


# --- the adapters' shared sending ---------------------------------------------------------------


def stored_item(account: ChannelAccount, external_id: str) -> Message | None:
    """The stored message with this external id on the account (the item a reply answers)."""
    from madoguchi.inbox.models import Message

    if not external_id:
        return None
    return Message.objects.select_related("identity__contact").filter(channel_account=account, external_id=external_id).first()


def own_earlier_reply(key: str, listed: Callable[[], list[dict[str, Any]]], own_id: str, text: str, text_field: str) -> str:
    """On a retry, the id of our identical reply if an earlier attempt did post it (a timeout may
    hide an accepted reply; the Graph API has no idempotency key): `listed()` lists the replies."""
    if not previous_attempts(key):
        return ""
    for reply in listed():
        if str((reply.get("from") or {}).get("id", "")) == own_id and reply.get(text_field) == text:
            return str(reply["id"])
    return ""


class MetaAdapter:
    """What the Facebook and Instagram adapters share: the checks before sending, and the three
    ways out — a public reply (each network's own), the private reply to a comment, and a direct
    message inside the 24-hour window. Each network says how it addresses them."""

    kind: ClassVar[str]
    client_class: ClassVar[type[GraphClient]]
    direct_message: ClassVar[str] = "direct message"  # what the network calls one, for errors

    def owner_id(self, account: ChannelAccount) -> str:
        """The page (or Instagram account) that sends."""
        raise NotImplementedError

    def check_text(self, text: str, *, public: bool) -> None:
        """PermanentError when the text is over the network's limit."""

    def private_target(self, comment: Message | None) -> dict[str, str] | None:
        """How the Send API addresses a private reply to this item (None: it takes none)."""
        raise NotImplementedError

    def private_label(self) -> str:
        raise NotImplementedError

    def reply_publicly(self, account: ChannelAccount, client: Any, owner_id: str, message: OutboundMessage, text: str) -> str:
        """Post the public reply; returns its id (GraphError is mapped by the caller)."""
        raise NotImplementedError

    def private_reply_hints(self, conversation: Conversation) -> dict[str, Any]:
        """On a comment that takes one: the composer's choice of a public or a private reply."""
        comment = answered_item(conversation)
        if comment is None or self.private_target(comment) is None:
            return {}
        return {"reply_modes": reply_modes(conversation, comment, self.private_label())}

    def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        name = PLATFORM_NAMES[self.kind]
        text = message.text.strip()
        if not text:
            raise PermanentError(f"{name}: only text replies are supported; this message has no text")
        owner_id = self.owner_id(account)
        self.check_text(text, public=message.public)
        check_rate_limit(account)  # a remembered limit: wait without calling
        comment = None if message.public else stored_item(account, message.in_reply_to)
        recipient = self.private_target(comment)
        if not message.public and comment is not None and comment.public and recipient is None:
            raise PermanentError(f"{name}: this item cannot be answered privately")
        person = "" if message.public or recipient else dm_recipient(message)
        if not message.public and not recipient:
            if not person:
                raise PermanentError(f"{name}: no recipient for this {self.direct_message}")
            check_window(account, message.thread_id or f"dm:{person}")
        with self.client_class(account) as client:
            if recipient and comment is not None:
                external_id = send_private_reply(account, client, owner_id, recipient, comment, text, message.idempotency_key)
            else:
                try:
                    if message.public:
                        external_id = self.reply_publicly(account, client, owner_id, message, text)
                    else:
                        external_id = client.send_message(owner_id, person, text)
                except GraphError as exc:
                    raise failure(account, exc, what="the reply" if message.public else "the message") from exc
                note_usage(account, client)
        health.do_record_channel_ok(account, sent=True)
        return SendResult(external_id)
