"""hOCR results (XHTML): lines and words with boxes, parsed with defusedxml."""

from __future__ import annotations

import re
from collections.abc import Iterator
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ocrflow.errors import DecodeError
from ocrflow.parsers.blocks import Box, Processed, TextBlock, normalise


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
    processed = Processed(blocks=lines, text=normalise("\n".join(line.text for line in lines)))
    if not lines:
        processed.text = _squash("".join(root.itertext()))
        processed.warnings.append("hOCR has no ocr_line or ocrx_word elements")
    return processed


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
