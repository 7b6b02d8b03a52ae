"""Sample documents drawn with Pillow (an ID card, a form), each with its regions file.

``python -m ocrflow.emulator.samples [--out samples]`` writes ``<name>.png`` and
``<name>.regions.json`` for each sample. A regions file holds the wire settings and, per
region, its name, rect, order and the text it shows; the demo submits them and the tests
compare what comes back.
Drawn with Pillow's built-in font, so the pixels do not depend on the machine's fonts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

INK = (20, 20, 24)
FAINT = (96, 96, 104)
FIELD_PADDING_PX = 8


@dataclass(frozen=True)
class Field:
    """One region to read: its name, what it shows, and where."""

    name: str
    text: str
    rect: tuple[int, int, int, int]


@dataclass(frozen=True)
class Sample:
    """A drawn document and its fields, in reading order."""

    name: str
    image: Image.Image
    fields: tuple[Field, ...]

    def regions_document(self) -> dict[str, object]:
        """The regions file: wire settings plus named regions with their expected text."""
        return {
            "image": f"{self.name}.png",
            "settings": {"language": "English", "resultType": "Text", "makeSkewCorrect": True},
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


def id_card() -> Sample:
    """A fictional identity card: five single-line fields."""
    image = Image.new("RGB", (1000, 630), (236, 242, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1000, 90), fill=(30, 70, 140))
    draw.text((30, 22), "REPUBLIC OF EXAMPLE  IDENTITY CARD", font=_font(40), fill="white")
    draw.rectangle((40, 130, 280, 440), outline=(120, 120, 120), width=3)
    draw.text((92, 270), "PHOTO", font=_font(28), fill=(150, 150, 150))
    values = [
        ("surname", "Surname", "SMITH"),
        ("given_names", "Given names", "JOHN ALBERT"),
        ("date_of_birth", "Date of birth", "1985-04-12"),
        ("document_number", "Document no.", "X12345678"),
        ("expiry_date", "Expiry", "2031-09-30"),
    ]
    fields = []
    y = 130
    for name, label, value in values:
        draw.text((330, y), label.upper(), font=_font(20), fill=FAINT)
        fields.append(Field(name, value, _write_value(draw, (330, y + 26), value, 34)))
        y += 92
    draw.text((40, 580), "IDEXMPL<<SMITH<<JOHN<ALBERT<<<<<<<<<<", font=_font(26), fill=INK)
    return Sample("id-card", image, tuple(fields))


def application_form() -> Sample:
    """A fictional application form: single lines and a two-line address."""
    image = Image.new("RGB", (1240, 900), "white")
    draw = ImageDraw.Draw(image)
    draw.text((60, 40), "ACCOUNT APPLICATION FORM", font=_font(44), fill=INK)
    draw.line((60, 105, 1180, 105), fill=INK, width=3)
    values = [
        ("full_name", "Full name", "Maria Garcia Lopez"),
        ("email", "Email", "maria.garcia@example.com"),
        ("phone", "Phone", "+34 612 345 678"),
        ("address", "Postal address", "Calle Mayor 12, 3B\n28013 Madrid, Spain"),
        ("amount", "Initial deposit", "EUR 1,250.00"),
        ("date", "Date", "2026-11-28"),
    ]
    fields = []
    y = 140
    for name, label, value in values:
        draw.text((60, y + 8), f"{label}:", font=_font(24), fill=FAINT)
        rect = _write_value(draw, (380, y), value, 32)
        draw.rectangle((370, y - 12, 1180, rect[3] + 6), outline=(170, 170, 170), width=2)
        fields.append(Field(name, value, rect))
        y = rect[3] + 40
    return Sample("application-form", image, tuple(fields))


SAMPLES: dict[str, Callable[[], Sample]] = {
    "id-card": id_card,
    "application-form": application_form,
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
