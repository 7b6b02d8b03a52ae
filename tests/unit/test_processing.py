"""Decoders and processors: every result type with good and bad input."""

from __future__ import annotations

import base64
import json

import pytest

from ocrflow.decoding import decode_base64
from ocrflow.errors import DecodeError, ResultTooLargeError
from ocrflow.models import OcrResponse, OcrResult
from ocrflow.parsers import process_hocr, process_json, process_pdf, process_text
from ocrflow.processing import (
    ResultKind,
    assign_regions,
    process_entry,
    process_response,
)
from tests.unit.documents import BILLION_LAUGHS, EXTERNAL_ENTITY, HOCR_PAGE, pdf_with_text

LIMIT = 1024 * 1024


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


# --- base64 --------------------------------------------------------------------------------


def test_decode_reads_the_vendor_example() -> None:
    data = "QWxsIG1lbiBsaXZlIGVudmVsb3BlZCBpbiB3aGFsZS1saW5lcy4="
    assert decode_base64(data, max_bytes=LIMIT) == b"All men live enveloped in whale-lines."


def test_decode_ignores_mime_line_breaks() -> None:
    assert decode_base64("QWxs\r\nIG1l\nbg==", max_bytes=LIMIT) == b"All men"


@pytest.mark.parametrize("data", [None, ""])
def test_decode_reads_null_and_empty_as_no_bytes(data: str | None) -> None:
    assert decode_base64(data, max_bytes=LIMIT) == b""


@pytest.mark.parametrize(
    "bad", ["QWxsIG1lbg", "QWxs IG1lbg==", "QWxs*G1lbg==", "QW=xs", "Ã©Ã©Ã©Ã©", "-_-_"]
)
def test_decode_rejects_bad_padding_and_stray_characters(bad: str) -> None:
    with pytest.raises(DecodeError, match="not valid base64"):
        decode_base64(bad, max_bytes=LIMIT)


def test_decode_refuses_oversized_entries_before_decoding() -> None:
    with pytest.raises(ResultTooLargeError, match="over the 10-byte limit"):
        decode_base64(b64(b"x" * 11), max_bytes=10)
    assert decode_base64(b64(b"x" * 10), max_bytes=10) == b"x" * 10


# --- Text ----------------------------------------------------------------------------------


def test_text_is_utf8_with_normalised_line_endings() -> None:
    processed = process_text("\ufeffJosé Müller\r\nLine two\r\n".encode())
    assert processed.text == "José Müller\nLine two"


def test_text_rejects_invalid_utf8() -> None:
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        process_text(b"caf\xe9")


# --- JSON ----------------------------------------------------------------------------------


def test_json_lines_with_words_and_corner_boxes() -> None:
    document = {
        "lines": [
            {
                "text": "JOHN SMITH",
                "box": [10, 8, 300, 28],
                "words": [
                    {"text": "JOHN", "bbox": [10, 8, 120, 28], "confidence": 96},
                    {"text": "SMITH", "bbox": [130, 8, 300, 28], "confidence": 91.5},
                ],
            },
            {"text": "1985-04-12", "topLeft": {"x": 10, "y": 32}, "bottomRight": [390, 52]},
        ]
    }
    processed = process_json(json.dumps(document).encode())
    assert processed.text == "JOHN SMITH\n1985-04-12"
    first, second = processed.blocks
    assert first.box == (10, 8, 300, 28)
    assert [(w.text, w.box, w.confidence) for w in first.children] == [
        ("JOHN", (10, 8, 120, 28), 96.0),
        ("SMITH", (130, 8, 300, 28), 91.5),
    ]
    assert second.box == (10, 32, 390, 52)


@pytest.mark.parametrize(
    ("block", "box"),
    [
        (
            {"Text": "a", "TopLeftX": 1, "TopLeftY": 2, "BottomRightX": 3, "BottomRightY": 4},
            (1, 2, 3, 4),
        ),
        ({"value": "a", "rect": {"x": 5, "y": 6, "width": 10, "height": 4}}, (5, 6, 15, 10)),
        ({"text": "a", "left": 1, "top": 1, "right": 9, "bottom": 9}, (1, 1, 9, 9)),
        ({"text": "a", "box": ["1", 2, 3, 4]}, None),
        ({"text": "a"}, None),
    ],
)
def test_json_boxes_in_several_spellings(block: dict[str, object], box: object) -> None:
    (parsed,) = process_json(json.dumps([block]).encode()).blocks
    assert parsed.box == box


def test_json_without_text_blocks_warns() -> None:
    processed = process_json(b'{"version": 2, "blocks": []}')
    assert processed.blocks == []
    assert processed.warnings == ["JSON result holds no recognisable text blocks"]


