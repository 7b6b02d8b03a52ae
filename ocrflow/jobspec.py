"""What to submit: an image, its regions and settings; read from a regions file or arguments.

A regions file is JSON: ``{"image": "card.png", "settings": {…wire settings…}, "regions":
[{"name": "surname", "order": 0, "rect": {"topLeftX": …}, "expected": "SMITH"}]}``. The image
path is relative to the file; ``name`` and ``expected`` are ours (the vendor has neither).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ocrflow.models import RecognizeRegionsSettings, Rect, Region, to_wire

_REGION_ARG = re.compile(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*")
MAX_REGIONS = 1000


class RegionSpec(BaseModel):
    """A region to read, with an optional name and the text it is expected to show."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rect: Rect
    order: int = 0
    name: str | None = Field(None, max_length=200)
    expected: str | None = None

    def to_region(self) -> Region:
        """The wire region."""
        return Region(rect=self.rect, order=self.order)

    def stored(self) -> dict[str, Any]:
        """The form kept in the ledger."""
        out: dict[str, Any] = {"rect": to_wire(self.rect), "order": self.order}
        if self.name:
            out["name"] = self.name
        return out


class JobSpec(BaseModel):
    """One image to submit with its regions and settings."""

    image: Path
    regions: list[RegionSpec] = Field(min_length=1, max_length=MAX_REGIONS)
    settings: RecognizeRegionsSettings = Field(default_factory=RecognizeRegionsSettings)

    def wire_regions(self) -> list[Region]:
        """The regions as sent."""
        return [region.to_region() for region in self.regions]

    def with_extra_regions(self, extra: list[RegionSpec]) -> JobSpec:
        """This job with more regions, placed after its own (their ``order`` shifted)."""
        base = max((region.order for region in self.regions), default=-1) + 1
        shifted = [region.model_copy(update={"order": base + region.order}) for region in extra]
        return self.model_copy(update={"regions": [*self.regions, *shifted]})

    def region_names(self) -> list[str | None]:
        """Region names in ascending ``order``, the order results come back in."""
        return [r.name for r in sorted(self.regions, key=lambda r: r.order)]


def parse_region_arg(text: str, order: int) -> RegionSpec:
    """Read ``x,y,w,h`` (pixels) into a region; a clear error otherwise."""
    match = _REGION_ARG.fullmatch(text)
    if not match:
        raise ValueError(
            f"bad region {text!r}: expected x,y,width,height in pixels, e.g. 10,20,300,40"
        )
    x, y, width, height = (int(g) for g in match.groups())
    if width == 0 or height == 0:
        raise ValueError(f"bad region {text!r}: width and height must be above 0")
    return RegionSpec(rect=Rect.from_xywh(x, y, width, height), order=order)


def load_regions_file(path: Path) -> JobSpec:
    """Read a regions file; its ``image`` is resolved against the file's folder."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read regions file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValueError(f"regions file {path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"regions file {path} must hold a JSON object")
    if "image" in document and isinstance(document["image"], str):
        document["image"] = str(path.parent / document["image"])
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ValueError(f"regions file {path}: {where}: {first['msg']}") from exc
