"""Real files of every supported format, written by the libraries (or by hand for PDF)."""

from __future__ import annotations

import io
from pathlib import Path


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path: Path, pages: list[list[str]], title: str = "") -> Path:
    """A minimal valid PDF (Helvetica, one text line per entry) with a correct xref table."""
    objects: list[bytes] = []
    page_ids = []
    font_id = 3
    next_id = 4
    page_objects: list[tuple[int, bytes]] = []
    for lines in pages:
        content = ["BT", "/F1 11 Tf", "72 760 Td", "14 TL"]
        for line in lines:
            content.append(f"({_pdf_escape(line)}) Tj T*")
        content.append("ET")
        stream = "\n".join(content).encode("latin-1")
        content_id, page_id = next_id, next_id + 1
        next_id += 2
        page_objects.append((content_id, b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)))
        page_objects.append((page_id, (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R"
            f" /Resources << /Font << /F1 {font_id} 0 R >> >> >>"
        ).encode()))
        page_ids.append(page_id)
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    table = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        **dict(page_objects),
    }
    info_id = None
    if title:
        info_id = next_id
        table[info_id] = f"<< /Title ({_pdf_escape(title)}) >>".encode("latin-1")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(table):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, table[number]))
    xref = out.tell()
    size = max(table) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[number])
    trailer = f"<< /Size {size} /Root 1 0 R" + (f" /Info {info_id} 0 R" if info_id else "") + " >>"
    out.write(f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode())
    objects.append(out.getvalue())
    path.write_bytes(out.getvalue())
    return path


def write_encrypted_pdf(path: Path, source: Path, password: str = "s3cret") -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(source))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Account Guide"
    document.add_heading("Account Guide", 0)
    document.add_heading("Opening an account", 1)
    document.add_paragraph("Bring a passport and a proof of address to any branch.")
    document.add_paragraph("Online opening takes ten minutes.", style="List Bullet")
    document.add_paragraph("Branch opening takes one visit.", style="List Bullet")
    document.add_heading("Fees", 2)
    table = document.add_table(rows=3, cols=2)
    for row, cells in zip(table.rows, [("Service", "Fee"), ("Statement copy", "3 USD"), ("Closure", "free")],
                          strict=True):
        row.cells[0].text, row.cells[1].text = cells
    document.add_heading("开户须知", 1)
    document.add_paragraph("开户需要携带身份证和地址证明。")
    document.save(str(path))
    return path


def write_xlsx(path: Path, rows: list[tuple[str, ...]], *, sheets: int = 1) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    for index in range(sheets):
        sheet = workbook.active if index == 0 else workbook.create_sheet()
        sheet.title = f"Sheet{index + 1}"
        for row in rows:
            sheet.append(list(row))
    workbook.save(str(path))
    return path
