"""Signal words for triage, Japanese and English, written for this project.

Each signal is matched with the same automaton as listening rules (normalized text, Latin words
on boundaries), so 「つながらない」 and 「ツナガラナイ」 are one term. The keyword-rule baseline
in `triage.baseline` uses these alone; the shipped classifier uses them as extra features.

Built from the labelling guide (eval/README.md) and the training split only: 40 terms that had
been written with the test posts in view (they fired on test posts and on no training post, and
the guide does not name them) were removed; eval/README.md, "The lexicon, made fair", lists them.
"""

from __future__ import annotations

SIGNALS: dict[str, tuple[str, ...]] = {
    # Service down: the most common reason a post needs an answer now.
    "outage": (
        "outage", "outages", "down", "is down", "not working", "no service", "no signal", "no internet",
        "no connection", "no network", "internet is out", "cut off",
        "502", "503", "bad gateway", "crashed", "went down", "keeps dropping",
        "障害", "通信障害", "繋がらない", "つながらない", "圏外", "不通", "切れる", "切れた",
        "エラー", "通話できない", "使えない",
    ),
    "safety": (
        "fire", "smoke", "smoking", "burn", "burned", "burnt", "explode", "exploded", "injury", "injured",
        "hurt", "unsafe", "dangerous", "threatening", "threatened", "stranded", "hair in",
        "medicines", "hygiene", "emergency",
        "発火", "煙", "焦げ", "火事", "怪我", "けが", "危ない", "危険", "怖い", "膨らん", "異物",
        "暴言", "病院", "警察",
    ),
    "legal": (
        "lawyer", "attorney", "sue", "suing", "lawsuit", "legal", "court", "legal claim", "fraud",
        "scam", "cheat", "cheating", "crook",
        "弁護士", "訴え", "訴える", "裁判", "消費者センター", "損害賠償", "詐欺", "法的", "クーリングオフ",
    ),
    "cancel": (
        "cancel my", "cancel the account", "cancel my account", "switch to", "switching", "changing banks",
        "never again", "will never", "look for new", "dropping", "not renewing", "make the switch",
        "解約", "乗り換え", "やめます", "もう使わない", "他社",
    ),
    "security": (
        "hacked", "hack", "stole", "stolen", "theft", "leak", "unauthorized", "password", "locked",
        "不正", "乗っ取り", "流出", "盗まれ", "身に覚えのない", "紛失",
    ),
    "anger": (
        "wtf", "wth", "damn", "hell", "shit", "fuck", "fucking", "sucks", "suck", "trash", "worst",
        "ridiculous", "unacceptable", "terrible", "appalling", "disgusting",
        "incompetent", "!!!",
        "ふざけるな", "最悪", "ひどい", "限界", "なんなの", "何度目", "ありえない", "ムカつく",
        "最低", "我慢",
    ),
    "repeat": (
        "again", "still", "every time", "times", "keeps", "keep getting", "for days",
        "for weeks", "weeks", "how many times", "once again",
        "また", "何度も", "何回", "毎回", "まだ", "連続", "ずっと", "回目", "日目",
    ),
    "question": (
        "?", "how do i", "how to", "how can i", "can i", "is there", "is it", "does", "do you", "when will",
        "what is", "where", "why", "any idea", "anyone know",
        "?", "ですか", "ますか", "でしょうか", "教えて", "どうすれば", "いつ", "どこで",
        "何時", "できますか",
    ),
    "request": (
        "please", "pls", "plz", "could you", "can you", "would like", "i need", "dm me",
        "check dm", "add", "help me", "i want", "refund", "call back", "callback",
        "ください", "してほしい", "ほしいです", "お願い", "至急", "対応して", "止めて",
    ),
    "thanks": (
        "thank you", "thanks", "love", "great", "amazing", "excellent", "best", "lovely",
        "impressive", "fantastic", "enjoyed", "kudos",
        "ありがとう", "感謝", "助かった", "助かる", "最高", "便利", "神対応", "美味しい",
        "おいしい", "丁寧", "親切", "早い",
    ),
    "spam": (
        "free", "giveaway", "win", "winner", "click", "promo", "discount", "offer", "follow back",
        "副業", "稼げ", "当選", "プレゼント", "無料", "今すぐ", "フォロバ", "拡散希望",
        "相互フォロー", "仮想通貨", "資産", "配布", "キャンペーン",
    ),
    "negative": (
        "bad", "broken", "broke", "issue", "issues", "problem", "problems", "error", "fail", "failed",
        "late", "delay", "delayed", "missing", "wrong", "disappointed", "disappointing", "annoying",
        "poor", "slow", "charged", "overcharged", "never", "not", "no", "can't", "cant",
        "won't", "doesn't", "didn't",
        "遅い", "遅すぎ", "できない", "来なかった", "間違", "高すぎ",
        "不安", "汚", "割れ", "傷", "しつこい", "わかりにくい",
    ),
}

