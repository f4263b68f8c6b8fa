#!/usr/bin/env python3
"""Generates the blank documents the client face writes into a new, empty file (an `editnew`
action, or an edit of a 0-byte file): crates/gateway/assets/blank/new.{docx,xlsx,pptx,pdf}.

The OOXML files are made with python-docx, openpyxl and python-pptx (pip install python-docx
openpyxl python-pptx), then rewritten with fixed zip timestamps and document properties, so a
run gives the same bytes for the same library versions. The PDF (one blank A4 page) is written
object by object here, with its cross-reference table, and has no dates or ids: always the
same bytes. The files are checked in and embedded
with include_bytes!; run this again only to change them.
"""
import datetime
import io
import pathlib
import re
import zipfile

import docx
import openpyxl
import pptx

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/gateway/assets/blank"
WHEN = datetime.datetime(2024, 1, 1, 0, 0, 0)


def props(p):
    p.author = ""
    p.last_modified_by = ""
    p.title = ""
    p.created = WHEN
    p.modified = WHEN
    p.subject = ""
    p.comments = ""
    if hasattr(p, "revision"):
        p.revision = 1


def normalized(raw: bytes) -> bytes:
    """The same zip with fixed timestamps, [Content_Types].xml first, deflated, without the
    library template's thumbnail (a picture of some other document)."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    order = src.namelist()
    names = sorted(order, key=lambda n: (n != "[Content_Types].xml", order.index(n)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in names:
            data = src.read(name)
            if name.startswith("docProps/thumbnail"):
                continue
            if name == "_rels/.rels":
                data = re.sub(rb"<Relationship [^>]*Target=\"docProps/thumbnail[^>]*/>", b"", data)
            if name == "[Content_Types].xml":
                data = re.sub(rb"<Override [^>]*PartName=\"/docProps/thumbnail[^>]*/>", b"", data)
            info = zipfile.ZipInfo(name, date_time=WHEN.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    return out.getvalue()


def save(name, doc):
    buf = io.BytesIO()
    doc.save(buf)
    (OUT / name).write_bytes(normalized(buf.getvalue()))
    print(f"{OUT / name}: {len((OUT / name).read_bytes())} bytes")


def blank_pdf() -> bytes:
    """One blank A4 page (595 x 842 pt): catalog, page tree, page, empty content stream, and a
    cross-reference table with each object's byte offset (entries of exactly 20 bytes)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> /Contents 4 0 R >>",
        b"<< /Length 0 >>\nstream\n\nendstream",
    ]
    # The binary comment marks the file as binary for transfer tools (PDF 32000-1, 7.5.2).
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    d = docx.Document()
    d.add_paragraph()
    props(d.core_properties)
    save("new.docx", d)

    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.properties.creator = ""
    wb.properties.lastModifiedBy = ""
    wb.properties.created = WHEN
    wb.properties.modified = WHEN
    save("new.xlsx", wb)

    p = pptx.Presentation()
    # 16:9, as current office suites start a new presentation.
    p.slide_width = pptx.util.Emu(12192000)
    p.slide_height = pptx.util.Emu(6858000)
    p.slides.add_slide(p.slide_layouts[0])
    props(p.core_properties)
    save("new.pptx", p)

    (OUT / "new.pdf").write_bytes(blank_pdf())
    print(f"{OUT / 'new.pdf'}: {len((OUT / 'new.pdf').read_bytes())} bytes")


if __name__ == "__main__":
    main()
