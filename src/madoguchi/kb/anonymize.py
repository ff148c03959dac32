"""Remove what identifies a customer from text that becomes a public FAQ.

Emails, URLs with query strings, phone numbers (Japanese and international), order/ticket
numbers, @handles, the contact's known names, and names in salutations (佐藤様, Dear John)
are replaced by neutral placeholders.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])(?:\+\d{1,3}[\s-]?)?(?:\(?0?\d{1,4}\)?[\s-]?)\d{2,4}[\s-]?\d{3,4}(?![\w-])")
_ORDER = re.compile(
    r"(?:(?:注文|オーダー|受付|予約|会員|お客様|問い合わせ|問合せ)(?:番号|ID|No\.?)|order\s*(?:number|no\.?|id|#)|ticket\s*(?:number|no\.?|#)|#)"
    r"\s*[:：#]?\s*[A-Za-z0-9-]{3,}",
    re.IGNORECASE,
)
_LONG_CODE = re.compile(r"\b(?=[A-Za-z0-9-]*\d)[A-Za-z0-9]{2,}-?\d{5,}[A-Za-z0-9-]*\b|\b\d{6,}\b")
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,}")
_JA_HONORIFIC = re.compile(r"(?<![おご\u4e00-\u9fff\u30a0-\u30ffー])[\u4e00-\u9fff\u30a0-\u30ffー]{1,6}(?=(?:様|さま|さん|殿))")
_JA_KEEP = {"皆", "客", "利用者", "担当者", "会員", "ユーザー"}
_EN_SALUTATION = re.compile(r"\b(Dear|Hi|Hello|Hey|Thanks|Thank you),?\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?", re.UNICODE)


# The placeholders stay in a draft FAQ until someone rewrites them, so they are written in the
# article's language (a Japanese reader should not meet "[order number]").
_PLACEHOLDERS = {
    "": {"email": "[email]", "order": "[order number]", "phone": "[phone]", "number": "[number]", "name": "[name]"},
    "ja": {"email": "［メールアドレス］", "order": "［注文番号］", "phone": "［電話番号］", "number": "［番号］", "name": "［お名前］"},
}


def anonymize(text: str, names: list[str] = (), *, lang: str = "") -> str:  # type: ignore[assignment]
    """`text` without emails, phone and order numbers, handles and the given names; the
    placeholders in `lang` when known (English otherwise)."""
    ph = _PLACEHOLDERS.get(lang, _PLACEHOLDERS[""])
    text = _EMAIL.sub(ph["email"], text)
    text = _ORDER.sub(ph["order"], text)
    text = _PHONE.sub(ph["phone"], text)
    text = _LONG_CODE.sub(ph["number"], text)
    text = _HANDLE.sub(ph["name"], text)
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True):
        text = re.sub(re.escape(name), ph["name"], text, flags=re.IGNORECASE)
        for part in name.split():
            if len(part) >= 2:
                text = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", ph["name"], text, flags=re.IGNORECASE)
    text = _JA_HONORIFIC.sub(lambda m: m.group(0) if m.group(0) in _JA_KEEP else "○○", text)
    text = _EN_SALUTATION.sub(lambda m: m.group(1) + ",", text)
    return text
