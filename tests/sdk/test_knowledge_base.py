"""The SDK's knowledge base from paths: files and folders ingested with the built-in embedding
model, searched with hybrid retrieval, cited by the agent, in English and Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import AgentBuilder, Conversation, LocalKnowledgeBase
from appliance.core.errors import InputError

CARDS_ZH = """# 银行卡挂失

银行卡丢失后，请立即拨打客服热线 95588 办理挂失，挂失后卡片立即冻结，补办新卡需要三个工作日。
"""
REFUNDS_EN = """# Refunds

A refund takes five working days to reach the card it was paid with. Ask for a refund within
30 days of the purchase.
"""
HOURS_EN = """# Opening hours

Our branches are open Monday to Friday from 9:00 to 17:00 and on Saturday morning.
"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "zh").mkdir(parents=True)
    (folder / "zh" / "银行卡.md").write_text(CARDS_ZH)
    (folder / "refunds.md").write_text(REFUNDS_EN)
    (tmp_path / "hours.md").write_text(HOURS_EN)
    return folder


async def test_files_and_folders_are_searched_in_both_languages(docs: Path, tmp_path: Path) -> None:
    kb = LocalKnowledgeBase([docs, tmp_path / "hours.md"], store=tmp_path / "kb.db")
    try:
        report = await kb.open()
        assert report.count("added") == 3, report
        zh = await kb.search("我的信用卡丢了怎么办", 3)
        assert zh[0].document.endswith("银行卡.md"), zh
        en = await kb.search("how many days until my money is back", 3)
        assert en[0].document.endswith("refunds.md"), en
    finally:
        await kb.aclose()
    again = LocalKnowledgeBase([docs, tmp_path / "hours.md"], store=tmp_path / "kb.db")
    try:
        assert (await again.open()).count("unchanged") == 3  # a named store keeps what went in
    finally:
        await again.aclose()


async def test_a_temporary_knowledge_base_is_removed_on_close(docs: Path) -> None:
    kb = LocalKnowledgeBase([docs])
    await kb.open()
    folder = kb._temporary
    assert folder is not None and any(folder.iterdir())
    await kb.aclose()
    assert not folder.exists()


async def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "locked.pdf").write_bytes(b"%PDF-1.7 not really a pdf")
    kb = LocalKnowledgeBase([tmp_path / "missing.md", tmp_path / "locked.pdf"])
    try:
        with pytest.raises(InputError) as raised:
            await kb.open()
        assert "missing.md" in str(raised.value) and "locked.pdf" in str(raised.value)
    finally:
        await kb.aclose()
    with pytest.raises(InputError):
        LocalKnowledgeBase([])


async def test_the_agent_answers_from_the_files_and_cites_them(docs: Path) -> None:
    agent = AgentBuilder().with_knowledge_base(docs).build()  # no LLM: extractive answers
    try:
        en = await agent.process(Conversation(), "How long does a refund take?")
        assert en.reply is not None and "five working days" in en.reply.text, en.reply
        assert en.reply.citations[0].document.endswith("refunds.md")
        zh = await agent.process(Conversation(), "银行卡丢了怎么挂失？")
        assert zh.reply is not None and "95588" in zh.reply.text, zh.reply
        assert zh.reply.citations[0].document.endswith("银行卡.md")
    finally:
        await agent.aclose()
