"""Turning decoded result entries into text and structure: the entry types, the dispatch to
one parser per result type (:mod:`ocrflow.parsers`), and which region each entry belongs to.

Text → the region's text; JSON → text blocks with boxes (tolerant: the vendor documents no
schema); Hocr → lines and words with boxes, parsed with ``defusedxml``; Pdf → checked, its
pages counted and its text layer read back with ``pypdf``; any other type → bytes kept as-is
with a warning. A bad entry becomes an error on that entry alone, never on the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ocrflow.decoding import decode_base64
from ocrflow.errors import DecodeError
from ocrflow.models import OcrResponse, OcrResult
from ocrflow.parsers import (
    Processed,
    TextBlock,
    process_hocr,
    process_json,
    process_other,
    process_pdf,
    process_text,
)


class ResultKind(StrEnum):
    """How an entry is processed, read from its wire ``type`` in any letter case."""

    TEXT = "text"
    JSON = "json"
    HOCR = "hocr"
    PDF = "pdf"
    OTHER = "other"

    @classmethod
    def of(cls, wire_type: str | None) -> ResultKind:
        """The kind for a wire ``type``; the seed tutorial's ``XML`` means hOCR."""
        folded = (wire_type or "").strip().casefold()
        aliases = {"text": cls.TEXT, "json": cls.JSON, "hocr": cls.HOCR, "xml": cls.HOCR}
        return aliases.get(folded, cls.PDF if folded == "pdf" else cls.OTHER)


@dataclass(frozen=True, slots=True)
class DecodedEntry:
    """One entry of ``results`` after base64 decoding, or the error that stopped it."""

    index: int
    region: int | None
    wire_type: str | None
    kind: ResultKind
    data: bytes | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class ProcessedEntry:
    """One entry of ``results`` after decoding and processing, or the error that stopped it."""

    index: int
    region: int | None
    wire_type: str | None
    kind: ResultKind
    text: str | None = None
    blocks: list[TextBlock] = field(default_factory=list)
    payload: bytes | None = None
    page_count: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the entry was decoded and processed."""
        return self.error is None

    def structured(self) -> dict[str, Any] | None:
        """The JSON-ready structure (lines, words, pages) for storage, if any."""
        if not self.blocks and self.page_count is None:
            return None
        out: dict[str, Any] = {"lines": [block.to_dict() for block in self.blocks]}
        if self.page_count is not None:
            out["pages"] = self.page_count
        return out


PROCESSORS: dict[ResultKind, Callable[[bytes], Processed]] = {
    ResultKind.TEXT: process_text,
    ResultKind.JSON: process_json,
    ResultKind.HOCR: process_hocr,
    ResultKind.PDF: process_pdf,
}


def decode_response(
    response: OcrResponse, *, region_count: int | None, max_bytes: int
) -> list[DecodedEntry]:
    """Decode every entry of a completed answer and tell which region each belongs to."""
    regions, layout_warnings = assign_regions([e.type for e in response.results], region_count)
    return [
        decode_entry(
            entry,
            index=index,
            region=region,
            max_bytes=max_bytes,
            warnings=tuple(layout_warnings.get(index, ())),
        )
        for index, (entry, region) in enumerate(zip(response.results, regions, strict=True))
    ]


def decode_entry(
    entry: OcrResult,
    *,
    index: int,
    region: int | None,
    max_bytes: int,
    warnings: tuple[str, ...] = (),
) -> DecodedEntry:
    """Decode one entry's base64; a failure is recorded on the entry, never raised."""
    kind = ResultKind.of(entry.type)
    try:
        data = decode_base64(entry.data, max_bytes=max_bytes)
    except DecodeError as exc:
        return DecodedEntry(index, region, entry.type, kind, error=str(exc), warnings=warnings)
    return DecodedEntry(index, region, entry.type, kind, data=data, warnings=warnings)


def process_decoded(entry: DecodedEntry) -> ProcessedEntry:
    """Process one decoded entry by its kind; a failure is recorded on the entry."""
    out = ProcessedEntry(
        index=entry.index,
        region=entry.region,
        wire_type=entry.wire_type,
        kind=entry.kind,
        warnings=list(entry.warnings),
        error=entry.error,
    )
    if entry.data is None:
        out.error = out.error or "result entry has no data"
        return out
    try:
        processor = PROCESSORS.get(entry.kind)
        processed = (
            processor(entry.data) if processor else process_other(entry.data, entry.wire_type)
        )
    except DecodeError as exc:
        out.error = str(exc)
        return out
    out.text, out.blocks, out.payload = processed.text, processed.blocks, processed.payload
    out.page_count = processed.page_count
    out.warnings += processed.warnings
    return out


def process_entry(
    entry: OcrResult, *, index: int, region: int | None, max_bytes: int
) -> ProcessedEntry:
    """Decode and process one entry; any failure is recorded on the entry, never raised."""
    return process_decoded(decode_entry(entry, index=index, region=region, max_bytes=max_bytes))


def process_response(
    response: OcrResponse, *, region_count: int | None, max_bytes: int
) -> list[ProcessedEntry]:
    """Decode and process every entry of a completed answer."""
    decoded = decode_response(response, region_count=region_count, max_bytes=max_bytes)
    return [process_decoded(entry) for entry in decoded]


def assign_regions(
    wire_types: Sequence[str | None], region_count: int | None
) -> tuple[list[int | None], dict[int, list[str]]]:
    """Map each entry to a region index (regions sorted by ``order``), or None for the page.

    The layout of combined result types is undocumented (contract §10.3), so it is read from
    the answer: when a type occurs once per region, its k-th occurrence is region k, whether
    the service interleaves formats (Text, Pdf, Text, Pdf) or groups them (Text, Text, Pdf,
    Pdf). A type that occurs once for several regions is page-level. Anything else is kept
    unassigned, with a warning on those entries.
    """
    # Known kinds group their spellings (Json/JSON); unknown types are told apart by name.
    kinds = [_layout_key(t) for t in wire_types]
    counts = Counter(kinds)
    seen: Counter[str] = Counter()
    regions: list[int | None] = []
    warnings: dict[int, list[str]] = {}
    for index, kind in enumerate(kinds):
        occurrence = seen[kind]
        seen[kind] += 1
        if region_count is None or counts[kind] == region_count:
            regions.append(occurrence)
        else:
            regions.append(None)
            if counts[kind] != 1:
                warnings[index] = [
                    f"{counts[kind]} {wire_types[index]!r} entries for {region_count} regions: "
                    "cannot tell which region this one belongs to"
                ]
    return regions, warnings


def _layout_key(wire_type: str | None) -> str:
    kind = ResultKind.of(wire_type)
    return f"other:{(wire_type or '').casefold()}" if kind is ResultKind.OTHER else kind.value
