"""Sample documents drawn with Pillow (ID cards, forms), each with its regions file.

``python -m ocrflow.emulator.samples [--out samples]`` writes ``<name>.png`` and
``<name>.regions.json`` for each sample. A regions file holds the wire settings and, per
region, its name, rect, order and the text it shows; the demo submits them and the tests
compare what comes back. Two are clean; two look scanned (:func:`degrade`: blur, grain,
speckle, low contrast, and one turned by a small angle) and ask for ``makeBinarization``.
Drawn with Pillow's built-in font and a seeded noise, so the pixels do not depend on the
machine.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

INK = (20, 20, 24)
FAINT = (96, 96, 104)
FIELD_PADDING_PX = 8


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Field:
    """One region to read: its name, what it shows, and where."""

    name: str
    text: str
    rect: Box


@dataclass(frozen=True)
class Sample:
    """A drawn document and its fields, in reading order."""

    name: str
    image: Image.Image
    fields: tuple[Field, ...]
    scanned: bool = False  # noisy: its regions file asks for makeBinarization

    def regions_document(self) -> dict[str, object]:
        """The regions file: wire settings plus named regions with their expected text."""
        settings: dict[str, object] = {
            "language": "English",
            "resultType": "Text",
            "makeSkewCorrect": True,
        }
        if self.scanned:
            settings["makeBinarization"] = True
        return {
            "image": f"{self.name}.png",
            "settings": settings,
            "regions": [
                {
                    "name": field.name,
                    "order": order,
                    "rect": {
                        "topLeftX": field.rect[0],
                        "topLeftY": field.rect[1],
                        "bottomRightX": field.rect[2],
                        "bottomRightY": field.rect[3],
                    },
                    "expected": field.text,
                }
                for order, field in enumerate(self.fields)
            ],
        }


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _write_value(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int
) -> tuple[int, int, int, int]:
    font = _font(size)
    draw.multiline_text(xy, text, font=font, fill=INK, spacing=10)
    left, top, right, bottom = (
        round(v) for v in draw.multiline_textbbox(xy, text, font=font, spacing=10)
    )
    return (
        left - FIELD_PADDING_PX,
        top - FIELD_PADDING_PX,
        right + FIELD_PADDING_PX,
        bottom + FIELD_PADDING_PX,
    )


def _card(name: str, values: list[tuple[str, str, str]], mrz: str) -> Sample:
    """A fictional identity card: five single-line fields beside a photo box."""
    image = Image.new("RGB", (1000, 630), (236, 242, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1000, 90), fill=(30, 70, 140))
    draw.text((30, 22), "REPUBLIC OF EXAMPLE  IDENTITY CARD", font=_font(40), fill="white")
    draw.rectangle((40, 130, 280, 440), outline=(120, 120, 120), width=3)
    draw.text((92, 270), "PHOTO", font=_font(28), fill=(150, 150, 150))
    fields = []
    y = 130
    for field_name, label, value in values:
        draw.text((330, y), label.upper(), font=_font(20), fill=FAINT)
        fields.append(Field(field_name, value, _write_value(draw, (330, y + 26), value, 34)))
        y += 92
    draw.text((40, 580), mrz, font=_font(26), fill=INK)
    return Sample(name, image, tuple(fields))


def _form(name: str, values: list[tuple[str, str, str]]) -> Sample:
    """A fictional application form: single lines and a two-line address in boxes."""
    image = Image.new("RGB", (1240, 900), "white")
    draw = ImageDraw.Draw(image)
    draw.text((60, 40), "ACCOUNT APPLICATION FORM", font=_font(44), fill=INK)
    draw.line((60, 105, 1180, 105), fill=INK, width=3)
    fields = []
    y = 140
    for field_name, label, value in values:
        draw.text((60, y + 8), f"{label}:", font=_font(24), fill=FAINT)
        rect = _write_value(draw, (380, y), value, 32)
        draw.rectangle((370, y - 12, 1180, rect[3] + 6), outline=(170, 170, 170), width=2)
        fields.append(Field(field_name, value, rect))
        y = rect[3] + 40
    return Sample(name, image, tuple(fields))


def id_card() -> Sample:
    """A clean identity card."""
    values = [
        ("surname", "Surname", "SMITH"),
        ("given_names", "Given names", "JOHN ALBERT"),
        ("date_of_birth", "Date of birth", "1985-04-12"),
        ("document_number", "Document no.", "X12345678"),
        ("expiry_date", "Expiry", "2031-09-30"),
    ]
    return _card("id-card", values, "IDEXMPL<<SMITH<<JOHN<ALBERT<<<<<<<<<<")


def application_form() -> Sample:
    """A clean application form."""
    values = [
        ("full_name", "Full name", "Maria Garcia Lopez"),
        ("email", "Email", "maria.garcia@example.com"),
        ("phone", "Phone", "+34 612 345 678"),
        ("address", "Postal address", "Calle Mayor 12, 3B\n28013 Madrid, Spain"),
        ("amount", "Initial deposit", "EUR 1,250.00"),
        ("date", "Date", "2026-11-28"),
    ]
    return _form("application-form", values)


def id_card_scan() -> Sample:
    """Another card as a cheap scanner gives it back: blurred, grainy, speckled, greyed."""
    values = [
        ("surname", "Surname", "MURPHY"),
        ("given_names", "Given names", "SIOBHAN AOIFE"),
        ("nationality", "Nationality", "IRL"),
        ("date_of_birth", "Date of birth", "1995-11-03"),
        ("document_number", "Document no.", "TK4821937"),
    ]
    card = _card("id-card-scan", values, "IDEXMPL<<MURPHY<<SIOBHAN<AOIFE<<<<<<<")
    return degrade(card, SCAN, seed=1)


def form_rotated() -> Sample:
    """Another form, fed into the scanner a little crooked."""
    values = [
        ("full_name", "Full name", "Liam O'Connor"),
        ("email", "Email", "liam.oconnor@example.ie"),
        ("phone", "Phone", "+353 87 123 4567"),
        ("address", "Postal address", "14 Harbour Road, Apt 2\nDun Laoghaire, Dublin"),
        ("amount", "Initial deposit", "EUR 980.50"),
        ("date", "Date", "2026-11-30"),
    ]
    return degrade(_form("form-rotated", values), TURNED, seed=2)


@dataclass(frozen=True)
class Noise:
    """How a scan spoils a page: blur radius, grain amplitude, share of specks, the grey
    levels that black and white become, and the angle it is turned by (counter-clockwise)."""

    blur: float = 0.8
    grain: int = 10
    speckle: float = 0.002
    black: int = 60
    white: int = 215
    angle: float = 0.0


SCAN = Noise()
TURNED = Noise(blur=0.6, grain=6, speckle=0.001, black=40, white=230, angle=2.5)


def degrade(sample: Sample, noise: Noise, *, seed: int) -> Sample:
    """The sample as scanned: greyscale, contrast squeezed, turned (its fields' rects turned
    with it, as bounding boxes), blurred, grainy and speckled; the same for the same seed."""
    rng = random.Random(seed)  # noqa: S311 - noise that must repeat, not a secret
    image = sample.image.convert("L")
    image = image.point(lambda v: round(noise.black + (noise.white - noise.black) * v / 255))
    fields = sample.fields
    if noise.angle:
        image = image.rotate(noise.angle, fillcolor=noise.white, resample=Image.Resampling.BICUBIC)
        fields = tuple(
            Field(f.name, f.text, turned_rect(f.rect, noise.angle, image.size)) for f in fields
        )
    image = image.filter(ImageFilter.GaussianBlur(noise.blur))
    if noise.grain:
        # Uniform grain in [-grain, grain]: random bytes mapped to the two halves, added and
        # taken away, so the noise costs two table lookups instead of a loop over the pixels.
        raw = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
        step = 256 / (2 * noise.grain + 1)
        offsets = [int(v / step) - noise.grain for v in range(256)]
        lighter = raw.point([max(o, 0) for o in offsets])
        darker = raw.point([max(-o, 0) for o in offsets])
        image = ImageChops.subtract(ImageChops.add(image, lighter), darker)
    pixels = image.load()
    assert pixels is not None  # noqa: S101 - a loaded image has its pixels
    for _ in range(int(image.width * image.height * noise.speckle)):
        x, y = rng.randrange(image.width - 2), rng.randrange(image.height - 2)
        side, level = rng.choice((1, 1, 2)), rng.randint(noise.black, noise.black + 40)
        for dx in range(side):
            for dy in range(side):
                pixels[x + dx, y + dy] = level
    return Sample(sample.name, image, fields, scanned=True)


def turned_rect(rect: Box, angle: float, size: tuple[int, int]) -> Box:
    """The bounding box of ``rect`` turned ``angle`` degrees counter-clockwise about the
    centre of an image of ``size``, as ``Image.rotate`` turns it."""
    cx, cy = size[0] / 2, size[1] / 2
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    corners = [
        (cx + (x - cx) * cos + (y - cy) * sin, cy - (x - cx) * sin + (y - cy) * cos)
        for x in (rect[0], rect[2])
        for y in (rect[1], rect[3])
    ]
    return (
        math.floor(min(x for x, _ in corners)),
        math.floor(min(y for _, y in corners)),
        math.ceil(max(x for x, _ in corners)),
        math.ceil(max(y for _, y in corners)),
    )


SAMPLES: dict[str, Callable[[], Sample]] = {
    "id-card": id_card,
    "application-form": application_form,
    "id-card-scan": id_card_scan,
    "form-rotated": form_rotated,
}


def write_samples(out: Path) -> list[Path]:
    """Draw every sample into ``out``; returns the regions files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for make in SAMPLES.values():
        sample = make()
        sample.image.save(out / f"{sample.name}.png", optimize=True)
        regions_file = out / f"{sample.name}.regions.json"
        regions_file.write_text(json.dumps(sample.regions_document(), indent=2) + "\n")
        written.append(regions_file)
    return written


def main(argv: list[str] | None = None) -> None:
    """Command line: draw the samples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("samples"), help="folder to write to")
    args = parser.parse_args(argv)
    for path in write_samples(args.out):
        print(path)


if __name__ == "__main__":
    main()
