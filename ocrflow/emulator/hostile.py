"""Hostile and broken results for the fault modes: what a compromised or buggy service sends."""

from __future__ import annotations

import base64
from typing import Any

from ocrflow.emulator.settings import Faults

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<html><body><div class="ocr_page">&lol9;</div></body></html>
"""

# A whole one-page PDF; the fault sends its first half, as a cut-off download would.
_SMALL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n"
    b"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n"
    b"0000000101 00000 n \ntrailer<</Size 4/Root 1 0 R>>\nstartxref\n165\n%%EOF\n"
)
TRUNCATED_PDF = _SMALL_PDF[: len(_SMALL_PDF) // 2]


def xxe_document(url: str) -> bytes:
    """hOCR whose only text is an external entity: a parser that resolves it fetches ``url``."""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE html [<!ENTITY xxe SYSTEM "{url}">]>\n'
        '<html><body><div class="ocr_page">&xxe;</div></body></html>\n'
    ).encode()


def hostile_answer(body: dict[str, Any], faults: Faults) -> dict[str, Any]:
    """The Completed ``body`` with its first entry (or its status) replaced as ``faults`` say."""
    kind = faults.hostile
    body = dict(body)
    if kind == "unknown_status":
        body["taskStatus"] = "Exploded"
        return body
    results = [dict(entry) for entry in body["results"] or [{"type": "Text"}]]
    first = results[0]
    if kind == "truncated_pdf":
        first["type"], first["data"] = "Pdf", _b64(TRUNCATED_PDF)
    elif kind == "billion_laughs":
        first["type"], first["data"] = "Hocr", _b64(BILLION_LAUGHS)
    elif kind == "xxe":
        first["type"], first["data"] = "Hocr", _b64(xxe_document(faults.xxe_url))
    elif kind == "oversize":
        first["data"] = "A" * (faults.oversize_bytes // 3 * 4 + 4)  # base64 of zero bytes
    elif kind == "unknown_type":
        first["type"], first["data"] = "Docx", _b64(b"a result of a type nobody documented")
    results[0] = first
    body["results"] = results
    return body


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
