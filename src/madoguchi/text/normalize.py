"""Text normalization and search tokens that work on Japanese without spaces and on English.

`normalize`: NFKC (full-width Latin and half-width katakana become their canonical forms),
case folding, and hiragana folded to katakana so 「あいふぉん」「アイフォン」「ｱｲﾌｫﾝ」 compare equal.

`search_tokens`: Latin-script and digit runs become words; runs of Japanese/Chinese script
become overlapping character bigrams. Bigrams find two-character words such as 返品 or 解約,
which trigram indexes cannot, and need no dictionary at query time, so a query and a
document always tokenize alike.
"""

from __future__ import annotations

import re
import unicodedata

_HIRA_START, _HIRA_END = 0x3041, 0x3096
_KANA_OFFSET = 0x60

# Japanese/Chinese scripts: hiragana, katakana (+ long vowel mark), CJK ideographs, iteration marks.
_CJK = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006"
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_RE = re.compile(rf"[{_CJK}]")


# One translate table: str.translate runs in C, several times faster than a per-character loop, and
# listening normalizes every post of a firehose.
_HIRA_TO_KATA = {c: c + _KANA_OFFSET for c in range(_HIRA_START, _HIRA_END + 1)}


def hira_to_kata(text: str) -> str:
    return text.translate(_HIRA_TO_KATA)


def normalize(text: str) -> str:
    """NFKC, case-folded, hiragana as katakana."""
    return hira_to_kata(unicodedata.normalize("NFKC", text).casefold())


def is_cjk_run(token: str) -> bool:
    return bool(_CJK_RE.match(token))


def search_tokens(text: str) -> list[str]:
    """Tokens for indexing and querying: Latin words, CJK character bigrams (unigram if alone)."""
    tokens: list[str] = []
    for run in _TOKEN_RE.findall(normalize(text)):
        if is_cjk_run(run):
            if len(run) == 1:
                tokens.append(run)
            else:
                tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            tokens.append(run)
    return tokens


def detect_language(text: str) -> str:
    """A cheap script-based guess: 'ja' if kana or kanji are present, 'en' for Latin, '' if unsure."""
    if re.search(r"[\u3041-\u30ff]", text):
        return "ja"
    if re.search(r"[\u4e00-\u9fff]", text):
        return "ja"
    if re.search(r"[A-Za-z]{2,}", text):
        return "en"
    return ""
