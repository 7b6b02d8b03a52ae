"""Wire models of RecognizeRegions (contract §2-3): pydantic v2, the vendor's camelCase aliases.

Tolerant on input where the contract is unsure: keys in any letter case (``Rotate``/``rotate``),
enum values in any case, missing or null numbers read as 0, unknown fields ignored,
``results: null`` read as an empty list. Strict where it matters: an unknown ``taskStatus``
fails loudly. Serialise with :func:`to_wire` (aliases, no ``None`` fields).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ocrflow.languages import Language
from ocrflow.wire_enum import WireEnum, numbered_from

__all__ = [
    "DsrConfidence",
    "DsrMode",
    "Language",
    "OcrError",
    "OcrResponse",
    "OcrResult",
    "RecognizeRegionsBody",
    "RecognizeRegionsSettings",
    "Rect",
    "Region",
    "ResponseStatusCode",
    "ResultType",
    "ResultTypeTable",
    "TaskStatus",
    "to_wire",
]


@numbered_from(1)
class TaskStatus(WireEnum):
    """OCRTaskStatus: where a job is in its life (contract §4)."""

    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    ERROR = "Error"
    NOT_EXIST = "NotExist"

    @property
    def is_terminal(self) -> bool:
        """Completed, Error and NotExist never change again."""
        return self not in (TaskStatus.PENDING, TaskStatus.PROCESSING)


@numbered_from(1)
class ResponseStatusCode(WireEnum):
    """ResponseStatusCode: the service's summary of a GET answer."""

    OK = "Ok"
    PARTIALLY_NOT_FOUND = "PartiallyNotFound"
    NO_ANY_RESULT_DATA = "NoAnyResultData"
    RESULT_DATA_LOST = "ResultDataLost"
    TASK_NOT_FOUND = "TaskNotFound"
    NOT_READY = "NotReady"
    ERROR = "Error"


class ResultType(WireEnum):
    """ResultType: the output formats a job is asked for (``JSON`` is upper-case on the wire)."""

    TEXT = "Text"
    PDF = "Pdf"
    TEXT_AND_PDF = "TextAndPdf"
    HOCR = "Hocr"
    TEXT_AND_HOCR = "TextAndHocr"
    PDF_AND_HOCR = "PdfAndHocr"
    TEXT_AND_PDF_AND_HOCR = "TextAndPdfAndHocr"
    IMAGE_PNG = "ImagePNG"
    JSON = "JSON"

    @property
    def formats(self) -> tuple[str, ...]:
        """The single formats this type combines, e.g. ``TextAndPdf`` → ``("Text", "Pdf")``."""
        return tuple(self.value.split("And"))


class ResultTypeTable(WireEnum):
    """ResultTypeTable: only RecognizeTable reads it, but every settings type carries it."""

    TEXT = "Text"
    EXCEL = "Excel"
    CSV = "Csv"
    CSV_AND_EXCEL = "CsvAndExcel"


class DsrMode(WireEnum):
    """DsrMode: how the service finds text areas (document structure recognition)."""

    REGIONS = "Regions"
    DSR_NO_FILTER = "DsrNoFilter"
    DSR_AND_FILTER = "DsrAndFilter"
    NO_DSR_NO_FILTER = "NoDsrNoFilter"
    TEXT_DETECTOR = "TextDetector"
    DSR_PLUS_DETECTOR = "DsrPlusDetector"
    POLYGONAL_TEXT_DETECTOR = "PolygonalTextDetector"
    LINE_DETECTOR = "LineDetector"


class DsrConfidence(WireEnum):
    """DsrConfidence: the area detector's threshold (``Default`` = ``Mid``)."""

    DEFAULT = "Default"
    LOW = "Low"
    LOW_MID = "LowMid"
    MID = "Mid"
    MID_HIGH = "MidHigh"
    HIGH = "High"
    ULTRA = "Ultra"
    ALL = "All"


def _none_as_zero(value: object) -> object:
    # The .NET SDK omits ints equal to 0 (EmitDefaultValue=false); null means the same.
    return 0 if value is None else value


WireInt = Annotated[int, BeforeValidator(_none_as_zero)]


