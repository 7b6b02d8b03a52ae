"""Bad input: a clear 400 or a job in Error with a message; never a 500, never a hung job."""

from __future__ import annotations

import base64

import pytest

from tests.emulator.conftest import Emulator, sample_body


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", ""),
        (b"   ", ""),
        (b"{not json", "$"),
        (b'{"settings": {}}', "$.image"),
        (b'{"image": "aGVsbG8="}', "$.settings"),
        (b'{"image": "aGVsbG8=", "settings": {"language": "Klingon"}}', "$.settings.language"),
        (b'{"image": "aGVsbG8=", "settings": {"resultType": "Xml"}}', "$.settings.resultType"),
        (b'{"image": "%%%", "settings": {}}', "image"),
        (b'{"image": "", "settings": {}}', "image"),
    ],
)
async def test_malformed_bodies_are_400_validation_problems(
    emulator: Emulator, content: bytes, field: str
) -> None:
    await emulator.authorize()
    answer = await emulator.http.post(
        "/v5.0/ocr/RecognizeRegions", content=content, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["title"] == "One or more validation errors occurred."
    assert field in problem["errors"]


async def test_tolerant_reading_of_settings(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card")
    settings = body["settings"]
    body["settings"] = {
        "LANGUAGE": "english",
        "resulttype": "text",
        "rotate": 0,
        "Regions": [
            {"rect": {k.lower(): v for k, v in r["rect"].items()}, "ORDER": r["order"]}
            for r in settings["regions"]
        ],
        "somethingNew": True,
    }
    answer = await emulator.finish(await emulator.submit(body))
    assert answer["taskStatus"] == "Completed"
    assert len(answer["results"]) == 5


async def test_bytes_that_are_no_image_end_in_error(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card")
    body["image"] = base64.b64encode(b"%PDF-1.7 this is not a picture").decode()
    answer = await emulator.finish(await emulator.submit(body))
    assert answer["taskStatus"] == "Error"
    assert "not an image" in answer["error"]["messages"][0]


async def test_a_region_outside_the_image_ends_in_error(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card")
    body["settings"]["regions"].append(
        {"rect": {"topLeftX": 5000, "topLeftY": 10, "bottomRightX": 5100, "bottomRightY": 40}}
    )
    answer = await emulator.finish(await emulator.submit(body))
    assert answer["taskStatus"] == "Error"
    assert "outside the 1000x630 image" in answer["error"]["messages"][0]


async def test_an_empty_region_ends_in_error(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card")
    body["settings"]["regions"] = [{"rect": {}}]  # every corner missing: 0
    answer = await emulator.finish(await emulator.submit(body))
    assert answer["taskStatus"] == "Error"
    assert "region 0 is empty" in answer["error"]["messages"][0]


async def test_a_region_partly_outside_is_clipped_with_a_warning(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card")
    first = body["settings"]["regions"][0]["rect"]
    body["settings"]["regions"] = [{"rect": {**first, "bottomRightX": 1200}}]
    answer = await emulator.finish(await emulator.submit(body))
    assert answer["taskStatus"] == "Completed"
    assert "clipped" in answer["error"]["warnings"][0]


async def test_an_oversized_image_is_a_400(emulator: Emulator) -> None:
    await emulator.authorize()
    emulator.state.settings.max_image_bytes = 1000
    answer = await emulator.http.post("/v5.0/ocr/RecognizeRegions", json=sample_body("id-card"))
    assert answer.status_code == 400
    assert "larger than 1000 bytes" in answer.json()["errors"]["image"][0]
