"""The knowledge-base and intent services on real files, a real store and the real embedding model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core.config import IntentConfig, IntentsConfig, KnowledgeConfig
from appliance.core.errors import NotFound
from appliance.core.retrieval import direct_answer, extract_answer, relevant_hits
from appliance.knowledge import IngestProgress, IntentService, KnowledgeService
from appliance.store import Store
from tests.ingest.fixtures import write_docx, write_encrypted_pdf, write_pdf, write_xlsx
from tests.knowledge.conftest import CountingEmbedder

CONFIG = KnowledgeConfig()


def make_library(root: Path) -> Path:
    docs = root / "docs"
    (docs / "zh").mkdir(parents=True)
    (docs / "cards.md").write_text(
        "# Card Services\n\n## Lost or stolen cards\n\nIf your card is lost or stolen, freeze it in the app "
        "or call the 24-hour hotline on 0800 555 0199.\n\n## Delivery\n\nNew cards arrive by post within 5 to 7 "
        "working days. Express delivery costs 15 USD.\n", encoding="utf-8")
    (docs / "hours.html").write_text(
        "<html><head><title>Opening hours</title></head><body><h1>Opening hours</h1>"
        "<p>Branches are open Monday to Friday from 9:00 to 17:00 and closed on Sundays.</p></body></html>",
        encoding="utf-8")
    (docs / "faq.csv").write_text(
        "question,answer\nHow do I close my account?,\"Move your money out, then close it in the app.\"\n",
        encoding="utf-8")
    (docs / "zh" / "转账.md").write_text(
        "# 转账汇款\n\n## 跨境汇款\n\n跨境汇款一般在1到3个工作日内到账，每笔手续费为25美元。\n\n"
        "## 撤销转账\n\n预约转账可以在执行日前一天撤销，实时转账一经发出无法撤销。\n", encoding="utf-8")
    write_xlsx(docs / "zh" / "常见问题.xlsx", [("问题", "答案"), ("如何销户？", "请在App中注销账户。")])
    write_docx(docs / "account.docx")
    write_pdf(docs / "refunds.pdf", [["Refund Policy", "Payments you did not make are refunded within one "
                                      "working day after you report them."]])
    write_encrypted_pdf(docs / "locked.pdf", docs / "refunds.pdf")
    (docs / "broken.docx").write_bytes(b"not a zip at all")
    return docs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "node.db", "node-a")
    yield store
    store.close()


async def test_ingest_search_reingest_edit_remove(tmp_path: Path, store: Store, counting: CountingEmbedder) -> None:
    docs = make_library(tmp_path)
    service = KnowledgeService(store, counting, CONFIG, model_id="minilm")
    seen: list[IngestProgress] = []
    report = await service.add_paths([docs], seen.append)

    failed = {Path(o.source).name: o.error for o in report.failed}
    assert failed["locked.pdf"] == "the PDF is encrypted (password protected)"
    assert failed["broken.docx"].startswith("malformed Word document")
    assert len(failed) == 2
    assert report.count("added") == 7 and report.chunks > 8 and report.embedded == counting.texts
    assert seen[-1].files_done == seen[-1].files_total == 9 and seen[-1].chunks == report.chunks
    version = await service.version()
    assert version == 7

    hits = await service.search("my card was stolen", 3)
    assert hits[0].document == "cards.md" and hits[0].section == "Card Services > Lost or stolen cards"
    assert "freeze it in the app" in extract_answer("my card was stolen", hits[0])
    hits = await service.search("跨境汇款手续费", 3)
    assert hits[0].document == "转账.md" and "25美元" in hits[0].text
    hits = await service.search("refund for a payment I did not make", 3)
    assert hits[0].document == "refunds.pdf"

    # Nothing relevant: the engine says so instead of guessing.
    assert relevant_hits("what is the weather on mars", await service.search("what is the weather on mars", 4),
                         CONFIG) == []
    # A close Q&A pair answers directly, in English and Chinese.
    qa = direct_answer("how can I close my account", await service.search("how can I close my account", 4), CONFIG)
    assert qa is not None and qa.answer.startswith("Move your money out")
    qa = direct_answer("如何销户", await service.search("如何销户", 4), CONFIG)
    assert qa is not None and qa.answer == "请在App中注销账户。"

    # Re-adding unchanged files embeds nothing and leaves the version alone.
    counting.texts = 0
    again = await service.add_paths([docs])
    assert again.count("unchanged") == 7 and again.embedded == 0 and counting.texts == 0
    assert await service.version() == version

    # An edit re-embeds only the chunks that changed, and bumps the version.
    cards = docs / "cards.md"
    cards.write_text(cards.read_text(encoding="utf-8") + "\n## PIN\n\nYour PIN arrives two days after the card.\n",
                     encoding="utf-8")
    edited = await service.add_paths([cards])
    assert edited.count("updated") == 1 and edited.embedded == 1 and counting.texts == 1
    assert await service.version() == version + 1
    assert (await service.search("when does my PIN arrive", 1))[0].section == "Card Services > PIN"

    # Removal takes the document out of search.
    removed = await service.remove(str(cards))
    assert [Path(doc.source).name for doc in removed] == ["cards.md"]
    assert all(hit.document != "cards.md" for hit in await service.search("my card was stolen", 5))
    assert await service.version() == version + 2
    await service.remove("hours.html")  # by file name
    with pytest.raises(NotFound):
        await service.remove("no-such-document.md")
    assert len(await service.list_documents()) == 5


async def test_intents_route_handoff_and_retrain(tmp_path: Path, store: Store, counting: CountingEmbedder) -> None:
    examples = tmp_path / "examples.csv"
    examples.write_text("text,label\nwhere is my parcel,order_status\ntrack my order,order_status\n"
                        "我的快递到哪了,order_status\n", encoding="utf-8")
    config = IntentsConfig(intents=[
        IntentConfig(name="handoff", action="handoff", examples=[
            "I want to talk to a human", "connect me to an agent", "can I speak to a real person",
            "转人工", "我要人工客服", "找人工服务"]),
        IntentConfig(name="opening_hours", action="answer", answer="We open 9:00 to 17:00.", examples=[
            "when are you open", "what are your opening hours", "你们几点开门", "营业时间是什么"]),
    ])
    service = IntentService(counting, config, examples_csv=examples, store=store, model_id="minilm")
    await service.start()
    assert counting.texts == 13

    match = await service.classify("please let me talk to a human being")
    assert (match.name, match.in_scope) == ("handoff", True) and match.confidence > 0.5
    assert service.intent(match.name) is not None and service.intent(match.name).action == "handoff"  # type: ignore[union-attr]
    assert (await service.classify("我要转人工")).name == "handoff"
    assert (await service.classify("has my order shipped yet")).name == "order_status"
    assert not (await service.classify("what is the capital of australia")).in_scope

    # Unchanged examples: no retraining; changed ones: retrained, embeddings come from the cache.
    assert await service.reload(config, examples) is False
    counting.texts = 0
    more = IntentsConfig(intents=[*config.intents, IntentConfig(name="card_lost", examples=["I lost my card"])])
    assert await service.reload(more, examples) is True
    assert counting.texts == 1  # only the new example was embedded
    assert (await service.classify("I have lost my bank card")).name == "card_lost"

    empty = IntentService(counting, IntentsConfig())
    await empty.start()
    assert (await empty.classify("hello")).in_scope is False


async def test_vectors_of_another_embedding_model_are_not_compared_until_re_added(
    tmp_path: Path, store: Store, counting: CountingEmbedder,
) -> None:
    docs = make_library(tmp_path)
    await KnowledgeService(store, counting, CONFIG, model_id="old-model").add_paths([docs], lambda _: None)
    upgraded = KnowledgeService(store, counting, CONFIG, model_id="new-model")  # same dimension, other space
    hits = await upgraded.search("my card was stolen", 3)
    assert hits[0].document == "cards.md" and all(hit.vector_similarity is None for hit in hits)
    await upgraded.add_paths([docs], lambda _: None)  # re-added: embedded again by the new model
    hits = await upgraded.search("my card was stolen", 3)
    assert hits[0].document == "cards.md" and hits[0].vector_similarity is not None
