"""The shipped samples are exactly what the drawing script makes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageChops

from ocrflow.emulator.samples import SAMPLES as MAKERS
from ocrflow.emulator.samples import write_samples
from tests.emulator.conftest import SAMPLES


def test_shipped_samples_match_a_fresh_drawing(tmp_path: Path) -> None:
    written = write_samples(tmp_path)
    assert len(written) == len(MAKERS) == 2
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


def test_every_region_lies_inside_its_image_and_has_text() -> None:
    for regions_file in sorted(SAMPLES.glob("*.regions.json")):
        document = json.loads(regions_file.read_text())
        with Image.open(SAMPLES / document["image"]) as image:
            width, height = image.size
        for region in document["regions"]:
            rect = region["rect"]
            assert 0 <= rect["topLeftX"] < rect["bottomRightX"] <= width
            assert 0 <= rect["topLeftY"] < rect["bottomRightY"] <= height
            assert region["expected"].strip()
