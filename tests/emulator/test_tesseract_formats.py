"""The client's hOCR and PDF parsers on Tesseract's own documents, which we did not write."""

from __future__ import annotations

import io
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader

from ocrflow.emulator.engine import Box, Recognition, TesseractEngine, placed_hocr
from ocrflow.parsers import process_hocr, process_pdf
from tests.emulator.conftest import SAMPLES, Emulator, decoded, sample_body

ADDRESS = (368, 387, 691, 484)  # the application form's two-line address, padded as a crop


@cache
def engine() -> TesseractEngine:
    return TesseractEngine()


@cache
def address_read() -> Recognition:
    page = Image.open(SAMPLES / "application-form.png").convert("L")
    return engine().recognize(
        page.crop(ADDRESS),
        language="English",
        whole_page=False,
        documents=frozenset({"Hocr", "Pdf"}),
        dpi=150,
    )


@cache
def id_card_page_read() -> Recognition:
    page = Image.open(SAMPLES / "id-card.png").convert("L")
    return engine().recognize(
        page, language="English", whole_page=True, documents=frozenset({"Hocr"})
    )


@pytest.mark.parametrize("read", [address_read, id_card_page_read], ids=["region", "page"])
def test_hocr_parser_reads_tesseracts_hocr_as_tesseract_itself_reports_it(read: object) -> None:
    assert callable(read)
    recognition: Recognition = read()
    assert recognition.hocr is not None
    assert "content='tesseract " in recognition.hocr  # the renderer's, not ours
    parsed = process_hocr(recognition.hocr.encode())
    # Tesseract's result iterator is the reference: the same lines, words, boxes, confidences.
    assert [line.text for line in parsed.blocks] == [line.text for line in recognition.lines]
    assert [[(w.text, w.box) for w in line.children] for line in parsed.blocks] == [
        [(w.text, w.box) for w in line.words] for line in recognition.lines
    ]
    assert [[w.confidence for w in line.children] for line in parsed.blocks] == [
        [float(int(w.confidence)) for w in line.words]  # the renderer truncates x_wconf
        for line in recognition.lines
    ]
    assert parsed.warnings == []


def test_the_address_reads_line_by_line_from_tesseracts_hocr_and_pdf() -> None:
    recognition = address_read()
    assert recognition.hocr is not None
    assert recognition.pdf is not None
    expected = "Calle Mayor 12, 3B\n28013 Madrid, Spain"
    assert process_hocr(recognition.hocr.encode()).text == expected
    pdf = process_pdf(recognition.pdf)
    assert (pdf.text, pdf.page_count, pdf.warnings) == (expected, 1, [])


def test_tesseracts_pdf_page_is_the_crop_at_the_dpi_it_was_given() -> None:
    recognition = address_read()
    assert recognition.pdf is not None
    box = PdfReader(io.BytesIO(recognition.pdf)).pages[0].mediabox
    width_px, height_px = ADDRESS[2] - ADDRESS[0], ADDRESS[3] - ADDRESS[1]
    assert float(box.width) == pytest.approx(width_px * 72 / 150, abs=0.5)
    assert float(box.height) == pytest.approx(height_px * 72 / 150, abs=0.5)


@settings(max_examples=60, deadline=None)
@given(
    scale=st.sampled_from([1, 2, 3, 4]),
    dx=st.integers(min_value=0, max_value=5000),
    dy=st.integers(min_value=0, max_value=5000),
)
def test_placing_tesseracts_hocr_moves_every_box_as_the_words_move(
    scale: int, dx: int, dy: int
) -> None:
    recognition = address_read()
    assert recognition.hocr is not None

    def move(box: Box | None) -> Box | None:
        assert box is not None
        x1, y1, x2, y2 = (round(v / scale) for v in box)
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

    raw = process_hocr(recognition.hocr.encode())
    placed = process_hocr(placed_hocr(recognition.hocr, scale=scale, dx=dx, dy=dy).encode())
    assert [move(line.box) for line in raw.blocks] == [line.box for line in placed.blocks]
    assert [[move(w.box) for w in line.children] for line in raw.blocks] == [
        [w.box for w in line.children] for line in placed.blocks
    ]
    assert placed.text == raw.text
    # And it agrees with how the recognition's own words are placed.
    moved = recognition.placed(scale=scale, dx=dx, dy=dy)
    assert [[w.box for w in line.children] for line in placed.blocks] == [
        [w.box for w in line.words] for line in moved.lines
    ]


async def test_the_emulators_hocr_and_pdf_are_tesseracts_in_page_coordinates(
    emulator: Emulator,
) -> None:
    await emulator.authorize()
    answer = await emulator.finish(
        await emulator.submit(sample_body("application-form", "PdfAndHocr"))
    )
    hocr_entries = [decoded(r).decode() for r in answer["results"][1::2]]
    assert all("content='tesseract " in hocr for hocr in hocr_entries)
    assert not any("ocrflow-emulator-" in hocr for hocr in hocr_entries)  # no temporary path
    rects = [r["rect"] for r in sample_body("application-form")["settings"]["regions"]]
    for hocr, rect in zip(hocr_entries, rects, strict=True):
        for line in process_hocr(hocr.encode()).blocks:
            for word in line.children:
                assert word.box is not None
                x1, y1, x2, y2 = word.box
                assert rect["topLeftX"] - 4 <= x1 < x2 <= rect["bottomRightX"] + 4
                assert rect["topLeftY"] - 4 <= y1 < y2 <= rect["bottomRightY"] + 4
    assert all(process_pdf(decoded(r)).warnings == [] for r in answer["results"][0::2])
