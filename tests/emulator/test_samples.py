"""The shipped samples are exactly what the drawing script makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageOps

from ocrflow.emulator.samples import SAMPLES as MAKERS
from ocrflow.emulator.samples import turned_rect, write_samples
from tests.emulator.conftest import SAMPLE_NAMES, SAMPLES


def test_shipped_samples_match_a_fresh_drawing(tmp_path: Path) -> None:
    written = write_samples(tmp_path)
    assert sorted(path.name.removesuffix(".regions.json") for path in written) == sorted(MAKERS)
    assert sorted(MAKERS) == SAMPLE_NAMES  # and nothing else is shipped
    for regions_file in written:
        shipped = SAMPLES / regions_file.name
        assert json.loads(regions_file.read_text()) == json.loads(shipped.read_text())
        document = json.loads(shipped.read_text())
        with (
            Image.open(tmp_path / document["image"]) as fresh,
            Image.open(SAMPLES / document["image"]) as kept,
        ):
            assert fresh.size == kept.size
            assert (
                ImageChops.difference(fresh.convert("RGB"), kept.convert("RGB")).getbbox() is None
            )


@pytest.mark.parametrize("angle", [-7.0, -2.5, 0.0, 2.5, 11.0])
def test_a_turned_field_keeps_its_text_inside_its_rect(angle: float) -> None:
    # Measured against Pillow's own rotation: ink filling the rect, turned, lies in the rect's
    # turned bounding box, and fills it to within a pixel or two.
    size, rect = (1240, 900), (372, 225, 783, 272)
    page = Image.new("L", size, 255)
    page.paste(0, rect)
    ink = ImageOps.invert(page.rotate(angle, fillcolor=255, resample=Image.Resampling.BICUBIC))
    x1, y1, x2, y2 = turned_rect(rect, angle, size)
    found = ink.point(lambda v: 255 if v > 64 else 0).getbbox()
    assert found is not None
    assert x1 <= found[0] <= x1 + 2
    assert y1 <= found[1] <= y1 + 2
    assert x2 - 2 <= found[2] <= x2 + 1
    assert y2 - 2 <= found[3] <= y2 + 1


def test_only_the_scanned_samples_ask_for_binarization() -> None:
    for name, make in MAKERS.items():
        settings = make().regions_document()["settings"]
        assert isinstance(settings, dict)
        scanned = name in {"id-card-scan", "form-rotated"}
        assert settings.get("makeBinarization", False) is scanned
