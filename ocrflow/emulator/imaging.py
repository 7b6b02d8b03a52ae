"""Image handling before recognition: decode safely, crop regions, rotate, deskew, clean up."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageFilter, ImageOps, UnidentifiedImageError

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
    Measured on the ink alone (:func:`ink_mask`): a grey or grainy background would fill the
    corners that turning opens with a different shade than its own and tilt the profile (a
    low-contrast scan read as 8.5° skewed, every field lost).
    """
    work = ink_mask(image)
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


def otsu_threshold(image: Image.Image) -> int:
    """The grey level that best splits the histogram in two (Otsu): ink at or below it."""
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
    return best_threshold


def ink_mask(image: Image.Image) -> Image.Image:
    """Ink white (255) on black (0): Otsu's threshold of the image with its grain smoothed."""
    smooth = image.filter(ImageFilter.MedianFilter(3))
    level = otsu_threshold(smooth)
    return smooth.point(lambda v: 255 if v <= level else 0)


def binarize(image: Image.Image) -> Image.Image:
    """What ``makeBinarization`` does here: the background made white, speckle removed.

    Not a hard black-and-white image: Tesseract's LSTM reads glyphs by their anti-aliased
    edges and splits digits without them (``X123456 78`` on a clean card). So the levels
    between the ink and a little above Otsu's threshold are stretched to black-to-white and
    everything lighter (grain, a grey or uneven background) becomes white; then the ink's
    specks, small blots far too small to be a glyph or a dot of one, are whitened too (they
    read as a stray ``.`` or ``-``). Measured in docs/emulator.md and by ``make bench-ocr``.
    """
    smooth = image.filter(ImageFilter.MedianFilter(3))
    level = otsu_threshold(smooth)
    histogram = smooth.histogram()[:256]
    # Each level from its own class: a page that is 1% ink has no ink at its 2nd percentile.
    ink = _percentile(histogram[: level + 1], 0.1)
    background = level + 1 + _percentile(histogram[level + 1 :], 0.5)
    white_from = level + BACKGROUND_MARGIN * max(background - level, 1)
    span = max(white_from - ink, 1)
    ramp = [
        0 if v <= ink else 255 if v >= white_from else round(255 * (v - ink) / span)
        for v in range(256)
    ]
    cleaned = image.point(ramp)
    specks = speck_mask(image.point(lambda v: 255 if v <= level else 0))
    if specks.getbbox() is None:
        return cleaned
    # A speck's blurred rim is lighter than the threshold: whiten a pixel around it too.
    return ImageChops.lighter(cleaned, specks.filter(ImageFilter.MaxFilter(3)))


def speck_mask(ink: Image.Image) -> Image.Image:
    """The specks of an ink mask (ink 255), white on black.

    A speck is an 8-connected blot of ink no larger than a square of ``SPECK_SIDE`` of the
    glyph height: the dot of an ``i`` or a full stop is larger (about a stroke's width
    squared), a scanner's speck smaller. The glyph height is that of the taller blots (75th
    percentile of those over 4 pixels, so that the specks themselves do not lower it).
    """
    blots = ink_blots(ink)
    if not blots:
        return Image.new("L", ink.size, 0)
    heights = sorted(b.height for b in blots if b.area > 4) or [max(b.height for b in blots)]
    glyph = heights[min(len(heights) - 1, len(heights) * 3 // 4)]
    largest_speck = (SPECK_SIDE * glyph) ** 2
    out = bytearray(ink.width * ink.height)
    for blot in blots:
        if blot.area <= largest_speck:
            for pixel in blot.pixels:
                out[pixel] = 255
    return Image.frombytes("L", ink.size, bytes(out))


# binarize's and speck_mask's proportions, chosen on noisy copies of the clean samples (seeds 0
# and 1; bench-ocr measures them on others): docs/emulator.md
BACKGROUND_MARGIN = 0.3  # of the way from Otsu's threshold to the background's level
SPECK_SIDE = 0.12  # of the glyph height: a blot this small is never text


@dataclass(slots=True)
class Blot:
    """A connected blot of ink: its pixels (flat indexes) and bounding box."""

    pixels: list[int]
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def area(self) -> int:
        """Its pixels."""
        return len(self.pixels)

    @property
    def height(self) -> int:
        """Rows from its top to its bottom."""
        return self.y2 - self.y1 + 1


def ink_blots(ink: Image.Image) -> list[Blot]:
    """The 8-connected blots of an ink mask (ink 255), by flood fill over the ink only."""
    width, height = ink.size
    todo = bytearray(ink.tobytes())  # 255: ink not yet reached; 0: background or done
    blots = []
    start = todo.find(255)
    while start != -1:
        todo[start] = 0
        stack, pixels = [start], []
        x1 = y1 = max(width, height)
        x2 = y2 = -1
        while stack:
            pixel = stack.pop()
            pixels.append(pixel)
            y, x = divmod(pixel, width)
            x1, x2, y1, y2 = min(x1, x), max(x2, x), min(y1, y), max(y2, y)
            for ny in (y - 1, y, y + 1):
                if 0 <= ny < height:
                    for nx in (x - 1, x, x + 1):
                        if 0 <= nx < width and todo[ny * width + nx]:
                            todo[ny * width + nx] = 0
                            stack.append(ny * width + nx)
        blots.append(Blot(pixels, x1, y1, x2, y2))
        start = todo.find(255, start)
    return blots


def _percentile(histogram: list[int], share: float) -> int:
    """The index of ``histogram`` below which ``share`` of its counts lie."""
    wanted, seen = share * sum(histogram), 0
    for level, count in enumerate(histogram):
        seen += count
        if seen >= wanted:
            return level
    return len(histogram) - 1


def upsample(image: Image.Image, min_height_px: int = 48) -> tuple[Image.Image, int]:
    """Enlarge small crops (Tesseract reads glyphs best at 20-40 px); returns the factor."""
    if image.height >= min_height_px:
        return image, 1
    factor = -(-min_height_px // max(image.height, 1))
    size = (image.width * factor, image.height * factor)
    return image.resize(size, Image.Resampling.LANCZOS), factor
