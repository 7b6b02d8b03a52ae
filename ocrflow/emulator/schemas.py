"""The emulator's own wire schemas, read the way an ASP.NET Core server would read them.

Deliberately separate from the client's models (``ocrflow.models``): a drift between the two
must show up in the contract test, not be hidden by shared code. Property names and enum values
are matched case-insensitively, integers may be omitted (0), booleans default to the spec's
values, unknown properties are ignored (contract §2, §9).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ocrflow.languages import Language  # the vendor's list of names is data, not a schema

RESULT_TYPES = (
    "Text",
    "Pdf",
    "TextAndPdf",
    "Hocr",
    "TextAndHocr",
    "PdfAndHocr",
    "TextAndPdfAndHocr",
    "ImagePNG",
    "JSON",
)
LANGUAGES = tuple(language.value for language in Language)
DSR_MODES = (
    "Regions",
    "DsrNoFilter",
    "DsrAndFilter",
    "NoDsrNoFilter",
    "TextDetector",
    "DsrPlusDetector",
    "PolygonalTextDetector",
    "LineDetector",
)
DSR_CONFIDENCES = ("Default", "Low", "LowMid", "Mid", "MidHigh", "High", "Ultra", "All")


def _enum(values: tuple[str, ...], first_number: int | None = None) -> BeforeValidator:
    """Read an enum as ASP.NET does: any letter case, or (where known) its .NET number."""
    folded = {v.casefold(): v for v in values}

    def read(value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool) and first_number is not None:
            index = value - first_number
            if 0 <= index < len(values):
                return values[index]
        if isinstance(value, str) and value.strip().casefold() in folded:
            return folded[value.strip().casefold()]
        raise ValueError(f"The JSON value could not be converted: {value!r}")

    return BeforeValidator(read)


def _zero_if_null(value: object) -> object:
    return 0 if value is None else value


Int32 = Annotated[int, BeforeValidator(_zero_if_null), Field(ge=-(2**31), lt=2**31)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _fold_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = {}
        for name, field in cls.model_fields.items():
            names[(field.alias or name).casefold()] = field.alias or name
        return {names.get(str(k).casefold(), k): v for k, v in data.items()}


class RectIn(_Body):
    """OCRRect as received."""

    top_left_x: Int32 = Field(0, alias="topLeftX")
    top_left_y: Int32 = Field(0, alias="topLeftY")
    bottom_right_x: Int32 = Field(0, alias="bottomRightX")
    bottom_right_y: Int32 = Field(0, alias="bottomRightY")


class RegionIn(_Body):
    """OCRRegion as received."""

    rect: RectIn = Field(default_factory=RectIn)
    order: Int32 = 0


class SettingsIn(_Body):
    """OCRSettingsRecognizeRegions / RecognizeImage settings as received, spec defaults."""

    language: Annotated[str, _enum(LANGUAGES)] = "English"
    make_skew_correct: bool = Field(True, alias="makeSkewCorrect")
    make_spell_check: bool = Field(False, alias="makeSpellCheck")
    make_contrast_correction: bool = Field(False, alias="makeContrastCorrection")
    make_upsampling: bool = Field(False, alias="makeUpsampling")
    make_binarization: bool = Field(True, alias="makeBinarization")
    regions: list[RegionIn] | None = None
    result_type: Annotated[str, _enum(RESULT_TYPES)] = Field("Text", alias="resultType")
    rotate: Int32 = Field(0, alias="Rotate")
    dsr_mode: Annotated[str, _enum(DSR_MODES)] | None = Field(None, alias="dsrMode")
    dsr_confidence: Annotated[str, _enum(DSR_CONFIDENCES)] | None = Field(
        None, alias="dsrConfidence"
    )


class RecognizeBodyIn(_Body):
    """OCRRecognizeRegionsBody / OCRRecognizeImageBody as received."""

    image: str
    settings: SettingsIn


class BadRequestError(Exception):
    """A request that an ASP.NET server would refuse with a 400 ValidationProblemDetails."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors

    def problem(self) -> dict[str, Any]:
        """The body of the 400 answer."""
        return problem_details(400, "One or more validation errors occurred.", errors=self.errors)


# The RFC 9110 sections ASP.NET Core's ProblemDetails link to as their "type", by status.
_PROBLEM_SECTIONS = {400: "15.5.1", 401: "15.5.2", 403: "15.5.4", 404: "15.5.5", 405: "15.5.6"}


def problem_details(status: int, title: str | None = None, **extra: Any) -> dict[str, Any]:
    """An ASP.NET Core ProblemDetails body: type, title, status, traceId and ``extra``."""
    section = _PROBLEM_SECTIONS.get(status, "15.6.1" if status >= 500 else "15.5")
    return {
        "type": f"https://tools.ietf.org/html/rfc9110#section-{section}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        # W3C trace context, as ASP.NET writes it: version-trace id-span id-flags.
        "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
        **extra,
    }


def parse_recognize_body(raw: bytes, *, max_image_bytes: int) -> tuple[RecognizeBodyIn, bytes]:
    """Validate a POST body and decode its image; raise BadRequestError as ASP.NET would."""
    if not raw.strip():
        raise BadRequestError({"": ["A non-empty request body is required."]})
    try:
        body = RecognizeBodyIn.model_validate_json(raw)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            where = "$." + ".".join(str(part) for part in error["loc"]) if error["loc"] else "$"
            errors.setdefault(where, []).append(error["msg"])
        raise BadRequestError(errors) from exc
    if len(body.image) > max_image_bytes * 4 // 3 + 4:
        raise BadRequestError({"image": [f"The image is larger than {max_image_bytes} bytes."]})
    try:
        image = base64.b64decode(body.image, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError({"image": ["The image field is not valid Base64."]}) from exc
    if not image:
        raise BadRequestError({"image": ["The image field is required."]})
    return body, image
