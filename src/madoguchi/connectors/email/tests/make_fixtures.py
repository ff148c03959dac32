"""Writes the .eml fixtures byte for byte as the mail clients named in each one send them.

Run once (`python make_fixtures.py`); the files are committed. Japanese bytes are produced by
the codecs those clients use, so the fixtures hold exactly the byte sequences that break naive
decoders (CP50220 extensions in ISO-2022-JP, cp932's wave dash, 8-bit headers).
"""

from __future__ import annotations

import base64
import quopri
from pathlib import Path

HERE = Path(__file__).parent / "eml"


def sjis_to_jis(data: bytes) -> bytes:
    """Shift_JIS (cp932) to ISO-2022-JP bytes, the way Outlook (CP50220) writes them."""
    out = bytearray()
    jis = False
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            if jis:
                out += b"\x1b(B"
                jis = False
            out.append(b)
            i += 1
            continue
        s1, s2 = b, data[i + 1]
        i += 2
        if not jis:
            out += b"\x1b$B"
            jis = True
        if s1 >= 0xE0:
            s1 -= 0x40
        j1 = (s1 - 0x81) * 2 + 0x21
        if s2 >= 0x9F:
            j1 += 1
            j2 = s2 - 0x7E
        else:
            j2 = s2 - 0x1F - (1 if s2 >= 0x80 else 0)
        out += bytes((j1, j2))
    if jis:
        out += b"\x1b(B"
    return bytes(out)


def jis(text: str) -> bytes:
    return sjis_to_jis(text.encode("cp932"))


def ew(text: str, charset: str, data: bytes) -> bytes:
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(data) + b"?="


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(crlf(data))


