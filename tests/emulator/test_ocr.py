"""Real OCR: every sample region read exactly (binarization on and off), every result type,
Rotate, deskewing and binarization."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from ocrflow.emulator.imaging import binarize, ink_blots, ink_mask
from ocrflow.parsers import process_hocr, process_json, process_pdf
from tests.emulator.conftest import SAMPLE_NAMES, Emulator, decoded, expected_texts, sample_body


def line_image(text: str, *, angle: float = 0.0) -> Image.Image:
    """A white picture of one line of text, turned ``angle`` degrees counter-clockwise."""
    font = ImageFont.load_default(size=36)
    image = Image.new("L", (640, 120), 255)
    ImageDraw.Draw(image).text((30, 40), text, font=font, fill=0)
    return image.rotate(angle, expand=True, fillcolor=255) if angle else image


def body_for(image: Image.Image, **settings: object) -> dict[str, object]:
    out = io.BytesIO()
    image.save(out, "PNG")
    width, height = image.size
    region = {"rect": {"topLeftX": 0, "topLeftY": 0, "bottomRightX": width, "bottomRightY": height}}
    return {
        "image": base64.b64encode(out.getvalue()).decode(),
        "settings": {"regions": [region], **settings},
    }


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
async def test_every_sample_region_is_read_exactly(emulator: Emulator, sample: str) -> None:
    await emulator.authorize()
    job_id = await emulator.submit(sample_body(sample))
    answer = await emulator.finish(job_id)
    assert answer["taskStatus"] == "Completed"
    assert [decoded(r).decode() for r in answer["results"]] == expected_texts(sample)


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
async def test_binarization_reads_every_sample_at_least_as_well_as_without(
    emulator: Emulator, sample: str
) -> None:
    await emulator.authorize()
    exact = {}
    for setting in (False, True):
        body = sample_body(sample, makeBinarization=setting)
        answer = await emulator.finish(await emulator.submit(body))
        texts = [decoded(r).decode() for r in answer["results"]]
        exact[setting] = sum(t == e for t, e in zip(texts, expected_texts(sample), strict=True))
    assert exact[True] == len(expected_texts(sample))
    assert exact[True] >= exact[False]


def test_binarization_whitens_specks_but_keeps_full_stops_and_dots() -> None:
    font = ImageFont.load_default(size=34)
    page = Image.new("L", (420, 60), 200)
    ImageDraw.Draw(page).text((10, 10), "mini.io", font=font, fill=60)
    clean = binarize(page)
    specked = page.copy()
    for x, y in ((300, 30), (330, 12), (400, 50), (5, 5)):  # 2 px specks, away from the text
        specked.paste(60, (x, y, x + 2, y + 2))
    cleaned = binarize(specked)
    assert ImageChops.difference(clean, cleaned).getbbox() is None  # every speck is gone
    # Every blot of the text keeps its ink, the dots of the i's and the full stop among them.
    text_blots = ink_blots(ink_mask(page))
    assert len(text_blots) >= 7  # m i n i . i o, an i's dot apart where it does not touch
    kept = ink_mask(cleaned)
    for blot in text_blots:
        assert kept.crop((blot.x1, blot.y1, blot.x2 + 1, blot.y1 + 3)).getbbox() is not None
    assert clean.getextrema() == (0, 255)  # background white, ink black (its edges grey)


async def test_results_follow_region_order_not_submission_order(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card")
    regions = body["settings"]["regions"]
    body["settings"]["regions"] = [{**r, "order": 10 - r["order"]} for r in reversed(regions)]
    answer = await emulator.finish(await emulator.submit(body))
    assert [decoded(r).decode() for r in answer["results"]] == expected_texts("id-card")[::-1]


async def test_json_result_has_lines_and_words_with_page_boxes(emulator: Emulator) -> None:
    await emulator.authorize()
    answer = await emulator.finish(await emulator.submit(sample_body("id-card", "JSON")))
    first = json.loads(decoded(answer["results"][1]))
    assert answer["results"][1]["type"] == "JSON"
    assert first["text"] == "JOHN ALBERT"
    assert [w["text"] for w in first["lines"][0]["words"]] == ["JOHN", "ALBERT"]
    x1, y1, x2, y2 = first["lines"][0]["box"]
    rx1, ry1, rx2, ry2 = first["rect"]
    assert rx1 <= x1 < x2 <= rx2 + 4
    assert ry1 - 4 <= y1 < y2 <= ry2 + 4
    assert process_json(decoded(answer["results"][1])).text == "JOHN ALBERT"


async def test_hocr_result_is_valid_hocr(emulator: Emulator) -> None:
    await emulator.authorize()
    answer = await emulator.finish(await emulator.submit(sample_body("application-form", "Hocr")))
    address = process_hocr(decoded(answer["results"][3]))
    assert address.text == "Calle Mayor 12, 3B\n28013 Madrid, Spain"
    assert len(address.blocks) == 2
    assert all(word.box for line in address.blocks for word in line.children)


async def test_pdf_result_is_searchable(emulator: Emulator) -> None:
    await emulator.authorize()
    answer = await emulator.finish(await emulator.submit(sample_body("id-card", "Pdf")))
    pdf = process_pdf(decoded(answer["results"][3]))
    assert pdf.page_count == 1
    assert pdf.text == "X12345678"


async def test_combined_type_gives_each_format_per_region_in_order(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card", "TextAndPdfAndHocr")
    answer = await emulator.finish(await emulator.submit(body))
    assert [r["type"] for r in answer["results"]] == ["Text", "Pdf", "Hocr"] * 5
    texts = [decoded(r).decode() for r in answer["results"][0::3]]
    pdf_texts = [process_pdf(decoded(r)).text for r in answer["results"][1::3]]
    hocr_texts = [process_hocr(decoded(r)).text for r in answer["results"][2::3]]
    assert texts == pdf_texts == hocr_texts == expected_texts("id-card")


async def test_image_png_result_is_the_region(emulator: Emulator) -> None:
    await emulator.authorize()
    answer = await emulator.finish(await emulator.submit(sample_body("id-card", "ImagePNG")))
    first = Image.open(io.BytesIO(decoded(answer["results"][0])))
    rect = sample_body("id-card")["settings"]["regions"][0]["rect"]
    assert first.format == "PNG"
    assert first.size == (
        rect["bottomRightX"] - rect["topLeftX"],
        rect["bottomRightY"] - rect["topLeftY"],
    )


async def test_rotate_turns_the_image_before_recognition(emulator: Emulator) -> None:
    await emulator.authorize()
    sideways = line_image("ROTATED 2024", angle=90)  # text reads bottom to top
    upright = await emulator.finish(await emulator.submit(body_for(sideways, Rotate=90)))
    assert decoded(upright["results"][0]).decode() == "ROTATED 2024"


async def test_make_skew_correct_straightens_a_skewed_line(emulator: Emulator) -> None:
    await emulator.authorize()
    skewed = line_image("DESKEW ME 4711", angle=10)  # Tesseract alone reads nothing at 10°
    fixed = await emulator.finish(await emulator.submit(body_for(skewed, makeSkewCorrect=True)))
    as_is = await emulator.finish(await emulator.submit(body_for(skewed, makeSkewCorrect=False)))
    assert decoded(fixed["results"][0]).decode() == "DESKEW ME 4711"
    assert decoded(as_is["results"][0]).decode() != "DESKEW ME 4711"


async def test_a_language_the_engine_lacks_ends_the_job_in_error(emulator: Emulator) -> None:
    await emulator.authorize()
    answer = await emulator.finish(await emulator.submit(sample_body("id-card", language="german")))
    assert answer["taskStatus"] == "Error"
    assert answer["responseStatusCode"] == "Error"
    assert "language German is not available" in answer["error"]["messages"][0]
    assert answer["results"] is None
