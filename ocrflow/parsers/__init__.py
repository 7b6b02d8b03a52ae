"""One parser per result type: Text, JSON, hOCR, searchable PDF, and bytes kept for any other.

Each takes one entry's decoded bytes and returns :class:`Processed`, or raises DecodeError for
that entry alone. They never trust their input: invalid UTF-8, deep JSON, XML entities or
external references, truncated or oversized PDFs are refused with the reason.
"""

from __future__ import annotations

from ocrflow.parsers.blocks import Box, Processed, TextBlock, normalise
from ocrflow.parsers.hocr import process_hocr
from ocrflow.parsers.json_blocks import process_json
from ocrflow.parsers.pdf import process_pdf
from ocrflow.parsers.text import process_other, process_text

__all__ = [
    "Box",
    "Processed",
    "TextBlock",
    "normalise",
    "process_hocr",
    "process_json",
    "process_other",
    "process_pdf",
    "process_text",
]
