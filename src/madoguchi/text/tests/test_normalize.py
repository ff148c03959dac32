from madoguchi.text.normalize import detect_language, normalize, search_tokens


def test_width_and_kana_forms_normalize_alike():
    assert normalize("アイフォン") == normalize("ｱｲﾌｫﾝ") == normalize("あいふぉん")
    assert normalize("ＡＢＣ１２３") == "abc123"


def test_two_character_japanese_words_are_findable():
    doc = set(search_tokens("商品を返品したいのですが、解約もお願いします"))
    assert {"返品", "解約"} <= doc


def test_latin_words_are_whole_words():
    assert search_tokens("Refund my ORDER, please!") == ["refund", "my", "order", "please"]
    assert "au" not in search_tokens("August")


def test_query_tokens_are_a_subset_of_document_tokens_for_a_substring():
    doc = set(search_tokens("ログインできません。パスワードを忘れました"))
    assert set(search_tokens("パスワード")) <= doc


def test_language_guess():
    assert detect_language("返品したい") == "ja"
    assert detect_language("I want a refund") == "en"
    assert detect_language("123") == ""
