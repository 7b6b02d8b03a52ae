"""Turning decoded result entries into text and structure, one processor per result type.

Text → the region's text; JSON → text blocks with boxes (tolerant: the vendor documents no
schema); Hocr → lines and words with boxes, parsed with ``defusedxml``; Pdf → checked, its
pages counted and its text layer read back with ``pypdf``; any other type → bytes kept as-is
with a warning. A bad entry becomes an error on that entry alone, never on the batch.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ocrflow.decoding import decode_base64
from ocrflow.errors import DecodeError
from ocrflow.models import OcrResponse, OcrResult

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels

_MAX_JSON_DEPTH = 64
_PDF_HEADER_WINDOW = 1024
_PDF_TRAILER_WINDOW = 2048
_PDF_MAX_PAGES = 1000


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


@dataclass(slots=True)
class TextBlock:
    """A piece of recognised text: a line with its words, or a word."""

    text: str
    box: Box | None = None
    confidence: float | None = None
    children: list[TextBlock] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for storage."""
        out: dict[str, Any] = {"text": self.text, "box": list(self.box) if self.box else None}
        if self.confidence is not None:
            out["confidence"] = self.confidence
        if self.children:
            out["words"] = [child.to_dict() for child in self.children]
        return out


@dataclass(slots=True)
class Processed:
    """What one processor made of one entry's bytes."""

    text: str | None = None
    blocks: list[TextBlock] = field(default_factory=list)
    payload: bytes | None = None
    page_count: int | None = None
    warnings: list[str] = field(default_factory=list)


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


def process_text(data: bytes) -> Processed:
    """UTF-8 text with normalised line endings; invalid UTF-8 is an error."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"text result is not valid UTF-8 (byte {exc.start})") from exc
    return Processed(text=_normalise(text))


def process_json(data: bytes) -> Processed:
    """A JSON document: text blocks with their boxes wherever they can be recognised."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DecodeError(f"JSON result is not valid UTF-8 (byte {exc.start})") from exc
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"JSON result does not parse: {exc}") from exc
    blocks = _json_blocks(document, depth=0)
    processed = Processed(blocks=blocks, text=_normalise("\n".join(b.text for b in blocks)))
    if not blocks:
        processed.warnings.append("JSON result holds no recognisable text blocks")
    return processed


