"""Text results, and any type without a parser of its own (kept as bytes)."""

from __future__ import annotations

from ocrflow.errors import DecodeError
from ocrflow.parsers.blocks import Processed, normalise


def process_text(data: bytes) -> Processed:
    """UTF-8 text with normalised line endings; invalid UTF-8 is an error."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"text result is not valid UTF-8 (byte {exc.start})") from exc
    return Processed(text=normalise(text))


def process_other(data: bytes, wire_type: str | None) -> Processed:
    """Any type without a processor: the bytes are kept as they are."""
    return Processed(
        payload=data,
        warnings=[f"result type {wire_type!r} has no processor: {len(data)} bytes kept as-is"],
    )
