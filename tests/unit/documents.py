"""Small documents built in code for the decoder tests: PDFs with a text layer, hOCR pages."""

from __future__ import annotations

import io

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def pdf_with_text(*lines: str, invisible: bool = True) -> bytes:
    """A one-page PDF whose content stream draws ``lines`` (render mode 3 = invisible)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=200)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    ops = ["BT", "/F1 12 Tf", "3 Tr" if invisible else "0 Tr", "14 TL", "20 170 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = DecodedStreamObject()
    stream.set_data("\n".join(ops).encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


HOCR_PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head><title></title><meta name="ocr-system" content="tesseract 5.5.4" /></head>
 <body>
  <div class="ocr_page" id="page_1" title="image; bbox 0 0 400 60; ppageno 0">
   <div class="ocr_carea" id="block_1_1" title="bbox 10 8 390 52">
    <p class="ocr_par" id="par_1_1" lang="eng" title="bbox 10 8 390 52">
     <span class="ocr_line" id="line_1_1" title="bbox 10 8 300 28; baseline 0 -4">
      <span class="ocrx_word" id="word_1_1" title="bbox 10 8 120 28; x_wconf 96">JOHN</span>
      <span class="ocrx_word" id="word_1_2" title="bbox 130 8 300 28; x_wconf 91">SMITH</span>
     </span>
     <span class="ocr_line" id="line_1_2" title="bbox 10 32 390 52; baseline 0 -4">
      <span class="ocrx_word" id="word_1_3" title="bbox 10 32 390 52; x_wconf 88"><strong>1985-04-12</strong></span>
     </span>
    </p>
   </div>
  </div>
 </body>
</html>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<html><body><span class="ocr_line">&lol4;</span></body></html>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<html><body><span class="ocr_line">&xxe;</span></body></html>
"""
