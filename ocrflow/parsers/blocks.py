"""What a parser makes of one entry: text blocks with their boxes, and the text itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels


@dataclass(slots=True)
class TextBlock:
    """A piece of recognised text: a line with its words, or a word."""

    text: str
    box: Box | None = None
    confidence: float | None = None
    children: list[TextBlock] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for storage."""
        out: dict[str, Any] = {"text": self.text, "box": list(self.box) if self.box else None}
        if self.confidence is not None:
            out["confidence"] = self.confidence
        if self.children:
            out["words"] = [child.to_dict() for child in self.children]
        return out


@dataclass(slots=True)
class Processed:
    """What one processor made of one entry's bytes."""

    text: str | None = None
    blocks: list[TextBlock] = field(default_factory=list)
    payload: bytes | None = None
    page_count: int | None = None
    warnings: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()
