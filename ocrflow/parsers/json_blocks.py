"""JSON results: text blocks with boxes wherever found (the vendor documents no schema)."""

from __future__ import annotations

import json
from typing import Any

from ocrflow.errors import DecodeError
from ocrflow.parsers.blocks import Box, Processed, TextBlock, normalise

_MAX_JSON_DEPTH = 64


def process_json(data: bytes) -> Processed:
    """A JSON document: text blocks with their boxes wherever they can be recognised."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DecodeError(f"JSON result is not valid UTF-8 (byte {exc.start})") from exc
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"JSON result does not parse: {exc}") from exc
    blocks = _json_blocks(document, depth=0)
    processed = Processed(blocks=blocks, text=normalise("\n".join(b.text for b in blocks)))
    if not blocks:
        processed.warnings.append("JSON result holds no recognisable text blocks")
    return processed


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
