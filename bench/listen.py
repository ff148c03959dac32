#!/usr/bin/env python3
"""Listening at firehose scale, on one core: generated posts against generated rules.

    .venv/bin/python bench/listen.py            # 1,000,000 posts, 10,000 keyword rules, 100 accounts
    .venv/bin/python bench/listen.py --quick    # 100,000 posts

Prints: (a) raw multi-pattern matching with the automaton alone (pyahocorasick, and
ahocorasick-rs when it is installed, for comparison), (b) the naive per-keyword loop on a
sample, (c) the full path, i.e. `ingest.actions.do_ingest_posts` on batches of 1,000 posts as a
firehose connector or replay hands them over (validated items, normalize, match, triage, durable
store on SQLite, one transaction per batch), and item by item through `do_ingest` on a sample
for comparison, plus the time to rebuild the
automaton for the whole rule set. Posts are a 50/50 mix of Japanese (20-140 characters) and
English (8-40 words); 1 % carry a rule keyword (0.05 % mention an own account). Runs in a
throw-away data directory.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

EN_WORDS = (
    "the a my your our order phone internet bill refund delivery package app update account support "
    "please help why when how is are was not no still again today yesterday week month service store "
    "flight train bus ticket card payment charge price new old broken slow fast great thanks love hate "
    "waiting minutes hours days customer agent chat call email number code password screen battery "
    "camera music video game car ride driver food coffee pizza box late early missing wrong right "
    "and but so if then because with without from to for on in at by of this that it they we you i"
).split()
JA_WORDS = (
    "注文 荷物 配達 料金 請求 解約 返品 交換 店舗 アプリ 更新 ログイン パスワード 画面 電池 充電 通信 回線 "
    "速度 契約 プラン 窓口 電話 メール 問い合わせ 対応 確認 予約 今日 昨日 明日 先週 まだ また もう すぐ "
    "とても ちょっと 本当に 全然 なんで どうして ありがとう すみません お願いします 困っています 届かない "
    "できない 遅い 早い 高い 安い 便利 最高 最悪 です ます でした ました けど から ので のに が を に は で と も"
).split()


def keyword(rng: random.Random, i: int) -> str:
    """Rule keywords that never occur by chance: made-up product names, Latin or katakana."""
    if i % 2:
        return "zq" + "".join(rng.choice("bcdfghjklmnpstvwxz") + rng.choice("aeiou") for _ in range(3)) + str(i)
    kata = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモラリルレロワン"
    return "".join(rng.choice(kata) for _ in range(4)) + "ー" + "".join(rng.choice(kata) for _ in range(2)) + str(i)


def post_text(rng: random.Random, keywords: list[str], accounts: list[str]) -> str:
    if rng.random() < 0.5:
        text = " ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(8, 40)))
    else:
        target = rng.randint(20, 140)
        parts: list[str] = []
        n = 0
        while n < target:
            w = rng.choice(JA_WORDS)
            parts.append(w)
            n += len(w)
        text = "".join(parts) + "。"
    r = rng.random()
    if r < 0.0005:
        text = f"{rng.choice(accounts)} {text}"
    elif r < 0.01:
        kw = rng.choice(keywords)
        cut = rng.randint(0, len(text))
        text = f"{text[:cut]} {kw} {text[cut:]}"
    return text


def chunks(seed: int, total: int, size: int, keywords: list[str], accounts: list[str]):
    rng = random.Random(seed)
    done = 0
    while done < total:
        n = min(size, total - done)
        yield [post_text(rng, keywords, accounts) for _ in range(n)]
        done += n


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} posts/s  ({seconds:.1f} s for {n:,})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--naive-posts", type=int, default=1_000)
    parser.add_argument("--full-posts", type=int, default=None, help="posts through the full path (default: --posts)")
    parser.add_argument("--per-item-posts", type=int, default=50_000, help="posts through do_ingest one by one, for comparison")
    parser.add_argument("--quick", action="store_true", help="100,000 posts")
    args = parser.parse_args()
    if args.quick:
        args.posts = 100_000
    full_posts = args.full_posts or args.posts

    tmp = tempfile.mkdtemp(prefix="mdg-bench-listen-")
    os.environ["MADOGUCHI_DATA_DIR"] = tmp
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "madoguchi.config.settings")
    import django

    django.setup()
    import ahocorasick
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from madoguchi.accounts import actions as account_actions
    from madoguchi.accounts.models import Brand
    from madoguchi.connectors.base import InboundAuthor, InboundItem
    from madoguchi.connectors.models import ChannelAccount
    from madoguchi.ingest.actions import do_ingest, do_ingest_posts
    from madoguchi.ingest.models import Post
    from madoguchi.listening import actions as listening
    from madoguchi.listening.matcher import Matcher, normalize_term
    from madoguchi.listening.models import ListeningRule
    from madoguchi.text.normalize import normalize

    call_command("migrate", verbosity=0)
    ws = account_actions.do_create_workspace("Bench")
    brand = Brand.objects.get(workspace=ws)
    account = ChannelAccount.objects.create(workspace=ws, brand=brand, kind="x", name="firehose")

    rng = random.Random(1)
    keywords = [keyword(rng, i) for i in range(args.rules)]
    accounts = [f"@brand_{i:03d}" for i in range(args.accounts)]
    ListeningRule.objects.bulk_create(
        [ListeningRule(workspace=ws, brand=brand, name=f"kw{i}", any_of=[kw], none_of=["求人"] if i % 10 == 0 else [])
         for i, kw in enumerate(keywords)]
        + [ListeningRule(workspace=ws, brand=brand, name=f"acct{i}", accounts=[a]) for i, a in enumerate(accounts)],
        batch_size=2000,
    )
    print(f"listening bench: {args.posts:,} posts, {args.rules:,} keyword rules, {args.accounts} accounts, one process")

    t = time.perf_counter()
    specs = listening._specs(ws.pk)
    t_fetch = time.perf_counter() - t
    t = time.perf_counter()
    matcher = Matcher.build(specs)
    t_build = time.perf_counter() - t
    print(f"rule rebuild: {t_fetch + t_build:.2f} s ({t_fetch:.2f} s reading {len(specs):,} rules, {t_build:.2f} s compiling)")

    terms = sorted({normalize_term(k) for k in keywords + accounts})
    raw = ahocorasick.Automaton()
    for i, term in enumerate(terms):
        raw.add_word(term, i)
    raw.make_automaton()
    try:
        import ahocorasick_rs
    except ImportError:
        ahocorasick_rs = None
    rs = ahocorasick_rs.AhoCorasick(terms) if ahocorasick_rs else None

    t_norm = t_raw = t_rs = t_match = t_match_many = 0.0
    hits = hits_many = 0
    for chunk in chunks(7, args.posts, 100_000, keywords, accounts):
        t = time.perf_counter()
        normed = [normalize(x) for x in chunk]
        t_norm += time.perf_counter() - t
        t = time.perf_counter()
        for x in normed:
            for _ in raw.iter(x):
                pass
        t_raw += time.perf_counter() - t
        if rs is not None:
            t = time.perf_counter()
            for x in normed:
                rs.find_matches_as_indexes(x, overlapping=True)
            t_rs += time.perf_counter() - t
        t = time.perf_counter()
        for x in normed:
            if matcher.match(x, language="", channel="x", normalized=True):
                hits += 1
        t_match += time.perf_counter() - t
        # What the batch path does: batches of 1,000 posts normalized and scanned in one call each.
        for start in range(0, len(normed), 1_000):
            batch = normed[start : start + 1_000]
            t = time.perf_counter()
            found = matcher.terms_in_many(batch)
            hits_many += sum(1 for terms in found.values() if matcher.rules_hit(terms, language="", channel="x"))
            t_match_many += time.perf_counter() - t
    n = args.posts
    print(f"normalize (NFKC, casefold, kana), per post  {rate(n, t_norm)}")
    print(f"(a) raw automaton, pyahocorasick           {rate(n, t_raw)}")
    if rs is not None:
        print(f"(a) raw automaton, ahocorasick-rs          {rate(n, t_rs)}")
    print(f"our matching step, per post                {rate(n, t_match)}  = {t_raw / t_match:.0%} of (a); {hits:,} posts matched")
    print(f"our matching step, batches of 1,000        {rate(n, t_match_many)}  = {t_raw / t_match_many:.0%} of (a); {hits_many:,} posts matched")

    sample = next(chunks(7, args.naive_posts, args.naive_posts, keywords, accounts))
    sample = [normalize(x) for x in sample]
    norm_keywords = [normalize_term(k) for k in keywords]
    t = time.perf_counter()
    for x in sample:
        for kw in norm_keywords:
            if kw in x:
                pass
    t_naive = time.perf_counter() - t
    print(f"(b) naive per-keyword loop ({len(sample):,} posts)     {rate(len(sample), t_naive)}  ({t_match / n * len(sample) and t_naive / len(sample) / (t_match / n):,.0f}x slower than ours)")

    listening.forget_compiled_rules()
    listening.matcher_for(ws.pk)  # compiled once, as a running worker would have it
    now = timezone.now()

    def items_of(chunk: list[str], first: int) -> list[InboundItem]:
        # What a firehose connector hands over: validated items (pydantic), counted in the path.
        return [
            InboundItem(
                external_id=str(first + k),
                author=InboundAuthor(external_id=f"u{(first + k) % 50_000}", handle=f"u{(first + k) % 50_000}", followers=(first + k) % 5000),
                text=text,
                created_at=now,
                public=True,
                route="stream",
            )
            for k, text in enumerate(chunk)
        ]

    created = 0
    t_full = 0.0
    i = 0
    for chunk in chunks(11, full_posts, 1_000, keywords, accounts):
        t = time.perf_counter()
        results = do_ingest_posts(account, items_of(chunk, i))
        t_full += time.perf_counter() - t
        created += sum(r.created for r in results)
        i += len(chunk)
    stored = Post.objects.filter(workspace=ws).count()
    print(f"(c) full path: do_ingest_posts, SQLite      {rate(full_posts, t_full)}; {created:,} created ({stored:,} posts stored)")

    # The item-by-item path on a sample, for comparison (new ids, same generator).
    per_item = min(full_posts, args.per_item_posts)
    created = 0
    t_one = t_stored = 0.0
    i = 10_000_000
    for chunk in chunks(13, per_item, 1_000, keywords, accounts):
        t = time.perf_counter()
        with transaction.atomic():
            for item in items_of(chunk, i):
                t_post = time.perf_counter()
                if do_ingest(account, item).created:
                    created += 1
                    t_stored += time.perf_counter() - t_post
        t_one += time.perf_counter() - t
        i += len(chunk)
    print(f"    item by item (do_ingest, {per_item:,} posts)  {rate(per_item, t_one)}; storing {created:,}: {t_stored / max(1, created) * 1000:.2f} ms each")
    print(f"data directory (delete when done): {tmp}")


if __name__ == "__main__":
    main()
