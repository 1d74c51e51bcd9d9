"""Which language a visitor writes in: Chinese or English, the two the product speaks."""

from __future__ import annotations

from appliance.core.types import Language


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x3000 <= code <= 0x303F


def detect(text: str, fallback: str = "") -> Language:
    """``zh`` when the text has Chinese characters, ``en`` when it has Latin letters and no
    Chinese, else ``fallback`` (the conversation's language), else ``en``."""
    if any(_is_cjk(c) for c in text):
        return "zh"
    if any(c.isascii() and c.isalpha() for c in text):
        return "en"
    return "zh" if fallback == "zh" else "en"


def normalize(tag: str | None) -> Language | None:
    """A browser language tag (``zh-CN``, ``en-GB``) as one of ours; None when unknown."""
    if not tag:
        return None
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return "zh"
    if tag.startswith("en"):
        return "en"
    return None
