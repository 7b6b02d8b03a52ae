"""What to submit: an image, its regions and settings; read from a regions file or arguments.

A regions file is JSON: ``{"image": "card.png", "settings": {…wire settings…}, "regions":
[{"name": "surname", "order": 0, "rect": {"topLeftX": …}, "expected": "SMITH"}]}``. The image
path is relative to the file; ``name`` and ``expected`` are ours (the vendor has neither).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
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
    """Read a regions file strictly; its ``image`` is resolved against the file's folder.

    Every problem is a ``ValueError`` naming the file and the field: keys it does not know
    (a typo would otherwise be ignored and the service's default sent), a rect corner missing
    or not an integer, a top-left corner that is not above and left of the bottom-right one,
    nesting deeper than any regions file needs.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(f"regions file {path} has {size} bytes, over {MAX_FILE_BYTES}")
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read regions file {path}: {exc.strerror or exc}") from exc
    except RecursionError:
        raise ValueError(f"regions file {path} is nested too deeply to be a regions file") from None
    except ValueError as exc:
        if str(exc).startswith("regions file"):
            raise
        raise ValueError(f"regions file {path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"regions file {path} must hold a JSON object")
    problem = _shape_problem(document)
    if problem:
        raise ValueError(f"regions file {path}: {problem}")
    if "image" in document and isinstance(document["image"], str):
        document["image"] = str(path.parent / document["image"])
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ValueError(f"regions file {path}: {where}: {first['msg']}") from exc


MAX_FILE_BYTES = 16 * 1024 * 1024
_MAX_DEPTH = 8  # a regions file is 4 levels deep: file, regions, region, rect
_FILE_KEYS = {"image", "settings", "regions"}
_REGION_KEYS = {"rect", "order", "name", "expected"}
_RECT_KEYS = ("topLeftX", "topLeftY", "bottomRightX", "bottomRightY")


def _depth(node: object) -> int:
    """How deeply a JSON value nests (iterative: a hostile file cannot blow the stack)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if level > _MAX_DEPTH:
            return level
        if isinstance(value, dict):
            stack.extend((child, level + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, level + 1) for child in value)
    return deepest


def _shape_problem(document: dict[str, Any]) -> str | None:
    """The first thing wrong with a regions file's shape, or None."""
    if _depth(document) > _MAX_DEPTH:
        return f"nested deeper than {_MAX_DEPTH} levels: not a regions file"
    unknown = sorted(set(document) - _FILE_KEYS)
    if unknown:
        return f"unknown key(s) {', '.join(map(repr, unknown))} (known: image, settings, regions)"
    settings = document.get("settings", {})
    if not isinstance(settings, dict):
        return "settings: must be an object of the service's settings"
    known = {name.casefold() for name in _setting_names()}
    strange = sorted(key for key in settings if str(key).casefold() not in known)
    if strange:
        return f"settings: unknown setting(s) {', '.join(map(repr, strange))}"
    regions = document.get("regions")
    if not isinstance(regions, list):
        return "regions: must be a list of regions"
    for index, region in enumerate(regions):
        problem = _region_problem(region)
        if problem:
            return f"regions[{index}]{problem}"
    return None


def _region_problem(region: object) -> str | None:
    if not isinstance(region, dict):
        return ": must be an object with a rect"
    region = _folded(region, _REGION_KEYS)
    unknown = sorted(set(region) - _REGION_KEYS)
    if unknown:
        return f": unknown key(s) {', '.join(map(repr, unknown))} (known: {_known(_REGION_KEYS)})"
    rect = region.get("rect")
    if not isinstance(rect, dict):
        return f".rect: missing, or not an object with {_known(_RECT_KEYS)}"
    rect = _folded(rect, _RECT_KEYS)  # the service reads keys in any case; so do we
    extra = sorted(set(rect) - set(_RECT_KEYS))
    if extra:
        return f".rect: unknown key(s) {', '.join(map(repr, extra))}"
    for key in _RECT_KEYS:
        value = rect.get(key)
        if key not in rect:
            return f".rect.{key}: missing (every corner must be given)"
        if not isinstance(value, int) or isinstance(value, bool):
            return f".rect.{key}: must be a whole number of pixels, not {value!r}"
        if value < 0:
            return f".rect.{key}: must not be negative ({value})"
    if rect["topLeftX"] >= rect["bottomRightX"] or rect["topLeftY"] >= rect["bottomRightY"]:
        corners = tuple(rect[key] for key in _RECT_KEYS)
        return f".rect: top-left must be above and left of bottom-right, got {corners}"
    order = region.get("order", 0)
    if not isinstance(order, int) or isinstance(order, bool):
        return f".order: must be a whole number, not {order!r}"
    return None


def _folded(mapping: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """Keys matched to ``names`` in any letter case (others kept as they are)."""
    canonical = {name.casefold(): name for name in names}
    return {canonical.get(str(key).casefold(), key): value for key, value in mapping.items()}


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names) if isinstance(names, set) else names)


def _setting_names() -> set[str]:
    fields = RecognizeRegionsSettings.model_fields
    return {field.alias or name for name, field in fields.items()} | set(fields)