class WireModel(BaseModel):
    """Base of the wire models: aliases out, keys matched case-insensitively in."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _match_keys_ignoring_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        lookup = _key_lookup(cls)
        matched: dict[Any, Any] = {}
        for key, value in data.items():
            name = lookup.get(key.casefold(), key) if isinstance(key, str) else key
            matched.setdefault(name, value)  # the first spelling wins if both are sent
        return matched


@cache
def _key_lookup(model: type[WireModel]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for name, field in model.model_fields.items():
        canonical = field.alias or name
        lookup[name.casefold()] = canonical
        lookup[canonical.casefold()] = canonical
    return lookup


class Rect(WireModel):
    """OCRRect: a region's pixel corners; a missing corner reads as 0."""

    top_left_x: WireInt = Field(0, alias="topLeftX")
    top_left_y: WireInt = Field(0, alias="topLeftY")
    bottom_right_x: WireInt = Field(0, alias="bottomRightX")
    bottom_right_y: WireInt = Field(0, alias="bottomRightY")

    @classmethod
    def from_xywh(cls, x: int, y: int, width: int, height: int) -> Rect:
        """Build a rect from its top-left corner and size."""
        return cls(top_left_x=x, top_left_y=y, bottom_right_x=x + width, bottom_right_y=y + height)

    @property
    def width(self) -> int:
        """Width in pixels (negative when the corners are swapped)."""
        return self.bottom_right_x - self.top_left_x

    @property
    def height(self) -> int:
        """Height in pixels (negative when the corners are swapped)."""
        return self.bottom_right_y - self.top_left_y


class Region(WireModel):
    """OCRRegion: a rectangle to read and its place (``order``) in the output."""

    rect: Rect = Field(default_factory=Rect)
    order: WireInt = 0


class RecognizeRegionsSettings(WireModel):
    """OCRSettingsRecognizeRegions.

    Every boolean is sent explicitly, because the spec and the docs disagree on the server's
    defaults for ``makeBinarization`` and ``makeContrastCorrection`` (contract §2); ours follow
    the docs' descriptions. Optional enums are left out unless set, as the official SDK does.
    """

    language: Language = Language.ENGLISH
    make_skew_correct: bool = Field(True, alias="makeSkewCorrect")
    make_spell_check: bool = Field(False, alias="makeSpellCheck")
    make_contrast_correction: bool = Field(False, alias="makeContrastCorrection")
    make_upsampling: bool = Field(False, alias="makeUpsampling")
    make_binarization: bool = Field(False, alias="makeBinarization")
    regions: list[Region] | None = None
    result_type: ResultType = Field(ResultType.TEXT, alias="resultType")
    rotate: WireInt = Field(0, alias="Rotate")  # capital R, as the SDKs send it
    dsr_mode: DsrMode | None = Field(None, alias="dsrMode")
    dsr_confidence: DsrConfidence | None = Field(None, alias="dsrConfidence")
    result_type_table: ResultTypeTable | None = Field(None, alias="resultTypeTable")


class RecognizeRegionsBody(WireModel):
    """OCRRecognizeRegionsBody: the POST body; ``image`` is the base64 of the file's bytes."""

    image: str
    settings: RecognizeRegionsSettings


class OcrResult(WireModel):
    """OCRResult: one entry of ``results``; ``type`` stays a string so unknown types survive."""

    type: str | None = None
    data: str | None = None


class OcrError(WireModel):
    """OCRError: fatal messages (with taskStatus Error) and non-fatal warnings."""

    messages: list[str] | None = None
    warnings: list[str] | None = None


def _known_code_or_raw(value: object) -> object:
    # A new summary code must not fail a finished job: keep it as the raw string.
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return ResponseStatusCode(str(value))
        except ValueError:
            return str(value)
    return value


class OcrResponse(WireModel):
    """OCRResponse: the GET answer; GetTaskStatus sends the same without ``results``."""

    id: str | None = None
    response_status_code: Annotated[
        ResponseStatusCode | str | None, BeforeValidator(_known_code_or_raw)
    ] = Field(None, alias="responseStatusCode")
    task_status: TaskStatus = Field(alias="taskStatus")
    results: list[OcrResult] = Field(default_factory=list)
    error: OcrError | None = None

    @field_validator("results", mode="before")
    @classmethod
    def _null_results_are_empty(cls, value: object) -> object:
        return [] if value is None else value

    @property
    def messages(self) -> list[str]:
        """The error messages, or an empty list."""
        return list(self.error.messages or []) if self.error else []

    @property
    def warnings(self) -> list[str]:
        """The non-fatal warnings, or an empty list."""
        return list(self.error.warnings or []) if self.error else []


def to_wire(model: BaseModel) -> dict[str, Any]:
    """Serialise a wire model with the vendor's names, leaving out unset optional fields."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
