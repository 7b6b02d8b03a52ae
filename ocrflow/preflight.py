"""Checks before a POST: never pay for a job that must fail.

The image must decode in full (a text file named ``.png`` or a truncated PNG is refused here,
not by a paid job that ends ``Error``), each region must be non-empty and lie inside the
image, and there must be regions the service can read. The settings' enums are the contract's
already: the wire models accept nothing else. PDF and SVG, which the service reads but Pillow
does not, are checked by their header only, and their regions by sign and size.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ocrflow.errors import OcrflowError
from ocrflow.models import Region

# The formats the service reads (contract §2: BMP, JPEG, PNG, single-page TIFF, GIF, SVG, PDF).
RASTER_FORMATS = frozenset({"BMP", "JPEG", "PNG", "TIFF", "GIF"})
MAX_PIXELS = 200_000_000  # beyond this a decode is a memory hazard, not a scan


class InputError(OcrflowError, ValueError):
    """Input that can never succeed: refused before anything is sent."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the check learned of an image: its format and, for raster images, its size."""

    format: str
    width: int | None = None
    height: int | None = None


def inspect_image(data: bytes, *, name: str = "image") -> ImageInfo:
    """Decode the whole image (truncation shows only then); raise :class:`InputError`."""
    head = data[:1024].lstrip()
    if not data:
        raise InputError(f"{name} is empty")
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise InputError(f"{name} is a truncated PDF (no %%EOF at its end)")
        return ImageInfo("PDF")
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096]:
        return ImageInfo("SVG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or "unknown"
                width, height = image.size
                if kind not in RASTER_FORMATS:
                    raise InputError(
                        f"{name} is {kind}, which the service does not read "
                        f"(BMP, JPEG, PNG, TIFF, GIF, SVG or PDF)"
                    )
                if width * height > MAX_PIXELS:
                    raise InputError(f"{name} has {width}x{height} pixels, too many to read")
                image.load()  # a truncated or corrupt file fails here, not at the header
    except UnidentifiedImageError as exc:
        raise InputError(f"{name} is not an image (its content is no known image format)") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name} cannot be decoded: {exc}") from exc
    return ImageInfo(kind, width, height)


def check_regions(regions: Sequence[Region], info: ImageInfo, *, name: str = "image") -> None:
    """Each region non-empty and, where the image's size is known, inside it."""
    for index, region in enumerate(regions):
        rect = region.rect
        corners = (rect.top_left_x, rect.top_left_y, rect.bottom_right_x, rect.bottom_right_y)
        if rect.width <= 0 or rect.height <= 0:
            raise InputError(
                f"region {index} (order {region.order}) of {name} is empty or inverted: "
                f"corners {corners} (top-left must be above and left of bottom-right)"
            )
        if min(corners) < 0:
            raise InputError(
                f"region {index} (order {region.order}) of {name} has a negative corner: {corners}"
            )
        if (
            info.width is not None
            and info.height is not None
            and (rect.bottom_right_x > info.width or rect.bottom_right_y > info.height)
        ):
            raise InputError(
                f"region {index} (order {region.order}) of {name} {corners} reaches outside the "
                f"{info.width}x{info.height} image"
            )


def check_submission(data: bytes, regions: Sequence[Region], *, name: str = "image") -> ImageInfo:
    """Everything checked before a POST; raises :class:`InputError` with the first problem."""
    info = inspect_image(data, name=name)
    check_regions(regions, info, name=name)
    return info
