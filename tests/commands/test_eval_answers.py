"""``appliance eval answers``: a whole node with no LLM answers each case; the report says which
replies a visitor would find right (the fact, the document cited first, their language) and which not."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import run_cli

PAGES = {
    "returns.md": "# Returns\n\n## Refund period\n\nYou can return any item within 30 days of delivery. "
                  "Refunds reach your account within 5 business days.\n",
    "退货.md": "# 退货政策\n\n## 退款期限\n\n收货后30天内可以申请退货。"
              "仓库收到退货后，退款会在5个工作日内退回您的账户。\n",
}
CASES = """question,language,documents,facts
How many days do I have to return an item?,en,returns.md,30 days
收货后多少天内可以退货？,zh,退货.md,30天
How many days do I have to return an item for a refund?,en,returns.md,45 days
Which football team won the 1954 world cup?,en,,
一九五四年世界杯的冠军是哪支球队？,zh,,
"""


def write_library(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in PAGES.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


def test_eval_answers_scores_what_the_visitor_gets_in_both_languages(tmp_path: Path) -> None:
    docs = write_library(tmp_path)
    cases = tmp_path / "cases.csv"
    cases.write_text(CASES, encoding="utf-8")
    # A budget too short for the built-in model: every answer is the extractive quote, so what the
    # report says about each case is known.
    result = run_cli("eval", "answers", "--kb", str(docs), "--cases", str(cases), "--chat-model", "small",
                     "--turn-budget", "0.05", timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n_cases"] == 5 and report["chat_model"] == "small" and report["turn_budget_s"] == 0.05
    assert report["sources"] == {"extractive": 3, "no_answer": 2}, report
    # The third case expects a fact the knowledge base does not state: the only one wrong.
    [wrong] = report["wrong"]
    assert wrong["question"] == "How many days do I have to return an item for a refund?"
    assert "30 days" in wrong["reply"] and wrong["cited"][0].endswith("returns.md")
    assert report["citation"] == 1.0 and report["language"] == 1.0 and report["fact"] == round(2 / 3, 3)
    assert report["refused_when_unanswerable"] == 1.0
    assert report["by_language"] == {"en": {"n": 3, "correct": round(2 / 3, 3)}, "zh": {"n": 2, "correct": 1.0}}
    # Progress, one line a case with its mark, goes to stderr.
    marks = re.findall(r"\[(\d)/5\] ([✓✗])", result.stderr)
    assert marks == [("1", "✓"), ("2", "✓"), ("3", "✗"), ("4", "✓"), ("5", "✓")], result.stderr


def test_eval_answers_names_what_is_wrong_with_its_input(tmp_path: Path) -> None:
    docs = write_library(tmp_path)
    cases = tmp_path / "cases.csv"
    cases.write_text("question,language,documents,facts\nWhat now?,fr,returns.md,30 days\n", encoding="utf-8")
    result = run_cli("eval", "answers", "--kb", str(docs), "--cases", str(cases), check=False)
    assert result.returncode != 0 and "row 2: language must be en or zh, not 'fr'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr

    cases.write_text("question,language,documents,facts\nWhat now?,en,returns.md,\n", encoding="utf-8")
    result = run_cli("eval", "answers", "--kb", str(docs), "--cases", str(cases), check=False)
    assert result.returncode != 0 and "give both documents and facts, or neither" in result.stderr

    cases.write_text("question,answer\nWhat now?,Nothing\n", encoding="utf-8")
    result = run_cli("eval", "answers", "--kb", str(docs), "--cases", str(cases), check=False)
    assert result.returncode != 0
    assert "needs a header row with columns question,language,documents,facts" in result.stderr

    cases.write_text(CASES, encoding="utf-8")
    result = run_cli("eval", "answers", "--kb", str(docs), "--cases", str(cases), "--chat-model",
                     str(tmp_path / "missing.gguf"), check=False)
    assert result.returncode != 0 and "missing.gguf: not standard, small or a GGUF file" in result.stderr
