#!/usr/bin/env python3
"""Inbox at scale on PostgreSQL: fill N conversations (5 messages each, 3 workspaces), then time
what agents do, with 1 client and with 50 concurrent clients, and print p50/p95 in milliseconds.

    .venv/bin/python bench/inbox_scale.py --quick                 # 10,000 conversations
    .venv/bin/python bench/inbox_scale.py                         # 1,000,000 conversations
    .venv/bin/python bench/inbox_scale.py --database-url postgres://... --conversations 200000

Without --database-url a throw-away PostgreSQL cluster is started (bench/pgcluster.py). The fill
uses COPY (texts from ../shared/data: Japanese LocalgovFAQ, English customer-support tweets)
and writes the search index rows (inbox_message_search) too; secondary indexes are dropped during
the fill and rebuilt after. Operations go through the same queries and actions as the UI.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = Path(os.environ.get("MADOGUCHI_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path[:0] = [str(ROOT / "src"), str(HERE)]

WORKSPACES = 3
MESSAGES_PER_CONVERSATION = 5
BIG_CONVERSATION_MESSAGES = 10_000
BATCH = 50_000
SEARCH_WORDS = {"ja": ["返品", "申請"], "en": ["refund", "order"]}


# --- texts ---------------------------------------------------------------------------------------


def text_pool() -> dict[str, dict[str, list[str]]]:
    """Inbound and outbound texts per language from the shared data sets (small fallback if absent)."""
    pool = {"ja": {"in": [], "out": []}, "en": {"in": [], "out": []}}
    with contextlib.suppress(OSError):
        corpus = json.loads((DATA / "localgovfaq" / "corpus.json").read_text())
        for entry in corpus.values():
            q, _, a = entry.partition("\nAnswer:")
            pool["ja"]["in"].append(q.removeprefix("Question:").strip()[:400])
            pool["ja"]["out"].append(a.strip()[:400])
    with contextlib.suppress(OSError), open(DATA / "twcs" / "twcs_small_divya-gh.csv", newline="") as f:
        for row in csv.DictReader(f):
            pool["en"]["in" if row["inbound"] == "True" else "out"].append(row["text"][:400])
    fallback = {
        "ja": ["サイズが合わないので返品したいです。", "解約の申請方法を教えてください。"],
        "en": ["I want a refund for my order.", "Where is my order? It is late."],
    }
    for lang, texts in fallback.items():
        for d in ("in", "out"):
            pool[lang][d] = [t for t in pool[lang][d] if t] or texts
    return pool


def copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def tsvector_literal(tokens: list[str]) -> str:
    return " ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in dict.fromkeys(tokens))


# --- fill ----------------------------------------------------------------------------------------


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def setup_cast() -> list:
    """Three workspaces, each with a brand, a channel account and five agents."""
    from madoguchi.accounts.models import Brand, Role, User, Workspace
    from madoguchi.connectors.models import ChannelAccount

    cast = []
    for w in range(WORKSPACES):
        ws, _ = Workspace.objects.get_or_create(name=f"Bench {w}", slug=f"bench-{w}")
        brand, _ = Brand.objects.get_or_create(workspace=ws, name=f"Brand {w}")
        account, _ = ChannelAccount.objects.get_or_create(
            workspace=ws, brand=brand, kind="internal", name=f"Support {w}"
        )
        agents = []
        for a in range(5):
            user = User.objects.filter(email=f"agent{a}@bench{w}.example").first()
            if user is None:
                user = User(email=f"agent{a}@bench{w}.example", workspace=ws, role=Role.AGENT)
                user.set_unusable_password()
                user.save()
            agents.append(user)
        cast.append((ws, brand, account, agents))
    return cast


def table_columns(cursor, table: str) -> list[tuple[str, bool]]:
    cursor.execute(
        "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns"
        " WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )
    return cursor.fetchall()


class Copier:
    """COPY rows (dicts of already escaped text) into a table; unknown NOT NULL columns get ''."""

    def __init__(self, cursor, table: str) -> None:
        self.table = table
        self.columns = table_columns(cursor, table)

    def sql(self) -> str:
        return f"COPY {self.table} ({', '.join(c for c, _ in self.columns)}) FROM STDIN"

    def line(self, row: dict[str, str]) -> str:
        return "\t".join(row.get(c, "\\N" if nullable else "") for c, nullable in self.columns) + "\n"


def secondary_indexes(cursor, tables: list[str]) -> list[tuple[str, str]]:
    """Indexes that no constraint owns (safe to drop and recreate), as (name, definition)."""
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i"
        " WHERE i.tablename = ANY(%s) AND NOT EXISTS"
        " (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        [tables],
    )
    return cursor.fetchall()


def fill(n: int, rng: random.Random) -> dict:
    from django.db import connection

    from madoguchi.inbox.models import Conversation

    cast = setup_cast()
    existing = Conversation.objects.filter(workspace__in=[c[0] for c in cast]).count()
    if existing >= n:
        progress(f"database already holds {existing} bench conversations: not filling")
        return {"cast": cast}
    if existing:
        raise SystemExit(f"database holds {existing} bench conversations, fewer than {n}: use a fresh one")
    pool = text_pool()
    from madoguchi.text.normalize import search_tokens

    texts = {
        (lang, d): [(copy_escape(t), copy_escape(tsvector_literal(search_tokens(t))), copy_escape(t[:200])) for t in ts]
        for lang, by_dir in pool.items()
        for d, ts in by_dir.items()
    }
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    year = 365 * 24 * 3600
    stamp = lambda seconds_ago: (now - dt.timedelta(seconds=seconds_ago)).isoformat()  # noqa: E731

    tables = ["contacts_contact", "contacts_identity", "inbox_conversation", "inbox_message", "inbox_message_search"]
    raw = connection.connection
    with raw.cursor() as cur:
        copiers = {t: Copier(cur, t) for t in tables}
        indexes = secondary_indexes(cur, tables)
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        ids = {}
        for t, seq in [("contacts_contact", "id"), ("contacts_identity", "id"), ("inbox_conversation", "id"), ("inbox_message", "id")]:
            cur.execute(f"SELECT coalesce(max({seq}), 0) FROM {t}")
            ids[t] = cur.fetchone()[0]
    raw.commit() if not raw.autocommit else None

    started = time.monotonic()
    statuses = ["new"] * 4 + ["open"] * 6 + ["pending"] * 15 + ["resolved"] * 75  # percent
    contact_id, identity_id, conv_id, msg_id = (ids[t] for t in tables[:4])
    done = 0
    while done < n:
        size = min(BATCH, n - done)
        buf = {t: io.StringIO() for t in tables}
        for i in range(done, done + size):
            w = i % WORKSPACES
            ws, brand, account, agents = cast[w]
            lang = "ja" if rng.random() < 0.5 else "en"
            contact_id += 1
            identity_id += 1
            conv_id += 1
            # Newer ids have newer activity, as in life; jitter keeps the order imperfect.
            last_ago = max(0, int((n - i) / n * year) + rng.randint(-3600, 3600))
            status = rng.choice(statuses)
            assignee = "\\N" if status == "new" else str(rng.choice(agents).pk)
            first_in = texts[(lang, "in")][rng.randrange(len(texts[(lang, "in")]))]
            buf["contacts_contact"].write(copiers["contacts_contact"].line({
                "id": str(contact_id), "workspace_id": str(ws.pk), "name": f"Customer {contact_id}",
                "language": lang, "created_at": stamp(last_ago + 7200), "merged_into_id": "\\N",
            }))
            buf["contacts_identity"].write(copiers["contacts_identity"].line({
                "id": str(identity_id), "workspace_id": str(ws.pk), "contact_id": str(contact_id),
                "kind": "internal", "external_id": f"c{contact_id}", "handle": f"c{contact_id}",
                "display_name": f"Customer {contact_id}", "language": lang,
                "created_at": stamp(last_ago + 7200), "updated_at": stamp(last_ago + 7200),
            }))
            buf["inbox_conversation"].write(copiers["inbox_conversation"].line({
                "id": str(conv_id), "workspace_id": str(ws.pk), "contact_id": str(contact_id),
                "channel_account_id": str(account.pk), "brand_id": str(brand.pk), "status": status,
                "priority": str(rng.choice((0, 1, 1, 1, 2, 3))), "assignee_id": assignee,
                "language": lang, "preview": first_in[2], "message_count": str(MESSAGES_PER_CONVERSATION),
                "created_at": stamp(last_ago + 7200), "last_message_at": stamp(last_ago),
                "waiting_since": stamp(last_ago) if status in ("new", "open") else "\\N",
                "first_response_at": stamp(last_ago + 5400), "resolved_at": stamp(last_ago) if status == "resolved" else "\\N",
            }))
            for k in range(MESSAGES_PER_CONVERSATION):
                msg_id += 1
                direction = "in" if k % 2 == 0 else "out"
                text, tsv, _ = first_in if k == 0 else texts[(lang, direction)][rng.randrange(len(texts[(lang, direction)]))]
                buf["inbox_message"].write(copiers["inbox_message"].line({
                    "id": str(msg_id), "workspace_id": str(ws.pk), "conversation_id": str(conv_id),
                    "direction": direction, "channel_account_id": str(account.pk), "text": text,
                    "identity_id": str(identity_id) if direction == "in" else "\\N",
                    "author_id": "\\N" if direction == "in" else str(agents[0].pk),
                    "external_id": f"b{msg_id}" if direction == "in" else "\\N",
                    "language": lang, "created_at": stamp(last_ago + (MESSAGES_PER_CONVERSATION - 1 - k) * 1800),
                    "delivery": "" if direction == "in" else "sent", "raw": "{}", "public": "f",
                }))
                buf["inbox_message_search"].write(f"{msg_id}\t{ws.pk}\t{conv_id}\t{tsv}\n")
        with raw.cursor() as cur:
            for t in tables:
                with cur.copy(copiers[t].sql()) as copy:
                    copy.write(buf[t].getvalue())
        raw.commit() if not raw.autocommit else None
        done += size
        rate = done / (time.monotonic() - started)
        progress(f"filled {done:,}/{n:,} conversations ({rate:,.0f}/s, ~{(n - done) / rate:,.0f} s left)")

    big = big_conversation(cast[0], texts, conv_id + 1, contact_id + 1, identity_id + 1, msg_id, now)
    progress(f"rebuilding {len(indexes)} indexes")
    with raw.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")  # GIN builds crawl with the 64MB default
        for name, definition in indexes:
            t = time.monotonic()
            cur.execute(definition)
            progress(f"  {name} ({time.monotonic() - t:.1f} s)")
        for t in tables[:4]:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))")
        raw.commit() if not raw.autocommit else None
    with raw.cursor() as cur:
        raw.autocommit, was = True, raw.autocommit
        cur.execute("VACUUM ANALYZE")
        raw.autocommit = was
    progress(f"fill done in {time.monotonic() - started:,.0f} s")
    return {"cast": cast, "big": big}


def big_conversation(member, texts, conv_id: int, contact_id: int, identity_id: int, msg_id: int, now) -> int:
    """One conversation holding BIG_CONVERSATION_MESSAGES messages (a customer who never stops)."""
    from django.db import connection

    ws, brand, account, agents = member
    raw = connection.connection
    with raw.cursor() as cur:
        copiers = {t: Copier(cur, t) for t in ("contacts_contact", "contacts_identity", "inbox_conversation", "inbox_message")}
        rows = {t: io.StringIO() for t in copiers}
        at = now.isoformat()
        rows["contacts_contact"].write(copiers["contacts_contact"].line({"id": str(contact_id), "workspace_id": str(ws.pk), "name": "Talkative", "created_at": at}))
        rows["contacts_identity"].write(copiers["contacts_identity"].line({
            "id": str(identity_id), "workspace_id": str(ws.pk), "contact_id": str(contact_id), "kind": "internal",
            "external_id": "talkative", "created_at": at, "updated_at": at}))
        rows["inbox_conversation"].write(copiers["inbox_conversation"].line({
            "id": str(conv_id), "workspace_id": str(ws.pk), "contact_id": str(contact_id), "channel_account_id": str(account.pk),
            "brand_id": str(brand.pk), "status": "open", "priority": "1", "message_count": str(BIG_CONVERSATION_MESSAGES),
            "created_at": at, "last_message_at": at, "preview": "…"}))
        for k in range(BIG_CONVERSATION_MESSAGES):
            direction = "in" if k % 2 == 0 else "out"
            text = texts[("ja", direction)][k % len(texts[("ja", direction)])][0]
            rows["inbox_message"].write(copiers["inbox_message"].line({
                "id": str(msg_id + 1 + k), "workspace_id": str(ws.pk), "conversation_id": str(conv_id), "direction": direction,
                "channel_account_id": str(account.pk), "text": text, "identity_id": str(identity_id) if direction == "in" else "\\N",
                "author_id": "\\N" if direction == "in" else str(agents[0].pk), "created_at": at, "raw": "{}", "public": "f",
                "delivery": "" if direction == "in" else "sent"}))
        for t, c in copiers.items():
            with cur.copy(c.sql()) as copy:
                copy.write(rows[t].getvalue())
    raw.commit() if not raw.autocommit else None
    return conv_id


# --- measure -------------------------------------------------------------------------------------


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def timed(op: Callable[[random.Random], object], count: int, clients: int, seed: int) -> list[float]:
    """Run `op` count times per client in `clients` threads (each its own connection); ms per call."""
    from django.db import connection

    results: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        op(rng)  # warm the connection
        barrier.wait()
        mine = []
        for _ in range(count):
            t = time.perf_counter()
            op(rng)
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            results.extend(mine)
        connection.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def operations(state: dict) -> dict[str, Callable[[random.Random], object]]:
    from madoguchi.inbox import actions, queries
    from madoguchi.inbox.models import Conversation

    cast = state["cast"]
    users = [agents[0] for _, _, _, agents in cast]
    # Conversation ids per workspace to open and reply to (a sample; reading them all is slow at 1M).
    conv_ids = {
        u.workspace_id: list(Conversation.objects.filter(workspace_id=u.workspace_id).order_by("?").values_list("id", flat=True)[:2000])
        for u in users
    }
    deep = {}
    for u in users:
        qs = queries.conversations_for(u, queries.InboxFilter(view="todo"))
        total = qs.count()
        at = qs[min(total - 1, max(0, total * 3 // 4))]  # three quarters down the to-do list
        deep[u.pk] = queries.encode_cursor(at)
        state.setdefault("todo_sizes", []).append(total)

    def todo_first(rng):
        u = rng.choice(users)
        return queries.page(queries.conversations_for(u, queries.InboxFilter(view="todo")))

    def todo_deep(rng):
        u = rng.choice(users)
        return queries.page(queries.conversations_for(u, queries.InboxFilter(view="todo")), cursor=deep[u.pk])

    def open_conversation(rng):
        u = rng.choice(users)
        conv = queries.access_conversation(u, rng.choice(conv_ids[u.workspace_id]))
        return queries.history(conv)

    def reply(rng):
        u = rng.choice(users)
        conv = queries.access_conversation(u, rng.choice(conv_ids[u.workspace_id]))
        return actions.do_reply(conv, author=u, text="ご連絡ありがとうございます。確認いたします。 Thanks, we are on it.")

    def search(word):
        def run(rng):
            u = rng.choice(users)
            return queries.page(queries.conversations_for(u, queries.InboxFilter(view="all", q=word)))

        return run

    ops = {"todo list, first page": todo_first, "todo list, deep cursor page": todo_deep,
           "open conversation": open_conversation, "reply": reply}
    for lang, words in SEARCH_WORDS.items():
        for word in words:
            ops[f"search {word!r} ({lang})"] = search(word)
    if state.get("big"):
        big_user = users[0]

        def open_big(rng):
            conv = queries.access_conversation(big_user, state["big"])
            return queries.history(conv)

        ops["open conversation of 10,000 messages"] = open_big
    return ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="an empty (or previously filled) PostgreSQL database")
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10,000 conversations")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--samples", type=int, default=100, help="calls with 1 client, per operation")
    parser.add_argument("--samples-per-client", type=int, default=6, help="calls per client when concurrent")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the list and search queries")
    args = parser.parse_args()
    n = 10_000 if args.quick else args.conversations

    with contextlib.ExitStack() as stack:
        url = args.database_url
        if not url:
            from pgcluster import throwaway_postgres

            url = stack.enter_context(throwaway_postgres())
            progress("started a throw-away PostgreSQL cluster")
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("MADOGUCHI_DATA_DIR", tempfile.mkdtemp(prefix="madoguchi-bench."))
        os.environ["DJANGO_SETTINGS_MODULE"] = "madoguchi.config.settings"
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        if connection.vendor != "postgresql":
            raise SystemExit("this benchmark runs on PostgreSQL")
        call_command("migrate", verbosity=0)
        state = fill(n, random.Random(42))
        if "big" not in state:
            from madoguchi.inbox.models import Conversation

            big = Conversation.objects.filter(message_count=BIG_CONVERSATION_MESSAGES).values_list("id", flat=True).first()
            state["big"] = big
        ops = operations(state)
        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            version = cur.fetchone()[0].split(" on ")[0]
        print(f"\n{n:,} conversations ({n * MESSAGES_PER_CONVERSATION:,} messages), {WORKSPACES} workspaces, "
              f"to-do list sizes {state['todo_sizes']}; {version}; {os.cpu_count()} CPUs")
        if args.explain:
            explain(state)
        print(f"{'operation':45} {'1 client p50/p95 ms':>22} {f'{args.clients} clients p50/p95 ms':>24}")
        for name, op in ops.items():
            one = timed(op, args.samples, 1, seed=1)
            many = timed(op, args.samples_per_client, args.clients, seed=2) if args.clients > 1 else [0.0]
            print(f"{name:45} {pct(one, 50):10.1f} / {pct(one, 95):7.1f}  {pct(many, 50):11.1f} / {pct(many, 95):7.1f}", flush=True)
        connection.close()


def explain(state: dict) -> None:
    from django.db import connection

    from madoguchi.inbox import queries

    user = state["cast"][0][3][0]
    cases = {"todo first page": queries.InboxFilter(view="todo")}
    for words in SEARCH_WORDS.values():
        for word in words:
            cases[f"search {word}"] = queries.InboxFilter(view="all", q=word)
    for name, f in cases.items():
        qs = queries.conversations_for(user, f)[:51]
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            print(f"-- {name}\n" + "\n".join(r[0] for r in cur.fetchall()))


if __name__ == "__main__":
    main()
