"""Signal words for triage, Japanese and English, written for this project.

Each signal is matched with the same automaton as listening rules (normalized text, Latin words
on boundaries), so 「つながらない」 and 「ツナガラナイ」 are one term. The keyword-rule baseline
in `triage.baseline` uses these alone; the shipped classifier uses them as extra features.
"""

from __future__ import annotations

SIGNALS: dict[str, tuple[str, ...]] = {
    # Service down: the most common reason a post needs an answer now.
    "outage": (
        "outage", "outages", "down", "is down", "not working", "no service", "no signal", "no internet",
        "no connection", "no network", "internet out", "internet is out", "cut off", "offline",
        "502", "503", "bad gateway", "crashed", "went down", "keeps dropping", "dropped calls",
        "障害", "通信障害", "繋がらない", "つながらない", "圏外", "不通", "落ちてる", "切れる", "切れた",
        "復旧", "エラー", "メンテナンス", "通話できない", "ログインできない", "使えない",
    ),
    "safety": (
        "fire", "smoke", "smoking", "burn", "burned", "burnt", "explode", "exploded", "injury", "injured",
        "hurt", "unsafe", "not safe", "dangerous", "threatening", "threatened", "stranded", "hair in",
        "medicines", "hygiene", "sick", "dying", "emergency",
        "発火", "煙", "焦げ", "火事", "怪我", "けが", "危ない", "危険", "怖い", "膨らん", "異物", "腹痛",
        "お腹痛い", "暴言", "病院", "110番", "警察",
    ),
    "legal": (
        "lawyer", "attorney", "sue", "suing", "lawsuit", "legal", "court", "legal claim", "fraud",
        "scam", "cheat", "cheating", "crook",
        "弁護士", "訴え", "訴える", "裁判", "消費者センター", "損害賠償", "詐欺", "法的", "クーリングオフ",
    ),
    "cancel": (
        "cancel my", "cancel the account", "cancel my account", "switch to", "switching", "changing banks",
        "never again", "will never", "look for new", "dropping", "not renewing", "make the switch",
        "sticking with",
        "解約", "乗り換え", "やめます", "もう使わない", "他社",
    ),
    "security": (
        "hacked", "hack", "stole", "stolen", "theft", "leak", "unauthorized", "password", "locked",
        "不正", "乗っ取り", "流出", "盗まれ", "凍結", "身に覚えのない", "紛失",
    ),
    "anger": (
        "wtf", "wth", "damn", "hell", "shit", "fuck", "fucking", "sucks", "suck", "trash", "worst",
        "ridiculous", "pathetic", "unacceptable", "terrible", "horrible", "appalling", "disgusting",
        "incompetent", "!!!",
        "ふざけるな", "いい加減", "最悪", "ひどい", "限界", "なんなの", "何度目", "ありえない", "ムカつく",
        "最低", "我慢",
    ),
    "repeat": (
        "again", "still", "every time", "times", "2nd time", "3rd time", "keeps", "keep getting", "for days",
        "for weeks", "weeks", "how many times", "once again",
        "また", "何度も", "何回", "毎回", "まだ", "連続", "ずっと", "回目", "日目",
    ),
    "question": (
        "?", "how do i", "how to", "how can i", "can i", "is there", "is it", "does", "do you", "when will",
        "what is", "where", "why", "any idea", "anyone know",
        "?", "ですか", "ますか", "でしょうか", "教えて", "どうすれば", "どうしたら", "いつ", "どこで",
        "何時", "できますか",
    ),
    "request": (
        "please", "pls", "plz", "kindly", "could you", "can you", "would like", "i need", "dm me",
        "check dm", "add", "help me", "i want", "refund", "call back", "callback",
        "ください", "してほしい", "ほしいです", "お願い", "至急", "対応して", "止めて", "確認お願い",
    ),
    "thanks": (
        "thank you", "thanks", "love", "great", "amazing", "awesome", "excellent", "best", "lovely",
        "superb", "impressive", "fantastic", "enjoyed", "appreciated", "cheers", "kudos",
        "ありがとう", "感謝", "助かった", "助かる", "助かって", "最高", "便利", "神対応", "美味しい",
        "おいしい", "快適", "丁寧", "親切", "早い",
    ),
    "spam": (
        "free", "giveaway", "win", "winner", "click", "promo", "discount", "offer", "follow back",
        "副業", "稼げ", "当選", "プレゼント", "無料", "格安", "今すぐ", "クリック", "フォロバ", "拡散希望",
        "相互フォロー", "仮想通貨", "資産", "配布", "キャンペーン",
    ),
    "negative": (
        "bad", "broken", "broke", "issue", "issues", "problem", "problems", "error", "fail", "failed",
        "late", "delay", "delayed", "missing", "wrong", "disappointed", "disappointing", "annoying",
        "frustrating", "poor", "slow", "charged", "overcharged", "never", "not", "no", "can't", "cant",
        "won't", "doesn't", "didn't",
        "遅い", "遅すぎ", "届かない", "届いてません", "できない", "来なかった", "間違", "高すぎ", "おかしい",
        "困って", "困った", "不安", "汚", "割れ", "潰れ", "傷", "しつこい", "面倒", "わかりにくい", "待た",
    ),
}

# Urgency levels: 0 low, 1 medium, 2 high. The signals that make a post high on their own.
HIGH_SIGNALS = ("outage", "safety", "legal", "cancel", "security")
MEDIUM_SIGNALS = ("anger", "repeat", "negative")
