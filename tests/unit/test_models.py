"""Wire models: exact names out, tolerant reading in, unknown status fails loudly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ocrflow.models import (
    DsrConfidence,
    DsrMode,
    Language,
    OcrResponse,
    RecognizeRegionsBody,
    RecognizeRegionsSettings,
    Rect,
    Region,
    ResponseStatusCode,
    ResultType,
    ResultTypeTable,
    TaskStatus,
    to_wire,
)


def test_language_enum_has_all_154_vendor_values_with_quirky_spellings() -> None:
    values = {language.value for language in Language}
    assert len(values) == 154
    assert {"Ukrainan", "Kazah", "Netherlands", "Dutch", "Serbo_Croatian", "HWT_ENG"} <= values
    assert next(iter(Language)) is Language.ENGLISH
    assert list(Language)[-1].value == "Devanagari"


def test_enums_carry_exact_wire_values() -> None:
    assert [s.value for s in TaskStatus] == [
        "Pending",
        "Processing",
        "Completed",
        "Error",
        "NotExist",
    ]
    assert ResultType.JSON.value == "JSON"
    assert ResultType("json") is ResultType.JSON
    assert [r.value for r in ResultTypeTable] == ["Text", "Excel", "Csv", "CsvAndExcel"]
    assert len(DsrMode) == 8
    assert len(DsrConfidence) == 8
    assert len(ResponseStatusCode) == 7


@pytest.mark.parametrize("raw", ["completed", "COMPLETED", " Completed ", 3, "3"])
def test_task_status_reads_any_case_and_dotnet_numbers(raw: object) -> None:
    assert OcrResponse.model_validate({"taskStatus": raw}).task_status is TaskStatus.COMPLETED


def test_combined_result_types_list_their_formats() -> None:
    assert ResultType.TEXT_AND_PDF_AND_HOCR.formats == ("Text", "Pdf", "Hocr")
    assert ResultType.IMAGE_PNG.formats == ("ImagePNG",)


def test_settings_serialise_with_exact_vendor_names() -> None:
    settings = RecognizeRegionsSettings(
        language=Language.GERMAN,
        result_type=ResultType.TEXT_AND_PDF,
        rotate=90,
        regions=[Region(rect=Rect.from_xywh(21, 24, 393, 19), order=0)],
        dsr_mode=DsrMode.REGIONS,
    )
    wire = to_wire(RecognizeRegionsBody(image="aGk=", settings=settings))
    assert wire == {
        "image": "aGk=",
        "settings": {
            "language": "German",
            "makeSkewCorrect": True,
            "makeSpellCheck": False,
            "makeContrastCorrection": False,
            "makeUpsampling": False,
            "makeBinarization": False,
            "regions": [
                {
                    "rect": {
                        "topLeftX": 21,
                        "topLeftY": 24,
                        "bottomRightX": 414,
                        "bottomRightY": 43,
                    },
                    "order": 0,
                }
            ],
            "resultType": "TextAndPdf",
            "Rotate": 90,
            "dsrMode": "Regions",
        },
    }


@pytest.mark.parametrize("key", ["Rotate", "rotate", "ROTATE"])
def test_settings_read_rotate_in_any_case(key: str) -> None:
    assert RecognizeRegionsSettings.model_validate({key: 180}).rotate == 180


def test_missing_and_null_numbers_read_as_zero() -> None:
    region = Region.model_validate({"rect": {"bottomRightX": 10, "topLeftY": None}})
    assert (region.rect.top_left_x, region.rect.top_left_y, region.order) == (0, 0, 0)
    assert region.rect.bottom_right_x == 10
    assert Region.model_validate({}).rect.width == 0


def test_response_tolerates_unknown_fields_null_results_and_new_codes() -> None:
    response = OcrResponse.model_validate(
        {
            "ID": "2ce30237-86da-41ef-88e9-84f0b7acffc0",
            "taskstatus": "pending",
            "responseStatusCode": "SomethingNew",
            "results": None,
            "error": None,
            "newField": {"x": 1},
        }
    )
    assert response.task_status is TaskStatus.PENDING
    assert response.results == []
    assert response.response_status_code == "SomethingNew"
    assert response.messages == []


def test_response_reads_results_and_error_messages() -> None:
    response = OcrResponse.model_validate_json(
        '{"id":null,"taskStatus":"Error","responseStatusCode":7,'
        '"results":[{"type":"Text","data":"QQ=="}],'
        '"error":{"messages":["bad image"],"warnings":null}}'
    )
    assert response.response_status_code is ResponseStatusCode.ERROR
    assert response.results[0].type == "Text"
    assert response.messages == ["bad image"]
    assert response.warnings == []


@pytest.mark.parametrize("status", ["Done", "", 0, 9, None])
def test_unknown_task_status_fails_loudly(status: object) -> None:
    with pytest.raises(ValidationError, match="taskStatus"):
        OcrResponse.model_validate({"taskStatus": status})


def test_terminal_statuses() -> None:
    terminal = {s for s in TaskStatus if s.is_terminal}
    assert terminal == {TaskStatus.COMPLETED, TaskStatus.ERROR, TaskStatus.NOT_EXIST}
