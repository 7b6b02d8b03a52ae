"""Searchable PDF results: checked, pages counted, text layer read back with pypdf."""

from __future__ import annotations

import io
import logging

from ocrflow.errors import DecodeError
from ocrflow.parsers.blocks import Processed, normalise

_PDF_HEADER_WINDOW = 1024
_PDF_TRAILER_WINDOW = 2048
_PDF_MAX_PAGES = 1000


def process_pdf(data: bytes) -> Processed:
    """A searchable PDF: header and trailer checked, pages counted, text layer read back."""
    if b"%PDF-" not in data[:_PDF_HEADER_WINDOW]:
        raise DecodeError("result is not a PDF (no %PDF- header)")
    if b"%%EOF" not in data[-_PDF_TRAILER_WINDOW:]:
        raise DecodeError("PDF is truncated (no %%EOF at its end)")
    # Loaded here, not with the module: pypdf takes 65 ms to import, which every command
    # paid (the settings import this module), and only PDF results need it.
    from pypdf import PdfReader  # noqa: PLC0415
    from pypdf.errors import PyPdfError  # noqa: PLC0415

    try:
        with _quiet_pypdf():
            reader = PdfReader(io.BytesIO(data), strict=True)
            page_count = len(reader.pages)
            if page_count > _PDF_MAX_PAGES:
                raise DecodeError(f"PDF has {page_count} pages, over {_PDF_MAX_PAGES}")
            text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise DecodeError(f"PDF cannot be read: {type(exc).__name__}: {exc}") from exc
    # A text layer places each word on its own; the spaces that text extraction puts at a
    # line's end (after Tesseract's last word, for one) are layout, not text.
    text = "\n".join(line.rstrip() for line in normalise(text).split("\n"))
    processed = Processed(text=text, payload=data, page_count=page_count)
    if not processed.text:
        processed.warnings.append("PDF has no text layer: it is not searchable")
    return processed


class _quiet_pypdf:  # noqa: N801 - used as a context manager, reads like a function
    """Silence pypdf's logger while reading: a hostile PDF must not flood the logs."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("pypdf")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc_info: object) -> None:
        self._logger.setLevel(self._level)
