"""Outgoing webhooks: queued with the change, POSTed signed to a real local server, retried or failed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from madoguchi.accounts import actions as account_actions
from madoguchi.accounts.tests.api_client import api_fixture  # noqa: F401
from madoguchi.inbox import actions as inbox_actions
from madoguchi.webhooks import actions, tasks
from madoguchi.webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


class Receiver(ThreadingHTTPServer):
    """A customer's webhook receiver on loopback: records requests, answers as told."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.delay = 0.0
        self.headers: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/madoguchi"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        time.sleep(self.server.delay)
        self.send_response(self.server.status)
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _receivers_on_loopback(settings):
    """The test receivers listen on 127.0.0.1, which production refuses (see test_ssrf_*)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def enqueued(monkeypatch):
    """Delivery ids handed to the task queue (after commit)."""
    ids: list[int] = []
    monkeypatch.setattr(actions, "_enqueue", lambda delivery_id, run_after=None: ids.append(delivery_id))
    return ids


def endpoint_for(cast, url, events=("conversation.created", "conversation.updated", "message.created"), ws=None):
    return actions.do_create_endpoint(ws or cast.ws, url=url, events=list(events), secret="s3cret-s3cret-s3cret")


def a_delivery(cast, receiver, django_capture_on_commit_callbacks) -> WebhookDelivery:
    endpoint_for(cast, receiver.url, events=["message.created"])
    with django_capture_on_commit_callbacks(execute=True):
        cast.inbound("help")
    return WebhookDelivery.objects.get()


def due_again(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_inbox_changes_queue_deliveries_for_subscribed_endpoints_after_commit(
    cast, enqueued, django_capture_on_commit_callbacks
):
    everything = endpoint_for(cast, "https://hooks.acme.example/all")
    updates_only = endpoint_for(cast, "https://hooks.acme.example/updates", events=["conversation.updated"])
    switched_off = endpoint_for(cast, "https://hooks.acme.example/off")
    actions.do_update_endpoint(switched_off, active=False)
    other_workspace = endpoint_for(cast, "https://hooks.beta.example/all", ws=cast.ws_b)
    with django_capture_on_commit_callbacks(execute=True):
        conv = cast.inbound("注文した商品が届きません").message.conversation
        assert enqueued == []  # nothing leaves before the change is committed
    events = list(WebhookDelivery.objects.order_by("id").values_list("endpoint_id", "event"))
    assert events == [(everything.pk, "conversation.created"), (everything.pk, "message.created")]
    assert sorted(enqueued) == sorted(WebhookDelivery.objects.values_list("id", flat=True))
    payload = WebhookDelivery.objects.get(event="message.created").payload
    assert payload["conversation_id"] == conv.pk and payload["data"]["preview"] == "注文した商品が届きません"
    with django_capture_on_commit_callbacks(execute=True):
        inbox_actions.do_set_priority(conv, 3)
    assert set(WebhookDelivery.objects.filter(event="conversation.updated").values_list("endpoint_id", flat=True)) == {
        everything.pk,
        updates_only.pk,
    }
    assert not WebhookDelivery.objects.filter(endpoint__in=[switched_off, other_workspace]).exists()


def test_delivery_posts_the_event_signed_with_the_endpoint_secret(cast, receiver, django_capture_on_commit_callbacks):
    delivery = a_delivery(cast, receiver, django_capture_on_commit_callbacks)
    receiver.status = 204
    assert tasks.deliver_webhook.call(delivery.pk) == "delivered"
    ((headers, body),) = receiver.received
    signed = headers["x-madoguchi-timestamp"].encode() + b"." + body
    expected = hmac.new(b"s3cret-s3cret-s3cret", signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-madoguchi-signature"], f"sha256={expected}")
    assert headers["x-madoguchi-event"] == "message.created"
    assert headers["x-madoguchi-delivery"] == str(delivery.pk)
    assert abs(int(headers["x-madoguchi-timestamp"]) - time.time()) < 60
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == delivery.payload
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.response_code == 204
    assert delivery.attempts == 1 and delivery.delivered_at is not None
    assert tasks.deliver_webhook.call(delivery.pk) == "not due or already claimed"
    assert len(receiver.received) == 1


def test_server_errors_rate_limits_and_timeouts_are_retried_with_backoff(
    cast, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    delivery = a_delivery(cast, receiver, django_capture_on_commit_callbacks)
    receiver.status = 503
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert tasks.deliver_webhook.call(delivery.pk) == "retrying"
    assert len(callbacks) == 1  # the retry is enqueued after commit
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1 and delivery.response_code == 503
    assert before + dt.timedelta(seconds=9) < delivery.next_attempt_at < before + dt.timedelta(seconds=20)
    assert tasks.deliver_webhook.call(delivery.pk) == "not due or already claimed"

    due_again(delivery)
    receiver.status, receiver.headers = 429, {"Retry-After": "120"}
    assert tasks.deliver_webhook.call(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.next_attempt_at > timezone.now() + dt.timedelta(seconds=100)

    due_again(delivery)
    monkeypatch.setattr(tasks, "TIMEOUT_SECONDS", 0.2)
    receiver.status, receiver.headers, receiver.delay = 200, {}, 1.0
    assert tasks.deliver_webhook.call(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and "Timeout" in delivery.last_error

    due_again(delivery)
    receiver.delay = 0.0
    assert tasks.deliver_webhook.call(delivery.pk) == "delivered"


@pytest.mark.parametrize("status", [400, 404, 410, 301])
def test_client_errors_fail_for_good(cast, receiver, status, django_capture_on_commit_callbacks):
    delivery = a_delivery(cast, receiver, django_capture_on_commit_callbacks)
    receiver.status = status
    assert tasks.deliver_webhook.call(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.response_code == status


def test_gives_up_after_the_last_attempt(cast, receiver, django_capture_on_commit_callbacks):
    delivery = a_delivery(cast, receiver, django_capture_on_commit_callbacks)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=actions.MAX_ATTEMPTS - 1)
    receiver.status = 500
    assert tasks.deliver_webhook.call(delivery.pk) == "failed"
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED


def test_a_refused_connection_is_retried(cast, enqueued, django_capture_on_commit_callbacks):
    endpoint_for(cast, "http://127.0.0.1:9/nothing-listens-here", events=["message.created"])
    with django_capture_on_commit_callbacks(execute=True):
        cast.inbound("help")
    delivery = WebhookDelivery.objects.get()
    assert tasks.deliver_webhook.call(delivery.pk) == "retrying"


@pytest.mark.parametrize(
    "url", ["ftp://hooks.acme.example/x", "javascript:alert(1)", "file:///etc/passwd", "hooks.acme.example", "http://"]
)
def test_only_http_and_https_endpoint_urls_are_accepted(cast, api, url):
    response = api(cast.admin, "post", "/api/v1/webhooks", {"url": url, "events": ["message.created"]})
    assert response.status_code == 422
    with pytest.raises(actions.WebhookError):
        actions.check_endpoint_url(url)


def test_admins_manage_endpoints_of_their_own_workspace(cast, api):
    created = api(cast.admin, "post", "/api/v1/webhooks", {"url": "https://hooks.acme.example/in", "events": ["message.created"]})
    assert created.status_code == 201 and len(created.json()["secret"]) >= 32
    endpoint_id = created.json()["id"]
    listed = api(cast.admin, "get", "/api/v1/webhooks").json()
    assert [e["id"] for e in listed] == [endpoint_id] and "secret" not in listed[0]
    assert api(cast.admin, "post", "/api/v1/webhooks", {"url": "https://x.example", "events": ["nope"]}).status_code == 422
    assert api(cast.agent, "get", "/api/v1/webhooks").status_code == 403
    assert api(cast.manager, "post", "/api/v1/webhooks", {"url": "https://x.example", "events": ["message.created"]}).status_code == 403
    admin_b = account_actions.do_create_user("admin@beta.example", workspace=cast.ws_b, role="admin", password=None)
    assert api(admin_b, "get", "/api/v1/webhooks").json() == []
    assert api(admin_b, "patch", f"/api/v1/webhooks/{endpoint_id}", {"active": False}).status_code == 404
    assert api(admin_b, "get", f"/api/v1/webhooks/{endpoint_id}/deliveries").status_code == 404
    assert api(admin_b, "delete", f"/api/v1/webhooks/{endpoint_id}").status_code == 404
    changed = api(cast.admin, "patch", f"/api/v1/webhooks/{endpoint_id}", {"active": False, "events": ["conversation.updated"]})
    assert changed.json()["active"] is False and changed.json()["events"] == ["conversation.updated"]
    assert api(cast.admin, "get", f"/api/v1/webhooks/{endpoint_id}/deliveries").json() == []
    assert api(cast.admin, "delete", f"/api/v1/webhooks/{endpoint_id}").status_code == 204
    assert api(cast.admin, "get", "/api/v1/webhooks").json() == []


def test_lost_tasks_are_enqueued_again(cast, enqueued, django_capture_on_commit_callbacks):
    endpoint_for(cast, "https://hooks.acme.example/all", events=["message.created"])
    with django_capture_on_commit_callbacks(execute=False):  # the enqueue is "lost"
        cast.inbound("help")
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
    assert tasks.requeue_due_webhooks.call() == 1
    assert enqueued == list(WebhookDelivery.objects.values_list("id", flat=True))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://[::ffff:192.168.1.1]/hook",
    ],
)
def test_ssrf_private_and_loopback_targets_are_refused(cast, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(actions.WebhookError):
        actions.do_create_endpoint(cast.ws, url=url, events=["message.created"])


def test_ssrf_a_name_that_resolves_inside_is_refused_at_delivery(cast, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint = actions.do_create_endpoint(cast.ws, url="https://hooks.acme.example/x", events=["message.created"])
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("127.0.0.1", 0))])
    with django_capture_on_commit_callbacks(execute=False):
        cast.inbound("hello")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert tasks.deliver_webhook.call(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert "private" in delivery.last_error