def main() -> None:
    HERE.mkdir(exist_ok=True)

    # Outlook on Windows: ISO-2022-JP label, NEC extension characters inside (CP50220).
    write(
        "iso2022jp_cp50220.eml",
        b"Return-Path: <tanaka@example.co.jp>\n"
        b"From: " + ew("", "ISO-2022-JP", jis("田中 一郎")) + b" <tanaka@example.co.jp>\n"
        b"To: support@acme.example\n"
        b"Subject: " + ew("", "ISO-2022-JP", jis("①返品について㈱アクメ様")) + b"\n"
        b"Date: Mon, 23 Nov 2026 09:15:00 +0900\n"
        b"Message-ID: <000001d9a1b2$c3d4e5f0$@example.co.jp>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: text/plain; charset="iso-2022-jp"\n'
        b"Content-Transfer-Encoding: 7bit\n"
        b"X-Mailer: Microsoft Outlook 16.0\n\n"
        + jis(
            "㈱アクメ御中\n\n先日購入した商品①と②を返品したいです。\n受付は9:00～18:00でしょうか。\n\n田中"
        )
        + b"\n",
    )

    # A Japanese feature phone / older client: Shift_JIS, 8bit, wave dash and half-width kana.
    write(
        "shift_jis.eml",
        b"From: " + ew("", "Shift_JIS", "佐藤 花子".encode("cp932")) + b" <hanako@example.ne.jp>\n"
        b"To: support@acme.example\n"
        b"Subject: " + ew("", "Shift_JIS", "ﾊﾟｽﾜｰﾄﾞ再設定～できません".encode("cp932")) + b"\n"
        b"Date: Sun, 22 Nov 2026 23:01:12 +0900\n"
        b"Message-ID: <sjis.20261122230112@example.ne.jp>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=Shift_JIS\n"
        b"Content-Transfer-Encoding: 8bit\n\n"
        + "ﾊﾟｽﾜｰﾄﾞを忘れました。\n10時～12時に電話をください。\n".encode("cp932"),
    )

    # A Unix mailer: EUC-JP, quoted-printable.
    write(
        "euc_jp_qp.eml",
        b"From: Kenji Ito <kenji@example.org>\n"
        b"To: support@acme.example\n"
        b"Subject: " + ew("", "EUC-JP", "請求書の宛名を変更したい".encode("euc_jp")) + b"\n"
        b"Date: Sat, 21 Nov 2026 12:00:00 +0000\n"
        b"Message-ID: <eucjp-1@example.org>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=EUC-JP\n"
        b"Content-Transfer-Encoding: quoted-printable\n\n"
        + quopri.encodestring(
            "請求書の宛名を株式会社イトウに変更してください。\n".encode("euc_jp")
        ),
    )

    # Gmail: multipart/alternative, UTF-8, split Q encoded-words, encoded display name.
    write(
        "utf8_alternative.eml",
        b"From: =?UTF-8?B?6Yi05pyoIOWkqumDjg==?= <taro.suzuki@gmail.example>\n"
        b"To: Acme Support <support@acme.example>\n"
        b"Subject: =?UTF-8?Q?=E3=83=AD=E3=82=B0=E3=82=A4=E3=83=B3?=\n"
        b" =?UTF-8?Q?=E3=81=A7=E3=81=8D=E3=81=BE=E3=81=9B=E3=82=93?= (error 403)\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0900\n"
        b"Message-ID: <CAB123abc+xyz=@mail.gmail.example>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="000000000000abc"\n\n'
        b"--000000000000abc\n"
        b'Content-Type: text/plain; charset="UTF-8"\n'
        b"Content-Transfer-Encoding: base64\n\n"
        + base64.encodebytes("ログインできません。\nエラー 403 が出ます。\n".encode())
        + b"\n"
        b"--000000000000abc\n"
        b'Content-Type: text/html; charset="UTF-8"\n'
        b"Content-Transfer-Encoding: quoted-printable\n\n"
        + quopri.encodestring(
            '<div dir="ltr">ログインできません。<br>エラー <b>403</b> が出ます。<script>alert(1)</script></div>\n'.encode()
        )
        + b"\n--000000000000abc--\n",
    )

    # Attachments: a PDF, an inline image, RFC 2231 and Outlook-style encoded-word file names.
    pdf = b"%PDF-1.4\n% madoguchi fixture\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
    write(
        "attachment.eml",
        b"From: Mika Kato <mika@example.jp>\n"
        b"To: support@acme.example\n"
        b"Subject: =?UTF-8?B?6aCY5Y+O5pu444KS5re75LuY44GX44G+44GZ?=\n"
        b"Date: Mon, 23 Nov 2026 11:30:00 +0900\n"
        b"Message-ID: <attach-1@example.jp>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="mixed-b"\n\n'
        b"This is a multi-part message in MIME format.\n"
        b"--mixed-b\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n\n"
        + "領収書と画面のスクリーンショットを添付します。\n".encode()
        + b"\n"
        b"--mixed-b\n"
        b'Content-Type: application/pdf; name="=?ISO-2022-JP?B?'
        + base64.b64encode(jis("領収書①.pdf"))
        + b'?="\n'
        b'Content-Disposition: attachment; filename="=?ISO-2022-JP?B?'
        + base64.b64encode(jis("領収書①.pdf"))
        + b'?="\n'
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(pdf) + b"\n"
        b"--mixed-b\n"
        b"Content-Type: image/png\n"
        b"Content-Disposition: inline; filename*=UTF-8''%E7%94%BB%E9%9D%A2.png\n"
        b"Content-ID: <img1@example.jp>\n"
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(png) + b"\n"
        b"--mixed-b--\n",
    )

    # Thunderbird "Forward as attachment": the original mail inside as message/rfc822.
    write(
        "forwarded.eml",
        b"From: Boss <boss@partner.example>\n"
        b"To: support@acme.example\n"
        b"Subject: Fwd: =?UTF-8?B?6YWN6YCB44GM6YGF44KM44Gm44GE44G+44GZ?=\n"
        b"Date: Mon, 23 Nov 2026 12:00:00 +0900\n"
        b"Message-ID: <fwd-1@partner.example>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="fwd-b"\n\n'
        b"--fwd-b\n"
        b"Content-Type: text/plain; charset=UTF-8\n\n"
        + "顧客からの苦情を転送します。対応をお願いします。\n".encode()
        + b"\n"
        b"--fwd-b\n"
        b"Content-Type: message/rfc822\n"
        b"Content-Disposition: attachment\n\n"
        b"From: Customer <angry@example.com>\n"
        b"To: boss@partner.example\n"
        b"Subject: =?UTF-8?B?6YWN6YCB44GM6YGF44KM44Gm44GE44G+44GZ?=\n"
        b"Message-ID: <orig-1@example.com>\n"
        b"Content-Type: text/plain; charset=UTF-8\n\n"
        + "注文から2週間経っても届きません。\n".encode()
        + b"\n"
        b"--fwd-b--\n",
    )

    # Postfix DSN (RFC 3464) for one of our replies.
    write(
        "bounce.eml",
        b"Return-Path: <>\n"
        b"From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)\n"
        b"To: support@acme.example\n"
        b"Subject: Undelivered Mail Returned to Sender\n"
        b"Auto-Submitted: auto-replied\n"
        b"Date: Mon, 23 Nov 2026 13:00:00 +0900\n"
        b"Message-ID: <20261123040000.ABCDEF@mx.acme.example>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status;\n"
        b'\tboundary="dsn-b"\n\n'
        b"--dsn-b\n"
        b"Content-Description: Notification\n"
        b"Content-Type: text/plain; charset=us-ascii\n\n"
        b"I'm sorry to have to inform you that your message could not be delivered.\n\n"
        b"--dsn-b\n"
        b"Content-Description: Delivery report\n"
        b"Content-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.acme.example\n"
        b"Arrival-Date: Mon, 23 Nov 2026 13:00:00 +0900\n\n"
        b"Final-Recipient: rfc822; nobody@example.net\n"
        b"Original-Recipient: rfc822;nobody@example.net\n"
        b"Action: failed\n"
        b"Status: 5.1.1\n"
        b"Remote-MTA: dns; mx.example.net\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown\n\n"
        b"--dsn-b\n"
        b"Content-Description: Undelivered Message Headers\n"
        b"Content-Type: text/rfc822-headers\n\n"
        b"From: Acme Support <support@acme.example>\n"
        b"To: nobody@example.net\n"
        b"Subject: Re: =?utf-8?b?6L+U5ZOB?= [#7]\n"
        b"Message-ID: <mdg-0123456789abcdef0123456789abcdef@acme.example>\n\n"
        b"--dsn-b--\n",
    )

    # An out-of-office reply (RFC 3834 headers, Japanese subject).
    write(
        "auto_reply.eml",
        b"From: =?ISO-2022-JP?B?" + base64.b64encode(jis("山本")) + b"?= <yamamoto@example.co.jp>\n"
        b"To: support@acme.example\n"
        b"Subject: =?ISO-2022-JP?B?" + base64.b64encode(jis("自動応答: 不在のお知らせ")) + b"?=\n"
        b"Auto-Submitted: auto-replied\n"
        b"X-Autoreply: yes\n"
        b"Precedence: bulk\n"
        b"In-Reply-To: <mdg-aaaa@acme.example>\n"
        b"Date: Mon, 23 Nov 2026 14:00:00 +0900\n"
        b"Message-ID: <ooo-1@example.co.jp>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\n\n"
        + jis("11月30日まで不在にしております。")
        + b"\n",
    )

    # Broken MIME: a multipart whose boundary never appears.
    write(
        "malformed.eml",
        b"From: broken@example.com\n"
        b"To: support@acme.example\n"
        b"Subject: broken\n"
        b"Message-ID: <broken-1@example.com>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="never-here"\n\n'
        b"--some-other-boundary\n"
        b"Content-Type: text/plain\n\n"
        b"lost\n",
    )

    # No sender at all (a spam tool or a broken script).
    write(
        "no_from.eml",
        b"To: support@acme.example\nSubject: hello\nMessage-ID: <nofrom@example.com>\n\nbody\n",
    )

    # Mislabelled: declared ISO-8859-1 but Shift_JIS inside; raw UTF-8 8-bit in Subject and From.
    write(
        "misdeclared_8bit_headers.eml",
        b"From: " + "木村 拓".encode() + b" <kimura@example.jp>\n"
        b"To: support@acme.example\n"
        b"Subject: " + "配送先の変更".encode() + b"\n"
        b"Date: Mon, 23 Nov 2026 15:00:00 +0900\n"
        b"Message-ID: <mis-1@example.jp>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=iso-8859-1\n"
        b"Content-Transfer-Encoding: 8bit\n\n"
        + "配送先を大阪の事務所に変更してください。\n".encode("cp932"),
    )

    # A reply in a thread: In-Reply-To and References (oldest first), a conversation token.
    write(
        "reply_with_references.eml",
        b"From: Yui Sato <yui@example.com>\n"
        b"To: support@acme.example\n"
        b"Subject: Re: Re: =?UTF-8?B?6L+U5ZOB?= [#42]\n"
        b"Date: Mon, 23 Nov 2026 16:00:00 +0900\n"
        b"Message-ID: <reply-3@example.com>\n"
        b"In-Reply-To: <mdg-key2@acme.example>\n"
        b"References: <first-1@example.com>\n"
        b"\t<mdg-key1@acme.example> <reply-2@example.com>\n"
        b"\t<mdg-key2@acme.example>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=UTF-8\n"
        b"Content-Transfer-Encoding: 8bit\n\n"
        + "ありがとうございます。\n\n> 返品を受け付けました。\n".encode(),
    )

    # HTML only (a marketing-tool style client), no Message-ID, CP932 labelled as Shift_JIS.
    write(
        "html_only_no_message_id.eml",
        b"From: shop@example.net\n"
        b"To: support@acme.example\n"
        b"Subject: =?Shift_JIS?B?" + base64.b64encode("お問い合わせ".encode("cp932")) + b"?=\n"
        b"Date: Mon, 23 Nov 2026 17:00:00 +0900\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/html; charset=Shift_JIS\n"
        b"Content-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(
            "<html><head><style>p{color:red}</style></head><body><p>在庫はありますか？</p><p>～よろしくお願いします～</p></body></html>".encode(
                "cp932"
            )
        ),
    )


if __name__ == "__main__":
    main()
