"""Result formats of one region: Text, JSON (lines and words with boxes), hOCR, searchable PDF.

Layout of ``results`` (the vendor leaves it open, contract §10.3): regions are taken in
ascending ``order``; for each region, one entry per format of the result type, in the order
the type names them (``TextAndPdfAndHocr`` → Text, Pdf, Hocr). So N regions with a combined
type of K formats give N·K entries: region 0's formats first, then region 1's, and so on.
Boxes are in the submitted image's pixel coordinates.

With real OCR, hOCR and PDF are Tesseract's own (its renderers, see ``engine.py``), so the
client's parsers meet a format their authors did not write; the writers here serve simulated
jobs, whose text is known without an engine.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from xml.sax.saxutils import escape, quoteattr

from PIL import Image

from ocrflow.emulator.engine import Box, Recognition

PDF_DPI = 150
FORMATS = {
    "Text": ("Text",),
    "Pdf": ("Pdf",),
    "Hocr": ("Hocr",),
    "JSON": ("JSON",),
    "ImagePNG": ("ImagePNG",),
    "TextAndPdf": ("Text", "Pdf"),
    "TextAndHocr": ("Text", "Hocr"),
    "PdfAndHocr": ("Pdf", "Hocr"),
    "TextAndPdfAndHocr": ("Text", "Pdf", "Hocr"),
}


def render_region(
    result_type: str,
    *,
    recognition: Recognition,
    order: int,
    rect: Box,
    image: Image.Image | None,
    engine_name: str,
) -> list[dict[str, str]]:
    """The ``results`` entries of one region: ``{"type", "data"}`` with base64 data."""
    entries = []
    for fmt in FORMATS[result_type]:
        if fmt == "Text":
            data = recognition.text.encode()
        elif fmt == "JSON":
            data = json_document(recognition, order=order, rect=rect).encode()
        elif fmt == "Hocr":
            # The engine's own hOCR when it wrote one (Tesseract does), else ours.
            hocr = recognition.hocr or hocr_document(
                recognition, rect=rect, engine_name=engine_name
            )
            data = hocr.encode()
        elif fmt == "Pdf":
            data = recognition.pdf or searchable_pdf(recognition, rect=rect, image=image)
        else:
            data = png_bytes(image, rect)
        entries.append({"type": fmt, "data": base64.b64encode(data).decode("ascii")})
    return entries


def json_document(recognition: Recognition, *, order: int, rect: Box) -> str:
    """Our JSON layout: the region, its text, and lines with words and ``[x1, y1, x2, y2]``."""
    return json.dumps(
        {
            "order": order,
            "rect": list(rect),
            "text": recognition.text,
            "lines": [
                {
                    "text": line.text,
                    "box": list(line.box),
                    "words": [
                        {"text": w.text, "box": list(w.box), "confidence": w.confidence}
                        for w in line.words
                    ],
                }
                for line in recognition.lines
            ],
        },
        ensure_ascii=False,
    )


def hocr_document(recognition: Recognition, *, rect: Box, engine_name: str) -> str:
    """An hOCR 1.2 XHTML page with ``ocr_line`` and ``ocrx_word`` elements."""

    def bbox(box: Box) -> str:
        return "bbox {} {} {} {}".format(*box)

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"'
        ' "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">',
        "<head><title></title>",
        '<meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>',
        f'<meta name="ocr-system" content="ocrflow emulator ({escape(engine_name)})"/>',
        '<meta name="ocr-capabilities" content="ocr_page ocr_carea ocr_line ocrx_word"/>',
        "</head><body>",
        f'<div class="ocr_page" id="page_1" title="{bbox(rect)}; ppageno 0">',
        f'<div class="ocr_carea" id="block_1_1" title="{bbox(rect)}">',
    ]
    word_no = 0
    for line_no, line in enumerate(recognition.lines, start=1):
        parts.append(f'<span class="ocr_line" id="line_1_{line_no}" title="{bbox(line.box)}">')
        for word in line.words:
            word_no += 1
            title = quoteattr(f"{bbox(word.box)}; x_wconf {round(word.confidence)}")
            parts.append(
                f'<span class="ocrx_word" id="word_1_{word_no}" title={title}>'
                f"{escape(word.text)}</span>"
            )
        parts.append("</span>")
    parts.append("</div></div></body></html>")
    return "\n".join(parts)


def png_bytes(image: Image.Image | None, rect: Box) -> bytes:
    """The region as a PNG (a blank one when there is no image, in simulation)."""
    picture = image or Image.new("L", (max(rect[2] - rect[0], 1), max(rect[3] - rect[1], 1)), 255)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def searchable_pdf(recognition: Recognition, *, rect: Box, image: Image.Image | None) -> bytes:
    """A one-page PDF: the region's image with the recognised words as invisible text.

    Written by hand (a dozen objects) so that it needs no PDF library: a grayscale image
    XObject, Helvetica, and a content stream drawing the words in text render mode 3.
    """
    x0, y0 = rect[0], rect[1]
    width_px, height_px = max(rect[2] - x0, 1), max(rect[3] - y0, 1)
    picture = (image or Image.new("L", (width_px, height_px), 255)).convert("L")
    picture = (
        picture.resize((width_px, height_px)) if picture.size != (width_px, height_px) else picture
    )
    scale = 72.0 / PDF_DPI
    page_w, page_h = width_px * scale, height_px * scale

    ops = [f"q {page_w:.2f} 0 0 {page_h:.2f} 0 0 cm /Im0 Do Q", "BT 3 Tr"]
    for line in recognition.lines:
        for word in line.words:
            x1, y1, x2, y2 = word.box
            size = max((y2 - y1) * scale, 1.0)
            natural = max(0.5 * size * len(word.text), 0.1)  # Helvetica averages 0.5 em
            stretch = max(min((x2 - x1) * scale / natural * 100, 500.0), 10.0)
            ops.append(
                f"/F1 {size:.2f} Tf {stretch:.1f} Tz 1 0 0 1 {(x1 - x0) * scale:.2f} "
                f"{page_h - (y2 - y0) * scale:.2f} Tm {_pdf_string(word.text)} Tj"
            )
    ops.append("ET")
    content = zlib.compress("\n".join(ops).encode("latin-1"))
    pixels = zlib.compress(picture.tobytes())

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page_w:.2f} {page_h:.2f}] "
            "/Resources << /XObject << /Im0 4 0 R >> /Font << /F1 5 0 R >> >> "
            "/Contents 6 0 R >>"
        ).encode(),
        _stream(
            f"/Type /XObject /Subtype /Image /Width {width_px} /Height {height_px} "
            "/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode",
            pixels,
        ),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        _stream("/Filter /FlateDecode", content),
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def _stream(dictionary: str, data: bytes) -> bytes:
    return f"<< {dictionary} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"


def _pdf_string(text: str) -> str:
    encoded = text.encode("cp1252", errors="replace").decode("latin-1")
    return "(" + encoded.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"
