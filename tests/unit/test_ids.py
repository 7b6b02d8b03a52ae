"""Job ids: GUIDs only, checked before they reach a URL, a log line or a file name."""

from __future__ import annotations

import pytest

from ocrflow.errors import InvalidJobIdError
from ocrflow.ids import parse_job_id_body, read_echoed_id, validate_job_id

GUID = "b7162f77-bf10-407d-86de-ee255e422ca7"


def test_valid_guid_is_returned_in_lower_case() -> None:
    assert validate_job_id(GUID.upper()) == GUID


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        f"{GUID}/../x",
        f"{GUID}?id=other",
        f"{{{GUID}}}",
        f"urn:uuid:{GUID}",
        f" {GUID}",
        GUID.replace("-", ""),
        GUID[:-1] + "g",
        "",
        "a" * 10_000,
    ],
)
def test_non_guid_ids_are_rejected(hostile: str) -> None:
    with pytest.raises(InvalidJobIdError, match="not a job id"):
        validate_job_id(hostile)


def test_rejection_message_shows_a_bounded_excerpt() -> None:
    with pytest.raises(InvalidJobIdError) as caught:
        validate_job_id("x" * 5000)
    assert len(str(caught.value)) < 200


def test_non_string_id_is_rejected() -> None:
    with pytest.raises(InvalidJobIdError, match="string"):
        validate_job_id(42)


@pytest.mark.parametrize("body", [GUID, f"{GUID}\n", f'"{GUID}"', f' "{GUID}" '])
def test_post_answer_may_be_bare_or_json_quoted(body: str) -> None:
    assert parse_job_id_body(body) == GUID


def test_post_answer_without_a_guid_is_rejected() -> None:
    with pytest.raises(InvalidJobIdError):
        parse_job_id_body('{"title":"One or more validation errors occurred."}')


@pytest.mark.parametrize(
    "echoed",
    [
        "b7162f77-bf10-407d-86de-ee255e422ca7",
        '"b7162f77-bf10-407d-86de-ee255e422ca7"',
        "{B7162F77-BF10-407D-86DE-EE255E422CA7}",
        "urn:uuid:b7162f77-bf10-407d-86de-ee255e422ca7",
    ],
)
def test_an_echoed_id_is_read_in_any_dotnet_form(echoed: str) -> None:
    assert read_echoed_id(echoed) == "b7162f77-bf10-407d-86de-ee255e422ca7"


def test_an_echoed_id_that_is_no_guid_reads_as_none() -> None:
    assert read_echoed_id("{../../etc/passwd}") is None
