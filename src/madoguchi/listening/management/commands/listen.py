"""`madoguchi listen`: listening rules as YAML, and replaying archives of posts.

    madoguchi listen rules import FILE --workspace NAME [--replace]
    madoguchi listen rules export --workspace NAME
    madoguchi listen replay FILE --workspace NAME [--account ID]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from madoguchi.accounts.models import Workspace
from madoguchi.connectors.models import ChannelAccount
from madoguchi.listening import actions, queries
from madoguchi.listening.replay import ReplaySummary, do_replay


class Command(BaseCommand):
    help = "Listening: import/export rules as YAML, replay a JSON Lines archive of posts"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        rules = sub.add_parser("rules", help="import or export listening rules as YAML")
        rules.add_argument("op", choices=["import", "export"])
        rules.add_argument("file", nargs="?", help="YAML file to import ('-' for standard input)")
        rules.add_argument("--workspace", required=True)
        rules.add_argument("--replace", action="store_true", help="remove rules that are not in the file")
        replay = sub.add_parser("replay", help="ingest a JSON Lines archive of posts like live posts")
        replay.add_argument("file")
        replay.add_argument("--workspace", required=True)
        replay.add_argument("--account", type=int, help="channel account id (default: by each line's channel)")

    def handle(self, *args: object, **opts: object) -> None:
        workspace = Workspace.objects.filter(name=opts["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace named {opts['workspace']!r}")
        if opts["what"] == "rules":
            if opts["op"] == "export":
                self.stdout.write(queries.export_rules(workspace), ending="")
                return
            if not opts["file"]:
                raise CommandError("rules import needs a FILE")
            text = sys.stdin.read() if opts["file"] == "-" else self._read(str(opts["file"]))
            try:
                saved = actions.do_import_rules(workspace, text, replace=bool(opts["replace"]))
            except actions.RuleError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{len(saved)} rules imported")
            return
        account = None
        if opts["account"]:
            account_id = cast(int, opts["account"])  # argparse: type=int
            account = ChannelAccount.objects.filter(pk=account_id, workspace=workspace).first()
            if account is None:
                raise CommandError(f"no channel account {opts['account']} in this workspace")
        path = Path(str(opts["file"]))
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        total = sum(1 for _ in path.open("rb"))
        with path.open(encoding="utf-8", errors="replace") as lines:
            summary = do_replay(workspace, lines, account=account, progress=lambda s: self._progress(s, total))
        self.stderr.write("")
        self._summary(summary)

    def _read(self, name: str) -> str:
        try:
            return Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {name}: {exc}") from None

    def _progress(self, s: ReplaySummary, total: int) -> None:
        done = min(s.lines, total)
        width = 30
        filled = width * done // max(1, total)
        self.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} posts  {s.rate:,.0f}/s", ending=""
        )
        self.stderr.flush()

    def _summary(self, s: ReplaySummary) -> None:
        w = self.stdout.write
        w(f"{s.lines:,} lines in {s.seconds:.1f} s ({s.rate:,.0f} posts/s)")
        w(f"  captured on the stream: {s.captured:,}")
        w(f"  mentions -> conversations: {s.conversations:,}")
        w(f"  dropped (matched no rule): {s.dropped:,}")
        w(f"  already ingested: {s.duplicates:,}")
        w(f"  quarantined: {s.quarantined:,}")
        if s.no_account:
            w(f"  skipped (no channel account for their channel): {s.no_account:,}")
        if s.by_rule:
            w("  by rule: " + ", ".join(f"{k} {v:,}" for k, v in s.by_rule.most_common()))
        if s.by_kind:
            w("  by kind: " + ", ".join(f"{k} {v:,}" for k, v in s.by_kind.most_common()))
