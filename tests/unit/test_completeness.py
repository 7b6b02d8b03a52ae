"""Completeness before storage: which answers hold everything their job asked for."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocrflow.completeness import JobRequest, RefetchPolicy, assess
from ocrflow.models import OcrResponse, ResultType
from ocrflow.processing import ProcessedEntry, decode_response, process_response
from tests.unit.documents import pdf_with_text

LIMIT = 1024 * 1024
PDF = base64.b64encode(pdf_with_text("SMITH")).decode()


def text(value: str) -> dict[str, str]:
    return {"type": "Text", "data": base64.b64encode(value.encode()).decode()}


def answer(results: object, *, with_key: bool = True) -> OcrResponse:
    body: dict[str, object] = {"taskStatus": "Completed", "responseStatusCode": "Ok"}
    if with_key:
        body["results"] = results
    return OcrResponse.model_validate(body)


def verdict(response: OcrResponse, request: JobRequest) -> list[str]:
    entries = process_response(response, region_count=request.region_count, max_bytes=LIMIT)
    return list(assess(entries, request).problems)


FIVE_TEXT = JobRequest(5, ResultType.TEXT)


@pytest.mark.parametrize(
    ("results", "with_key"),
    [(None, True), ([], True), (None, False)],
    ids=["null", "empty", "no key"],
)
def test_an_answer_without_results_is_incomplete(results: object, with_key: bool) -> None:
    problems = verdict(answer(results, with_key=with_key), FIVE_TEXT)
    assert problems == ["0 Text entries for 5 region(s): the answer holds no results"]


def test_fewer_entries_than_regions_are_incomplete() -> None:
    problems = verdict(answer([text("A"), text("B")]), FIVE_TEXT)
    assert problems == ["2 Text entries for 5 region(s)"]


def test_more_entries_than_regions_cannot_be_placed() -> None:
    problems = verdict(answer([text(str(n)) for n in range(6)]), FIVE_TEXT)
    assert problems == ["6 Text entries for 5 region(s): cannot tell which region each belongs to"]


def test_one_entry_per_region_is_complete() -> None:
    assert verdict(answer([text(str(n)) for n in range(5)]), FIVE_TEXT) == []


def test_an_undecodable_entry_names_its_region() -> None:
    results = [text("A"), {"type": "Text", "data": "QW=xs"}, text("C")]
    entries = process_response(answer(results), region_count=3, max_bytes=LIMIT)
    found = assess(entries, JobRequest(3, ResultType.TEXT), ["surname", "given", "birth"])
    assert not found.complete
    assert found.problems[0].startswith("entry 1 (Text, region 1 'given') does not decode:")
    assert "not valid base64" in found.reason()


@pytest.mark.parametrize("interleaved", [True, False])
def test_combined_types_need_every_format_for_every_region(interleaved: bool) -> None:
    texts = [text("A"), text("B")]
    pdfs = [{"type": "Pdf", "data": PDF}, {"type": "Pdf", "data": PDF}]
    results = [texts[0], pdfs[0], texts[1], pdfs[1]] if interleaved else texts + pdfs
    request = JobRequest(2, ResultType.TEXT_AND_PDF)
    assert verdict(answer(results), request) == []
    assert verdict(answer(results[:3]), request) == ["1 Pdf entry for 2 region(s)"]


def test_a_text_answer_to_a_text_and_pdf_job_is_incomplete() -> None:
    problems = verdict(answer([text("A")]), JobRequest(1, ResultType.TEXT_AND_PDF))
    assert problems == ["0 Pdf entries for 1 region(s)"]


def test_json_entries_count_in_any_letter_case() -> None:
    data = base64.b64encode(b'[{"text": "A", "box": [0, 0, 1, 1]}]').decode()
    results = [{"type": "Json", "data": data}]
    assert verdict(answer(results), JobRequest(1, ResultType.JSON)) == []


def test_an_unknown_request_needs_at_least_one_readable_entry() -> None:
    assert verdict(answer(None), JobRequest.unknown()) == ["the answer holds no results"]
    assert verdict(answer([text("A")]), JobRequest.unknown()) == []


def test_the_request_is_read_from_the_ledger_record() -> None:
    request = JobRequest.from_ledger([{"order": 0}, {"order": 1}], {"resultType": "textandpdf"})
    assert request == JobRequest(2, ResultType.TEXT_AND_PDF)
    assert JobRequest.from_ledger([], {"resultType": "Text"}) == JobRequest(1, ResultType.TEXT)
    assert JobRequest.from_ledger([], {}) == JobRequest.unknown()
    assert JobRequest.from_ledger([], {"resultType": "Braille"}).result_type is None


def test_the_reason_lists_a_bounded_number_of_problems() -> None:
    results = [{"type": "Text", "data": "!!"} for _ in range(10)]
    reason = assess(
        process_response(answer(results), region_count=10, max_bytes=LIMIT),
        JobRequest(10, ResultType.TEXT),
    ).reason()
    assert reason.startswith("incomplete answer: entry 0 (Text, region 0) does not decode")
    assert reason.endswith("and 4 more")


def test_refetch_waits_grow_to_their_cap_and_run_out() -> None:
    policy = RefetchPolicy(max_refetches=5, base_s=2.0, cap_s=5.0)
    assert [policy.delay(n) for n in range(1, 7)] == [2.0, 4.0, 5.0, 5.0, 5.0, None]
    assert RefetchPolicy(max_refetches=0).delay(1) is None
    with pytest.raises(ValueError, match="1-based"):
        policy.delay(0)


formats = st.sampled_from(list(ResultType))


@given(
    result_type=formats,
    regions=st.integers(min_value=1, max_value=6),
    dropped=st.integers(min_value=0, max_value=40),
    shuffle=st.randoms(use_true_random=False),
)
def test_no_answer_missing_an_entry_is_ever_complete(
    result_type: ResultType, regions: int, dropped: int, shuffle: random.Random
) -> None:
    """Property: remove any entry from a complete answer (in any order) and it is incomplete."""
    names = list(result_type.formats)
    full = [
        {"type": name, "data": base64.b64encode(b"x").decode()}
        for _ in range(regions)
        for name in names
    ]
    shuffle.shuffle(full)
    request = JobRequest(regions, result_type)
    decoded = decode_response(answer(full), region_count=regions, max_bytes=LIMIT)
    # Processing each type is not the point here: every entry is taken as read.
    complete = [
        ProcessedEntry(index=e.index, region=e.region, wire_type=e.wire_type, kind=e.kind, text="x")
        for e in decoded
    ]
    assert assess(complete, request).complete
    del complete[dropped % len(complete)]
    assert not assess(complete, request).complete
