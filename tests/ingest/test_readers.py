"""Every reader on real files: structure comes out as blocks, broken files fail naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.core.chunking import Block
from appliance.ingest import UnreadableDocument, discover, read_document
from tests.ingest.fixtures import write_docx, write_encrypted_pdf, write_pdf, write_xlsx


def kinds(blocks: list[Block]) -> list[tuple[str, str]]:
    return [(block.kind, block.text) for block in blocks]


def test_markdown_structure(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "---\nauthor: someone\n---\n"
        "# Card Guide\n\nIntro with **bold**, `code` and a [link](http://example.com).\nWrapped here.\n\n"
        "## Lost cards\n\n- Freeze the card\n  in the app.\n- Call 0800 555 0199.\n\n"
        "| Fee | Amount |\n|---|---|\n| Replacement | 5 USD |\n\n"
        "Setext heading\n--------------\n\n```\ncode block\n```\n\n"
        "# 信用卡\n\n如果卡片丢失，\n请立即挂失。\n",
        encoding="utf-8",
    )
    document = read_document(path)
    assert document.title == "Card Guide"
    assert document.format == "markdown"
    assert kinds(document.blocks) == [
        ("heading", "Card Guide"),
        ("paragraph", "Intro with bold, code and a link. Wrapped here."),
        ("heading", "Lost cards"),
        ("list_item", "Freeze the card in the app."),
        ("list_item", "Call 0800 555 0199."),
        ("table_row", "Fee: Replacement; Amount: 5 USD"),
        ("heading", "Setext heading"),
        ("paragraph", "code block"),
        ("heading", "信用卡"),
        ("paragraph", "如果卡片丢失，请立即挂失。"),  # wrapped CJK lines join without a space
    ]
    assert [b.level for b in document.blocks if b.kind == "heading"] == [1, 2, 2, 1]


def test_plain_text_paragraphs_and_lists_in_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "notice.txt"
    path.write_bytes("营业时间通知\n\n周一至周五\n9点开门。\n\n- 周六半天\n- 周日休息\n".encode("gb18030"))
    document = read_document(path)
    assert kinds(document.blocks) == [
        ("paragraph", "营业时间通知"), ("paragraph", "周一至周五9点开门。"),
        ("list_item", "周六半天"), ("list_item", "周日休息"),
    ]
    assert document.title == "notice"


def test_html_skips_chrome_and_keeps_structure(tmp_path: Path) -> None:
    path = tmp_path / "hours.html"
    path.write_text(
        "<html><head><title>Opening hours</title><script>var x = 1;</script><style>p{}</style></head><body>"
        "<nav>Home | Cards</nav><h1>Hours</h1><p>Open <b>9-5</b>.<br>Closed Sundays.</p>"
        "<ul><li>Branch A</li><li>Branch B<ul><li>Annex</li></ul></li></ul>"
        "<table><tr><th>Day</th><th>Hours</th></tr><tr><td>Mon</td><td>9&ndash;5</td></tr></table>"
        "<p>Unclosed paragraph<div>and a div</div></body></html>",
        encoding="utf-8",
    )
    document = read_document(path)
    assert document.title == "Opening hours"
    assert kinds(document.blocks) == [
        ("heading", "Hours"), ("paragraph", "Open 9-5. Closed Sundays."),
        ("list_item", "Branch A"), ("list_item", "Branch B"), ("list_item", "Annex"),
        ("table_row", "Day: Mon; Hours: 9–5"), ("paragraph", "Unclosed paragraph"), ("paragraph", "and a div"),
    ]
    assert [b.level for b in document.blocks if b.kind == "list_item"] == [0, 0, 1]
    assert "Home" not in str(document.blocks) and "var x" not in str(document.blocks)


def test_pdf_text_pages_and_headings(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "policy.pdf", [
        ["Refund Policy", "Card payments you did not make are refunded within one working day.",
         "Report them in the app as soon as you notice."],
        ["1.2 Disputes", "Disputes with a merchant take up to 45 days to resolve."],
    ], title="Refund Policy Manual")
    document = read_document(path)
    assert document.format == "pdf"
    assert document.title == "Refund Policy Manual"
    text = " ".join(block.text for block in document.blocks)
    assert "refunded within one working day" in text
    assert "Disputes with a merchant" in text
    assert ("heading", "1.2 Disputes") in kinds(document.blocks)


def test_encrypted_and_corrupt_pdfs_are_reported_by_name(tmp_path: Path) -> None:
    plain = write_pdf(tmp_path / "plain.pdf", [["Some text in a PDF."]])
    locked = write_encrypted_pdf(tmp_path / "locked.pdf", plain)
    with pytest.raises(UnreadableDocument, match=r"locked\.pdf: the PDF is encrypted"):
        read_document(locked)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> garbage")
    with pytest.raises(UnreadableDocument, match=r"broken\.pdf: "):
        read_document(broken)
    scanned = write_pdf(tmp_path / "scan.pdf", [[]])
    with pytest.raises(UnreadableDocument, match=r"scan\.pdf: no extractable text"):
        read_document(scanned)


def test_docx_styles_become_structure(tmp_path: Path) -> None:
    document = read_document(write_docx(tmp_path / "account.docx"))
    assert document.title == "Account Guide"
    assert kinds(document.blocks) == [
        ("heading", "Account Guide"), ("heading", "Opening an account"),
        ("paragraph", "Bring a passport and a proof of address to any branch."),
        ("list_item", "Online opening takes ten minutes."), ("list_item", "Branch opening takes one visit."),
        ("heading", "Fees"), ("table_row", "Service: Statement copy; Fee: 3 USD"),
        ("table_row", "Service: Closure; Fee: free"), ("heading", "开户须知"),
        ("paragraph", "开户需要携带身份证和地址证明。"),
    ]


def test_malformed_docx_and_xlsx(tmp_path: Path) -> None:
    for name in ("bad.docx", "bad.xlsx"):
        path = tmp_path / name
        path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
        with pytest.raises(UnreadableDocument, match=name.replace(".", r"\.")):
            read_document(path)


@pytest.mark.parametrize("header", ["question,answer", "Q,A", "问题,答案", "常见问题,回答", "FAQ Question,Answer"])
def test_csv_qa_headers(tmp_path: Path, header: str) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(f"{header}\nHow do I close my account?,\"In the app, under Settings.\"\n,no question\n",
                    encoding="utf-8")
    document = read_document(path)
    assert [(b.kind, b.text, b.answer) for b in document.blocks] == [
        ("qa", "How do I close my account?", "In the app, under Settings.")
    ]


def test_csv_category_sections_and_table_fallback(tmp_path: Path) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text("分类;问题;答案\n卡片;怎么挂失？;拨打热线。\n卡片;怎么激活？;在App激活。\n账户;怎么销户？;在App销户。\n",
                   encoding="utf-8")
    blocks = read_document(faq).blocks
    assert kinds(blocks) == [
        ("heading", "卡片"), ("qa", "怎么挂失？"), ("qa", "怎么激活？"), ("heading", "账户"), ("qa", "怎么销户？"),
    ]
    table = tmp_path / "branches.csv"
    table.write_text("Branch,City\nHarbour Street,Lakeshore\n", encoding="utf-8")
    assert kinds(read_document(table).blocks) == [("table_row", "Branch: Harbour Street; City: Lakeshore")]


def test_xlsx_qa_pairs_on_several_sheets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "faq.xlsx", [("问题", "答案"), ("营业时间？", "周一至周五9点至17点。"), (None, None)],
                      sheets=2)
    document = read_document(path)
    assert kinds(document.blocks) == [
        ("heading", "Sheet1"), ("qa", "营业时间？"), ("heading", "Sheet2"), ("qa", "营业时间？"),
    ]
    assert document.blocks[1].answer == "周一至周五9点至17点。"


def test_discover_recurses_and_skips(tmp_path: Path) -> None:
    (tmp_path / "docs" / "zh").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("# A\n\ntext", encoding="utf-8")
    (tmp_path / "docs" / "zh" / "b.txt").write_text("文本", encoding="utf-8")
    (tmp_path / "docs" / ".hidden.md").write_text("secret", encoding="utf-8")
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "docs" / "eval").mkdir()
    (tmp_path / "docs" / "eval" / ".noingest").touch()
    (tmp_path / "docs" / "eval" / "queries.csv").write_text("query,expected\n", encoding="utf-8")
    files, problems = discover([tmp_path / "docs", tmp_path / "docs" / "a.md", tmp_path / "missing",
                                tmp_path / "docs" / "image.png"])
    assert [f.relative_to(tmp_path / "docs").as_posix() for f in files] == ["a.md", "zh/b.txt"]
    assert [(Path(p.path).name, p.reason) for p in problems] == [
        ("missing", "no such file or directory"), ("image.png", "unsupported file type '.png'"),
    ]
    # Naming a marked directory itself ingests it.
    files, _ = discover([tmp_path / "docs" / "eval"])
    assert [f.name for f in files] == ["queries.csv"]


def test_binary_and_empty_files_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "notes.txt"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(UnreadableDocument, match=r"notes\.txt: looks like a binary file"):
        read_document(binary)
    empty = tmp_path / "empty.md"
    empty.write_text("# Only a heading\n", encoding="utf-8")
    with pytest.raises(UnreadableDocument, match=r"empty\.md: no text found"):
        read_document(empty)