# Added from the urgency table of eval/README.md (its categories, read as a checklist of what an
# agent would call urgent), not from the labelled posts: common English and Japanese ways to say
# each thing. Same matching as above. Two terms that fired on the wrong training posts were
# narrowed ("stuck on the" dropped, 「アレルギー」 to 「アレルギー反応」).
GUIDE_TERMS: dict[str, tuple[str, ...]] = {
    "outage": (
        "service down", "internet down", "internet is down", "wifi down", "wifi is down", "no wifi",
        "network down", "network is down", "power outage", "can't connect", "cannot connect",
        "unable to connect", "won't connect", "lost connection", "connection lost", "no reception",
        "not loading", "won't load", "site is down", "app is down", "servers down", "server down",
        "システム障害", "サービス停止", "接続できない", "通信できない", "電波が入らない", "電波がない",
        "ネットが使えない", "ネットが繋がらない", "サーバーダウン", "ダウンしてる", "全く使えない",
    ),
    "safety": (
        "swollen", "swelling", "overheating", "overheated", "sparks", "sparking", "electric shock",
        "food poisoning", "poisoning", "allergic reaction", "choking", "glass in", "insect in",
        "assault", "assaulted", "harassed", "threat", "threats",
        "発熱", "膨張", "感電", "食中毒", "アレルギー反応", "アレルギーが出", "虫が入", "ガラス片", "脅迫", "脅され",
        "閉じ込め", "立ち往生", "帰れない", "救急", "やけど", "火傷",
    ),
    "legal": (
        "legal action", "small claims", "class action", "consumer protection", "better business bureau",
        "bbb", "ftc", "fcc complaint", "ombudsman", "see you in court", "take you to court",
        "訴訟", "法的措置", "国民生活センター", "消費者庁", "出るところに出", "告訴", "被害届",
    ),
    "security": (
        "compromised", "fraudulent", "unauthorized charge", "unauthorised", "didn't authorize",
        "unknown charge", "identity theft", "phishing", "someone used my", "someone logged into",
        "不正利用", "不正アクセス", "ハッキング", "盗難", "なりすまし", "フィッシング", "勝手に引き落と",
        "身に覚えがない",
    ),
    "cancel": (
        "cancelling my", "canceling my", "cancel my service", "cancel my subscription", "close my account",
        "closing my account", "switching to", "switching providers", "taking my business",
        "done with you",
        "解約します", "解約する", "解約したい", "乗り換えます", "乗り換える", "退会します", "退会したい",
        "二度と使わない", "二度と利用しない", "もう利用しない",
    ),
    "anger": (
        "furious", "angry", "livid", "outraged", "disgusted", "fed up", "sick of", "useless", "garbage",
        "absurd", "infuriating", "disgrace", "shameful",
        "激怒", "腹立つ", "腹が立", "イライラ", "許せない", "許さない", "呆れ", "クソ", "うんざり",
        "いい加減にして", "二度と",
    ),
    "repeat": (
        "called", "multiple times", "several times", "three times", "over and over", "no response",
        "no reply", "still waiting", "haven't heard", "never heard back", "keep calling",
        "何度", "再三", "何日も", "返信がない", "回答がない", "連絡がない", "折り返しがない", "返事がない",
    ),
}
for _name, _terms in GUIDE_TERMS.items():
    SIGNALS[_name] = SIGNALS[_name] + tuple(t for t in _terms if t not in SIGNALS[_name])

# Urgency levels: 0 low, 1 medium, 2 high. The signals that make a post high on their own.
HIGH_SIGNALS = ("outage", "safety", "legal", "cancel", "security")
MEDIUM_SIGNALS = ("anger", "repeat", "negative")
