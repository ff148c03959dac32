"""Quoted history and signatures are folded away in the conversation, and kept in storage."""

from __future__ import annotations

import pytest

from madoguchi.connectors.email import inbound
from madoguchi.connectors.email.quoting import fold
from madoguchi.inbox.models import Message

NEW = "返品の件、よろしくお願いします。\n佐藤"


def head(text: str) -> str:
    at = fold(text)
    return text if at is None else text[:at]


@pytest.mark.parametrize(
    "history",
    [
        "On Mon, Nov 23, 2026 at 9:00 AM Acme Support <support@acme.example> wrote:\n> ご連絡ありがとうございます。",
        "On Mon, Nov 23, 2026 at 9:00 AM Acme Support Team Long Name <\nsupport@acme.example> wrote:\n> hi",
        "2026/11/23 9:00, Acme Support wrote:\n> hi",
        "Acme サポートさんは書きました:\n> ご連絡ありがとうございます。",
        "2026年11月23日(月) 9:00 Acme サポート <support@acme.example>:\n> ご連絡ありがとうございます。",
        "-----Original Message-----\nFrom: Acme <support@acme.example>\nSubject: Re: 返品",
        "----- 元のメッセージ -----\n差出人: Acme <support@acme.example>",
        "________________________________\n差出人: Acme サポート\n送信日時: 2026年11月23日 9:00",
        "> ご連絡ありがとうございます。\n> 返品を承りました。\n>",
        "-- \n佐藤 結衣\n090-0000-0000",
        "--\n佐藤 結衣",
    ],
)
def test_the_new_part_ends_where_history_or_signature_begins(history: str) -> None:
    text = f"{NEW}\n\n{history}\n"
    assert head(text) == NEW


def test_a_reply_written_between_quoted_lines_is_not_folded() -> None:
    text = "> 注文番号は？\n12345 です。\n> お届け先は？\n東京都です。"
    assert fold(text) is None


def test_a_mail_that_is_only_a_quote_or_has_nothing_to_fold_shows_whole() -> None:
    assert fold("> only quoted\n> lines") is None
    assert fold("返品したいです。\nOn the other hand, I wrote: nothing.") is None
    assert fold("") is None


def test_a_signature_after_a_trailing_quote_folds_both() -> None:
    text = f"{NEW}\n\n> 以前のメール\n\n-- \n佐藤"
    assert head(text) == NEW


def test_a_received_mail_stores_the_split_point_and_the_whole_text(cast, mailbox) -> None:
    raw = (
        "From: 佐藤 ゆい <yui@example.com>\r\nTo: support@acme.example\r\nSubject: Re: 返品\r\n"
        "Message-ID: <fold1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{NEW}\r\n\r\n2026年11月23日(月) 9:00 Acme <support@acme.example>:\r\n> 承りました。\r\n"
    ).encode()
    message = Message.objects.get(pk=inbound.receive(mailbox, raw).message_id)
    assert "> 承りました。" in message.text  # kept in storage
    assert message.text[: message.raw["fold"]["at"]] == NEW


def test_the_conversation_shows_the_quote_folded_behind_a_toggle(cast, mailbox, client_for) -> None:
    raw = (
        "From: Yui <yui@example.com>\r\nTo: support@acme.example\r\nSubject: Re: 返品\r\n"
        "Message-ID: <fold2@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Thanks!\r\n\r\nOn Mon, Nov 23, 2026 at 9:00 AM Acme <support@acme.example> wrote:\r\n"
        "> Your return is accepted.\r\n"
    ).encode()
    message = Message.objects.get(pk=inbound.receive(mailbox, raw).message_id)
    page = client_for(cast.agent).get(f"/inbox/c/{message.conversation_id}/").content.decode()
    shown, _, folded = page.partition('<details class="quoted">')
    assert "Thanks!" in shown.split(f'id="m{message.pk}"')[1]
    assert "Your return is accepted." in folded.split("</details>")[0]
    assert "Your return is accepted." not in shown.split(f'id="m{message.pk}"')[1]
