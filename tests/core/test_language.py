"""Which language a visitor writes in (``core/language.py``): Chinese or English."""

from __future__ import annotations

import pytest

from appliance.core.language import detect, normalize


@pytest.mark.parametrize("text", ["我要转人工", "你好", "请帮我转接客服", "請幫我轉接客服", "我的card被冻结了",
                                  "PIN码忘了怎么办", "㐀", "银行卡 123"])
def test_any_chinese_character_makes_it_chinese(text: str) -> None:
    assert detect(text) == "zh"
    assert detect(text, fallback="en") == "zh"


@pytest.mark.parametrize("text", ["I want to talk to a person", "hello", "Café au lait", "PIN 1234", "ok"])
def test_latin_letters_without_chinese_are_english(text: str) -> None:
    assert detect(text) == "en"
    assert detect(text, fallback="zh") == "en"  # the text itself decides first


@pytest.mark.parametrize("text", ["12345", "？？", "!!!", "", "   ", "😀👍", "+86 138 0000 0000"])
def test_text_without_letters_keeps_the_conversations_language(text: str) -> None:
    assert detect(text, fallback="zh") == "zh"
    assert detect(text, fallback="en") == "en"
    assert detect(text) == "en"
    assert detect(text, fallback="fr") == "en"  # only the two languages the product speaks


@pytest.mark.parametrize(("tag", "expected"), [
    ("zh", "zh"), ("zh-CN", "zh"), ("zh-Hant-TW", "zh"), ("ZH-cn", "zh"), (" zh ", "zh"),
    ("en", "en"), ("en-GB", "en"), ("EN-us", "en"),
    ("fr", None), ("de-DE", None), ("", None), (None, None), ("  ", None),
])
def test_browser_language_tags(tag: str | None, expected: str | None) -> None:
    assert normalize(tag) == expected