def process_hocr(data: bytes) -> Processed:
    """hOCR (XHTML): lines and words with boxes. Entities and external references are refused."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise DecodeError(f"hOCR refused: {type(exc).__name__} ({exc})") from exc
    except SafeET.ParseError as exc:
        raise DecodeError(f"hOCR is not well-formed XML: {exc}") from exc
    lines = [_hocr_line(element) for element in _with_class(root, _HOCR_LINE_CLASSES)]
    if not lines:
        words = [_hocr_word(element) for element in _with_class(root, {"ocrx_word"})]
        lines = [TextBlock(text=" ".join(w.text for w in words), children=words)] if words else []
    processed = Processed(blocks=lines, text=_normalise("\n".join(line.text for line in lines)))
    if not lines:
        processed.text = _squash("".join(root.itertext()))
        processed.warnings.append("hOCR has no ocr_line or ocrx_word elements")
    return processed


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
    processed = Processed(text=_normalise(text), payload=data, page_count=page_count)
    if not processed.text:
        processed.warnings.append("PDF has no text layer: it is not searchable")
    return processed


def process_other(data: bytes, wire_type: str | None) -> Processed:
    """Any type without a processor: the bytes are kept as they are."""
    return Processed(
        payload=data,
        warnings=[f"result type {wire_type!r} has no processor: {len(data)} bytes kept as-is"],
    )


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


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


# --- JSON ---------------------------------------------------------------------------------

_TEXT_KEYS = ("text", "value", "content", "recognizedtext")
_CONFIDENCE_KEYS = ("confidence", "conf", "score")
_BOX_KEYS = ("box", "bbox", "rect", "boundingbox", "bounds", "region")


def _json_blocks(node: object, *, depth: int) -> list[TextBlock]:
    if depth > _MAX_JSON_DEPTH:
        raise DecodeError(f"JSON result is nested deeper than {_MAX_JSON_DEPTH} levels")
    if isinstance(node, list):
        return [block for item in node for block in _json_blocks(item, depth=depth + 1)]
    if not isinstance(node, dict):
        return []
    folded = {str(k).casefold(): v for k, v in node.items()}
    text = next((folded[k] for k in _TEXT_KEYS if isinstance(folded.get(k), str)), None)
    children = [
        block
        for value in node.values()
        if isinstance(value, dict | list)
        for block in _json_blocks(value, depth=depth + 1)
    ]
    if text is None:
        return children
    confidence = next(
        (float(folded[k]) for k in _CONFIDENCE_KEYS if _is_number(folded.get(k))), None
    )
    return [TextBlock(text=text, box=_json_box(folded), confidence=confidence, children=children)]


def _json_box(folded: dict[str, Any]) -> Box | None:
    for key in _BOX_KEYS:
        value = folded.get(key)
        if isinstance(value, list) and len(value) == 4 and all(map(_is_number, value)):
            x1, y1, x2, y2 = (int(v) for v in value)
            return (x1, y1, x2, y2)
        if isinstance(value, dict):
            box = _json_box({str(k).casefold(): v for k, v in value.items()})
            if box:
                return box
    corner_sets = (
        ("topleftx", "toplefty", "bottomrightx", "bottomrighty"),
        ("x1", "y1", "x2", "y2"),
        ("left", "top", "right", "bottom"),
    )
    for names in corner_sets:
        if all(_is_number(folded.get(n)) for n in names):
            x1, y1, x2, y2 = (int(folded[n]) for n in names)
            return (x1, y1, x2, y2)
    top_left, bottom_right = folded.get("topleft"), folded.get("bottomright")
    if (corners := _point(top_left)) and (far := _point(bottom_right)):
        return (*corners, *far)
    if all(_is_number(folded.get(n)) for n in ("x", "y", "width", "height")):
        x, y = int(folded["x"]), int(folded["y"])
        return (x, y, x + int(folded["width"]), y + int(folded["height"]))
    return None


def _point(value: object) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)):
        return (int(value[0]), int(value[1]))
    if isinstance(value, dict):
        folded = {str(k).casefold(): v for k, v in value.items()}
        if _is_number(folded.get("x")) and _is_number(folded.get("y")):
            return (int(folded["x"]), int(folded["y"]))
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- hOCR ---------------------------------------------------------------------------------

_HOCR_LINE_CLASSES = {"ocr_line", "ocr_textfloat", "ocr_header", "ocr_caption"}
_BBOX = re.compile(r"\bbbox\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)")
_WCONF = re.compile(r"\bx_wconf\s+(-?\d+(?:\.\d+)?)")


def _with_class(root: Element, classes: set[str]) -> Iterator[Element]:
    for element in root.iter():
        if classes.intersection(element.get("class", "").split()):
            yield element


def _squash(text: str) -> str:
    return " ".join(text.split())


def _hocr_title(element: Element) -> tuple[Box | None, float | None]:
    title = element.get("title", "")
    box_match, conf_match = _BBOX.search(title), _WCONF.search(title)
    box = None
    if box_match:
        x1, y1, x2, y2 = (int(g) for g in box_match.groups())
        box = (x1, y1, x2, y2)
    return box, float(conf_match.group(1)) if conf_match else None


def _hocr_word(element: Element) -> TextBlock:
    box, confidence = _hocr_title(element)
    return TextBlock(text="".join(element.itertext()).strip(), box=box, confidence=confidence)


def _hocr_line(element: Element) -> TextBlock:
    box, _ = _hocr_title(element)
    words = [_hocr_word(w) for w in _with_class(element, {"ocrx_word"})]
    words = [w for w in words if w.text]
    text = " ".join(w.text for w in words) if words else _squash("".join(element.itertext()))
    return TextBlock(text=text, box=box, children=words)


# --- PDF ----------------------------------------------------------------------------------


class _quiet_pypdf:  # noqa: N801 - used as a context manager, reads like a function
    """Silence pypdf's logger while reading: a hostile PDF must not flood the logs."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("pypdf")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc_info: object) -> None:
        self._logger.setLevel(self._level)
