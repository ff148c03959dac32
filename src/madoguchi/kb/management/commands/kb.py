"""`madoguchi kb import FILE` / `kb export [FILE]` / `kb embed` / `kb index-conversations`."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from madoguchi.accounts.models import Workspace
from madoguchi.kb import actions
from madoguchi.kb.models import ArticleStatus


class Command(BaseCommand):
    help = (
        "Knowledge base: `kb import FILE` (JSON Lines or CSV with external_id, title/question,"
        " body/answer, category, language; idempotent on external_id), `kb export [FILE]`,"
        " `kb embed` (compute missing vectors now instead of in the worker),"
        " `kb index-conversations` (make every resolved conversation a similar-conversation"
        " suggestion, for conversations from before the worker indexed them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("verb", choices=["import", "export", "embed", "index-conversations"])
        parser.add_argument("file", nargs="?", default="-")
        parser.add_argument("--workspace", help="workspace name or slug (default: the only one)")
        parser.add_argument("--status", default=ArticleStatus.PUBLISHED, choices=ArticleStatus.values)
        parser.add_argument("--format", choices=["jsonl", "csv"], default=None)

    def _workspace(self, name: str | None) -> Workspace:
        if name:
            ws = Workspace.objects.filter(name=name).first() or Workspace.objects.filter(slug=name).first()
            if ws is None:
                raise CommandError(f"no workspace named {name}")
            return ws
        workspaces = list(Workspace.objects.all()[:2])
        if len(workspaces) != 1:
            raise CommandError("say which workspace with --workspace NAME")
        return workspaces[0]

    def handle(self, *args: object, **opts: object) -> None:
        ws = self._workspace(opts["workspace"])  # type: ignore[arg-type]
        verb, file = str(opts["verb"]), str(opts["file"])
        if verb == "import":
            self._import(ws, file, str(opts["status"]))
        elif verb == "export":
            self._export(ws, file, opts["format"])  # type: ignore[arg-type]
        elif verb == "index-conversations":
            from madoguchi.kb.tasks import embed_conversations

            written = actions.do_backfill_resolved_conversations(ws)
            embedded = embed_conversations.call(limit=1_000_000)["embedded"] if written else 0
            self.stdout.write(f"indexed {written} resolved conversations, embedded {embedded}")
        else:
            from madoguchi.kb.tasks import embed_articles

            result = embed_articles.call(ws.pk)
            self.stdout.write(f"embedded {result['embedded']} of {result['total']} published articles")

    def _import(self, ws: Workspace, file: str, status: str) -> None:
        if file == "-":
            data, name = sys.stdin.buffer.read(), ""
        else:
            path = Path(file)
            if not path.is_file():
                raise CommandError(f"no such file: {file}")
            data, name = path.read_bytes(), path.name
        rows = list(actions.parse_rows(data, name))
        total = len(rows)
        err = self.stderr

        def progress(n: int) -> None:
            if n == total or n % 50 == 0:
                width = 30
                done = width * n // max(total, 1)
                err.write(f"\r[{'#' * done}{'.' * (width - done)}] {n}/{total}", ending="")
                err.flush()

        result = actions.do_import(ws, rows, status=status, progress=progress)
        err.write("")
        for line, message in result.errors:
            err.write(f"line {line}: {message}")
        self.stdout.write(
            f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, errors {len(result.errors)}"
        )
        if result.created or result.updated:
            self.stdout.write("keyword search is ready now; semantic vectors are computed by the worker (or `madoguchi kb embed`)")

    def _export(self, ws: Workspace, file: str, fmt: str | None) -> None:
        fmt = fmt or ("csv" if file.endswith(".csv") else "jsonl")
        out = sys.stdout if file == "-" else open(file, "w", encoding="utf-8", newline="")  # noqa: SIM115
        try:
            if fmt == "csv":
                writer = csv.DictWriter(out, fieldnames=actions.FIELDS)
                writer.writeheader()
                for row in actions.export_rows(ws):
                    writer.writerow(row)
            else:
                for row in actions.export_rows(ws):
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
        finally:
            if out is not sys.stdout:
                out.close()