@pytest.mark.parametrize("bad", [b"{not json", b"\xff\xfe{}", b"[" * 100 + b"]" * 100])
def test_json_rejects_broken_documents(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        process_json(bad)


# --- hOCR ----------------------------------------------------------------------------------


def test_hocr_lines_and_words_with_boxes_and_confidence() -> None:
    processed = process_hocr(HOCR_PAGE.encode())
    assert processed.text == "JOHN SMITH\n1985-04-12"
    first, second = processed.blocks
    assert first.box == (10, 8, 300, 28)
    assert [(w.text, w.box, w.confidence) for w in first.children] == [
        ("JOHN", (10, 8, 120, 28), 96.0),
        ("SMITH", (130, 8, 300, 28), 91.0),
    ]
    assert second.children[0].text == "1985-04-12"


def test_hocr_with_words_but_no_lines() -> None:
    page = '<html><body><span class="ocrx_word" title="bbox 1 2 3 4">ONE</span></body></html>'
    processed = process_hocr(page.encode())
    assert processed.text == "ONE"
    assert processed.blocks[0].children[0].box == (1, 2, 3, 4)


def test_hocr_without_ocr_classes_falls_back_to_its_text() -> None:
    processed = process_hocr(b"<html><body><p>Plain   text</p></body></html>")
    assert processed.text == "Plain text"
    assert processed.warnings == ["hOCR has no ocr_line or ocrx_word elements"]


@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_hocr_refuses_entity_expansion_and_external_entities(hostile: str) -> None:
    with pytest.raises(DecodeError, match="hOCR refused"):
        process_hocr(hostile.encode())


def test_hocr_rejects_malformed_xml() -> None:
    with pytest.raises(DecodeError, match="not well-formed"):
        process_hocr(b"<html><body><span class='ocr_line'>x</body>")


# --- PDF -----------------------------------------------------------------------------------


def test_pdf_text_layer_is_read_back() -> None:
    data = pdf_with_text("JOHN SMITH", "1985-04-12")
    processed = process_pdf(data)
    assert processed.page_count == 1
    assert processed.text is not None
    assert processed.text.split() == ["JOHN", "SMITH", "1985-04-12"]
    assert processed.payload == data
    assert processed.warnings == []


def test_pdf_without_text_layer_warns_not_searchable() -> None:
    processed = process_pdf(pdf_with_text())
    assert processed.warnings == ["PDF has no text layer: it is not searchable"]


def test_pdf_rejects_non_pdf_bytes() -> None:
    with pytest.raises(DecodeError, match="not a PDF"):
        process_pdf(b"\x89PNG\r\n\x1a\n....")


def test_pdf_rejects_a_truncated_file() -> None:
    data = pdf_with_text("JOHN SMITH")
    with pytest.raises(DecodeError, match="truncated"):
        process_pdf(data[: len(data) // 2])


def test_pdf_rejects_garbage_between_header_and_trailer() -> None:
    with pytest.raises(DecodeError, match="cannot be read"):
        process_pdf(b"%PDF-1.7\n" + b"\x00garbage" * 50 + b"\n%%EOF\n")


# --- entries and responses -----------------------------------------------------------------


def test_result_kind_reads_any_spelling() -> None:
    assert [ResultKind.of(t) for t in ("Text", "JSON", "Json", "hocr", "XML", "PDF")] == [
        ResultKind.TEXT,
        ResultKind.JSON,
        ResultKind.JSON,
        ResultKind.HOCR,
        ResultKind.HOCR,
        ResultKind.PDF,
    ]
    assert ResultKind.of("ImagePNG") is ResultKind.OTHER
    assert ResultKind.of(None) is ResultKind.OTHER


def test_unknown_type_keeps_raw_bytes_with_a_warning() -> None:
    entry = process_entry(
        OcrResult(type="ImagePNG", data=b64(b"\x89PNG")), index=0, region=0, max_bytes=LIMIT
    )
    assert entry.ok
    assert entry.payload == b"\x89PNG"
    assert entry.warnings == ["result type 'ImagePNG' has no processor: 4 bytes kept as-is"]


def test_a_bad_entry_fails_only_its_region() -> None:
    response = OcrResponse.model_validate(
        {
            "taskStatus": "Completed",
            "results": [
                {"type": "Text", "data": b64("first")},
                {"type": "Text", "data": "%%%not-base64"},
                {"type": "Text", "data": b64("third")},
            ],
        }
    )
    entries = process_response(response, region_count=3, max_bytes=LIMIT)
    assert [(e.region, e.text, e.ok) for e in entries] == [
        (0, "first", True),
        (1, None, False),
        (2, "third", True),
    ]
    assert entries[1].error is not None
    assert "not valid base64" in entries[1].error


def test_combined_types_give_one_entry_per_format_and_region() -> None:
    pdf = pdf_with_text("ANY")
    response = OcrResponse.model_validate(
        {
            "taskStatus": "Completed",
            "results": [
                {"type": "Text", "data": b64("one")},
                {"type": "Pdf", "data": b64(pdf)},
                {"type": "Text", "data": b64("two")},
                {"type": "Pdf", "data": b64(pdf)},
            ],
        }
    )
    entries = process_response(response, region_count=2, max_bytes=LIMIT)
    assert [(e.kind, e.region) for e in entries] == [
        (ResultKind.TEXT, 0),
        (ResultKind.PDF, 0),
        (ResultKind.TEXT, 1),
        (ResultKind.PDF, 1),
    ]
    assert entries[1].structured() == {"lines": [], "pages": 1}


def test_region_assignment_grouped_interleaved_and_page_level() -> None:
    grouped, _ = assign_regions(["Text", "Text", "Hocr", "Hocr"], 2)
    assert grouped == [0, 1, 0, 1]
    page_level, warnings = assign_regions(["Text", "Text", "Pdf"], 2)
    assert page_level == [0, 1, None]
    assert warnings == {}
    unknown, warnings = assign_regions(["Text", "Text"], 3)
    assert unknown == [None, None]
    assert "cannot tell which region" in warnings[0][0]
    assert assign_regions(["Text", "Text"], None)[0] == [0, 1]
