"""Image handling before recognition: decode safely, crop regions, rotate, deskew, clean up."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from ocrflow.emulator.engine import Box

SUPPORTED_FORMATS = {"PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP"}
MAX_PIXELS = 60_000_000
REGION_PADDING_PX = 4
DESKEW_MAX_DEGREES = 15.0  # the service's documented auto-deskew range


class ImageError(Exception):
    """The image or a region cannot be used; the job ends in Error with this message."""


@dataclass(frozen=True, slots=True)
class Crop:
    """A region cut out of the page, ready for recognition, and where it came from."""

    image: Image.Image
    origin: tuple[int, int]
    rect: Box
    warnings: tuple[str, ...] = ()


def load_image(data: bytes) -> Image.Image:
    """Decode image bytes into grayscale; refuse non-images and decompression bombs."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format not in SUPPORTED_FORMATS:
                raise ImageError(
                    f"image format {opened.format} is not supported by the emulator "
                    f"(supported: {', '.join(sorted(SUPPORTED_FORMATS))})"
                )
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"image of {width}x{height} pixels is too large")
            opened.seek(0)  # first frame of a multi-page TIFF or animated GIF
            image = ImageOps.exif_transpose(opened).convert("L")
    except UnidentifiedImageError as exc:
        raise ImageError("the data is not an image the emulator can read") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"the image could not be decoded: {exc}") from exc
    return image


def crop_region(page: Image.Image, rect: Box, index: int) -> Crop:
    """Cut a region (with a little padding) out of the page; clip it to the page's bounds."""
    x1, y1, x2, y2 = rect
    width, height = page.size
    if x2 <= x1 or y2 <= y1:
        raise ImageError(f"region {index} is empty: {rect}")
    clipped = (max(x1, 0), max(y1, 0), min(x2, width), min(y2, height))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise ImageError(f"region {index} {rect} lies outside the {width}x{height} image")
    warnings: tuple[str, ...] = ()
    if clipped != (x1, y1, x2, y2):
        warnings = (f"region {index} {rect} was clipped to the image: {clipped}",)
    padded = (
        max(clipped[0] - REGION_PADDING_PX, 0),
        max(clipped[1] - REGION_PADDING_PX, 0),
        min(clipped[2] + REGION_PADDING_PX, width),
        min(clipped[3] + REGION_PADDING_PX, height),
    )
    return Crop(page.crop(padded), (padded[0], padded[1]), clipped, warnings)


def rotate(image: Image.Image, degrees: int) -> Image.Image:
    """Rotate clockwise by ``degrees`` (the ``Rotate`` setting; its direction is our choice)."""
    if degrees % 360 == 0:
        return image
    return image.rotate(-degrees, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)


def skew_angle(image: Image.Image) -> float:
    """The rotation that makes text lines horizontal, by projection profile, in degrees.

    Rows of a straight text line are either full of ink or empty, so the variance of the row
    means peaks at the right angle. Coarse 1° steps within ±15°, then 0.25° around the best.
    """
    work = ImageOps.invert(image)
    if max(work.size) > 800:
        work.thumbnail((800, 800))

    def sharpness(angle: float) -> float:
        turned = work.rotate(angle, expand=True, fillcolor=0, resample=Image.Resampling.BILINEAR)
        column = turned.resize((1, turned.height), Image.Resampling.BOX)
        rows = [float(v) for v in column.tobytes()]  # one byte per row of an "L" image
        mean = sum(rows) / len(rows)
        return sum((r - mean) ** 2 for r in rows) / len(rows)

    limit = int(DESKEW_MAX_DEGREES)
    coarse = max(range(-limit, limit + 1), key=lambda a: sharpness(float(a)))
    fine = [coarse + step / 4 for step in range(-4, 5)]
    best = max(fine, key=sharpness)
    # Only turn when it clearly helps: a straight crop must stay untouched.
    return float(best) if abs(best) >= 0.5 and sharpness(best) > 1.05 * sharpness(0.0) else 0.0


def deskew(image: Image.Image) -> tuple[Image.Image, float]:
    """Straighten a skewed image (up to ±15°); returns it and the angle applied."""
    angle = skew_angle(image)
    if angle == 0.0:
        return image, 0.0
    turned = image.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    return turned, angle


def binarize(image: Image.Image) -> Image.Image:
    """Black and white by Otsu's threshold."""
    histogram = image.histogram()[:256]
    total = sum(histogram)
    weighted_total = sum(i * h for i, h in enumerate(histogram))
    background = weighted = 0.0
    best_threshold, best_between = 127, -1.0
    for threshold, count in enumerate(histogram):
        background += count
        if background in (0, total):
            continue
        weighted += threshold * count
        mean_bg = weighted / background
        mean_fg = (weighted_total - weighted) / (total - background)
        between = background * (total - background) * (mean_bg - mean_fg) ** 2
        if between > best_between:
            best_threshold, best_between = threshold, between
    return image.point(lambda v: 255 if v > best_threshold else 0)


def upsample(image: Image.Image, min_height_px: int = 48) -> tuple[Image.Image, int]:
    """Enlarge small crops (Tesseract reads glyphs best at 20-40 px); returns the factor."""
    if image.height >= min_height_px:
        return image, 1
    factor = -(-min_height_px // max(image.height, 1))
    size = (image.width * factor, image.height * factor)
    return image.resize(size, Image.Resampling.LANCZOS), factor
