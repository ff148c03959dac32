"""Loopback flood of signed webhook deliveries against the running server.

Starts `madoguchi serve` (several web workers on PostgreSQL) and `madoguchi worker` processes on
a throw-away database, then posts signed deliveries from many threads at once: LINE message
events (x-line-signature; stored as a task, ingested by the workers), X Account Activity
mentions (x-twitter-webhooks-signature; ingested before the answer), and Facebook/Instagram
deliveries when those connectors are present. 10 % of the deliveries are re-sent byte for byte
(platforms redeliver). It prints deliveries/s accepted, p50/p95 of the acknowledgement time (a
2xx is only sent once the delivery is durable), and, after the queue drains, how many messages
were lost and how many duplicated (both must be 0).

    .venv/bin/python bench/webhook_ingest.py                    # SQLite, 1 web worker, 1 task worker
    .venv/bin/python bench/webhook_ingest.py --postgres --web-workers 4 --task-workers 2
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    expect: str  # the external id of the message it carries


def line_delivery(base: str, account_id: int, secret: str, k: int) -> Delivery:
    message_id = f"{500000000000 + k}"
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "webhookEventId": f"01HBENCH{k:018d}",
        "deliveryContext": {"isRedelivery": False},
        "source": {"type": "user", "userId": f"U{k % 97:032x}"},
        "replyToken": f"rt{k}",
        "message": {"type": "text", "id": message_id, "quoteToken": f"q{k}", "text": f"注文番号 {k} の配送状況を教えてください"},
    }
    body = json.dumps({"destination": "Ubench", "events": [event]}, ensure_ascii=False).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return Delivery(f"{base}/connectors/line/{account_id}/webhook/", body, {"x-line-signature": signature, "content-type": "application/json"}, message_id)


def x_delivery(base: str, account_id: int, secret: str, own_id: str, k: int) -> Delivery:
    tweet_id = f"{1800000000000000000 + k}"
    tweet = {
        "created_at": time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime()),
        "id_str": tweet_id,
        "text": f"@acme my order {k} has not arrived yet",
        "in_reply_to_status_id_str": None,
        "user": {"id_str": f"{7000 + k % 89}", "screen_name": f"customer{k % 89}", "name": "Customer", "followers_count": 12},
        "entities": {"user_mentions": [{"id_str": own_id, "screen_name": "acme"}]},
        "lang": "en",
    }
    body = json.dumps({"for_user_id": own_id, "tweet_create_events": [tweet]}).encode()
    signature = "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return Delivery(f"{base}/connectors/x/{account_id}/webhook/", body, {"x-twitter-webhooks-signature": signature, "content-type": "application/json"}, tweet_id)


def facebook_delivery(base: str, account_id: int, secret: str, page_id: str, k: int) -> Delivery:
    comment_id = f"{page_id}_{900000 + k}"
    value = {
        "item": "comment", "verb": "add", "comment_id": comment_id, "post_id": f"{page_id}_1",
        "parent_id": f"{page_id}_1", "from": {"id": f"{4000 + k % 83}", "name": "Customer"},
        "message": f"Order {k}: is it shipped?", "created_time": int(time.time()),
    }
    body = json.dumps({"object": "page", "entry": [{"id": page_id, "time": int(time.time()), "changes": [{"field": "feed", "value": value}]}]}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return Delivery(f"{base}/connectors/facebook/{account_id}/webhook/", body, {"x-hub-signature-256": signature, "content-type": "application/json"}, comment_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL database to use (default: SQLite in a temp dir)")
    parser.add_argument("--postgres", action="store_true", help="start a throw-away PostgreSQL cluster")
    parser.add_argument("--count", type=int, default=2000, help="distinct deliveries (plus 10 %% duplicates)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--task-workers", type=int, default=1)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--server-log", help="append the server's and workers' output to this file")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="madoguchi-webhook."))
        env = {**os.environ, "MADOGUCHI_DATA_DIR": data_dir, "DJANGO_SETTINGS_MODULE": "madoguchi.config.settings", "LOG_LEVEL": "WARNING"}
        env.pop("DATABASE_URL", None)
        url = args.database_url
        if args.postgres and not url:
            from pgcluster import throwaway_postgres

            url = stack.enter_context(throwaway_postgres("max_connections=200"))
        if url:
            env["DATABASE_URL"] = url
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from madoguchi.accounts.models import Brand, Workspace
        from madoguchi.connectors.line.fake import FakeLine
        from madoguchi.connectors.models import ChannelAccount
        from madoguchi.connectors.registry import with_module
        from madoguchi.inbox.models import Message

        call_command("migrate", verbosity=0)
        fake_line = FakeLine().start()
        stack.callback(fake_line.stop)
        ws = Workspace.objects.create(name="Webhook bench", slug="webhook-bench")
        brand = Brand.objects.create(workspace=ws, name="Acme")
        line_config, line_secrets = fake_line.account_settings()
        line = ChannelAccount.objects.create(workspace=ws, brand=brand, kind="line", name="LINE", config=line_config, secrets=line_secrets)
        x = ChannelAccount.objects.create(workspace=ws, brand=brand, kind="x", name="X", handle="acme", config={"user_id": "4242"}, secrets={"consumer_secret": "bench-consumer-secret"})
        kinds = ["line", "x"]
        fb = None
        if "facebook" in with_module("urls"):
            fb = ChannelAccount.objects.create(workspace=ws, brand=brand, kind="facebook", name="Facebook", config={"page_id": "1357"}, secrets={"app_secret": "bench-app-secret", "page_access_token": "bench", "verify_token": "v"})
            kinds.append("facebook")
        connection.close()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        madoguchi = str(Path(sys.executable).with_name("madoguchi"))
        out = stack.enter_context(open(args.server_log, "a")) if args.server_log else subprocess.DEVNULL
        procs = [subprocess.Popen([madoguchi, "serve", "--port", str(port), "--workers", str(args.web_workers)], env=env, stdout=out, stderr=out)]
        procs += [subprocess.Popen([madoguchi, "worker", "--interval", "0.1"], env=env, stdout=out, stderr=out) for _ in range(args.task_workers)]
        for proc in procs:
            stack.callback(proc.wait)
            stack.callback(proc.terminate)
        import httpx

        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(base + "/login/", timeout=1)
                break
            time.sleep(0.1)

        rng = random.Random(11)
        deliveries: list[Delivery] = []
        for k in range(args.count):
            kind = kinds[k % len(kinds)]
            if kind == "line":
                deliveries.append(line_delivery(base, line.pk, line_secrets["channel_secret"], k))
            elif kind == "x":
                deliveries.append(x_delivery(base, x.pk, "bench-consumer-secret", "4242", k))
            elif fb is not None:
                deliveries.append(facebook_delivery(base, fb.pk, "bench-app-secret", "1357", k))
        expected = {d.expect for d in deliveries}
        duplicates = [deliveries[rng.randrange(len(deliveries))] for _ in range(args.count // 10)]
        flood = deliveries + duplicates
        rng.shuffle(flood)

        local = threading.local()

        failures: list[str] = []

        def post(delivery: Delivery) -> tuple[int, float]:
            """One delivery, retried like the platforms retry (LINE, Meta and X redeliver when
            they get no 2xx); the time is the first attempt's."""
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(timeout=60)
            first = None
            for attempt in range(4):
                started = time.perf_counter()
                try:
                    response = client.post(delivery.url, content=delivery.body, headers=delivery.headers)
                    status, detail = response.status_code, response.text[:120]
                except httpx.HTTPError as exc:
                    status, detail = 0, type(exc).__name__
                first = first if first is not None else time.perf_counter() - started
                if 200 <= status < 300:
                    return status, first
                failures.append(f"{status} {detail}")
                time.sleep(0.5 * 2**attempt)
            return status, first

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(post, flood))
        elapsed = time.perf_counter() - started
        accepted = [t for status, t in results if 200 <= status < 300]
        refused = len(results) - len(accepted)

        drain_started = time.perf_counter()
        stored: set[str] = set()
        while time.perf_counter() - drain_started < args.drain_timeout:
            stored = set(Message.objects.filter(external_id__in=expected).values_list("external_id", flat=True))
            if len(stored) == len(expected):
                break
            time.sleep(0.5)
        drained = time.perf_counter() - started
        total_rows = Message.objects.filter(external_id__in=expected).count()
        connection.close()

    database = "PostgreSQL" if url else "SQLite"
    print(f"webhook flood on {database}: {len(flood)} deliveries ({len(duplicates)} duplicates) over {', '.join(kinds)}; "
          f"{args.concurrency} senders, {args.web_workers} web worker(s), {args.task_workers} task worker(s)")
    print(f"  accepted {len(accepted)}, refused after 4 attempts {refused}; attempts answered without 2xx: {len(failures)}")
    for failure in sorted(set(failures))[:5]:
        print(f"    e.g. {failure}")
    print(f"  deliveries/s accepted: {len(accepted) / elapsed:,.0f}")
    if accepted:
        print(f"  ack time: p50 {statistics.median(accepted) * 1000:.1f} ms, p95 {pct(accepted, 95) * 1000:.1f} ms")
    print(f"  all messages stored {drained:.1f} s after the flood began")
    print(f"  lost (acknowledged but not stored): {len(expected) - len(stored)}, duplicated: {total_rows - len(stored)}")


if __name__ == "__main__":
    main()
