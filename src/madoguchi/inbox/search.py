"""Full-text search over messages, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Both engines index the same pre-analysed tokens (madoguchi.text.normalize.search_tokens), so
Japanese without spaces and English behave the same on either. Lexemes go in verbatim
(FTS5 quoted strings; PostgreSQL array_to_tsvector and a tsquery literal), never re-parsed.
"""

from __future__ import annotations

from django.db import connection
from django.db.models.expressions import RawSQL

from madoguchi.text.normalize import search_tokens

MAX_QUERY_TOKENS = 32


def create_index_sql(vendor: str) -> list[str]:
    if vendor == "sqlite":
        return [
            "CREATE VIRTUAL TABLE IF NOT EXISTS inbox_message_fts USING fts5("
            "tokens, workspace_id UNINDEXED, conversation_id UNINDEXED, "
            "tokenize = 'unicode61 remove_diacritics 0')"
        ]
    return [
        "CREATE TABLE IF NOT EXISTS inbox_message_search ("
        " message_id bigint PRIMARY KEY, workspace_id bigint NOT NULL,"
        " conversation_id bigint NOT NULL, tsv tsvector NOT NULL)",
        "CREATE INDEX IF NOT EXISTS inbox_message_search_tsv ON inbox_message_search USING gin (tsv)",
        "CREATE INDEX IF NOT EXISTS inbox_message_search_conv ON inbox_message_search (conversation_id)",
    ]


def drop_index_sql(vendor: str) -> list[str]:
    table = "inbox_message_fts" if vendor == "sqlite" else "inbox_message_search"
    return [f"DROP TABLE IF EXISTS {table}"]


def _unique(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(t for t in tokens if t))


def index_message(message_id: int, workspace_id: int, conversation_id: int, text: str) -> None:
    """Add or replace one message in the search index."""
    tokens = _unique(search_tokens(text))
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DELETE FROM inbox_message_fts WHERE rowid = %s", [message_id])
            cursor.execute(
                "INSERT INTO inbox_message_fts (rowid, tokens, workspace_id, conversation_id)"
                " VALUES (%s, %s, %s, %s)",
                [message_id, " ".join(tokens), workspace_id, conversation_id],
            )
        else:
            cursor.execute(
                "INSERT INTO inbox_message_search (message_id, workspace_id, conversation_id, tsv)"
                " VALUES (%s, %s, %s, array_to_tsvector(%s::text[]))"
                " ON CONFLICT (message_id) DO UPDATE SET tsv = EXCLUDED.tsv,"
                " conversation_id = EXCLUDED.conversation_id",
                [message_id, workspace_id, conversation_id, tokens],
            )


def move_messages(message_ids: list[int], conversation_id: int) -> None:
    """Keep the index in step when messages move to another conversation."""
    if not message_ids:
        return
    table, key = (
        ("inbox_message_fts", "rowid")
        if connection.vendor == "sqlite"
        else ("inbox_message_search", "message_id")
    )
    placeholders = ",".join(["%s"] * len(message_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET conversation_id = %s WHERE {key} IN ({placeholders})",
            [conversation_id, *message_ids],
        )


def conversation_ids_matching(workspace_id: int, query: str) -> RawSQL | None:
    """A subquery of conversation ids whose messages contain every token of `query`, or None."""
    tokens = _unique(search_tokens(query))[:MAX_QUERY_TOKENS]
    if not tokens:
        return None
    if connection.vendor == "sqlite":
        match = " ".join('"' + t.replace('"', '""') + '"' for t in tokens)
        return RawSQL(
            "SELECT conversation_id FROM inbox_message_fts"
            " WHERE inbox_message_fts MATCH %s AND workspace_id = %s",
            [match, workspace_id],
        )
    tsquery = " & ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in tokens)
    return RawSQL(
        "SELECT conversation_id FROM inbox_message_search"
        " WHERE tsv @@ %s::tsquery AND workspace_id = %s",
        [tsquery, workspace_id],
    )
