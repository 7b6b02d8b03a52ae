"""Job life: Pending → Processing → Completed or Error, retention, cancel, status endpoint."""

from __future__ import annotations

import re

import httpx

from ocrflow.emulator.app import create_app
from ocrflow.emulator.jobs import simulated_text
from ocrflow.emulator.settings import ProcessingTime
from tests.emulator.conftest import (
    GUID_PATTERN,
    Emulator,
    ManualClock,
    decoded,
    make_settings,
    sample_body,
)

UNKNOWN = "b7162f77-bf10-407d-86de-ee255e422ca7"


async def test_post_answers_a_bare_guid_at_once(emulator: Emulator) -> None:
    await emulator.authorize()
    answer = await emulator.http.post(
        "/v5.0/ocr/RecognizeRegions", json=sample_body("id-card"), headers={"Accept": "text/plain"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert re.fullmatch(GUID_PATTERN, answer.text)


async def test_post_accepting_only_json_gets_a_quoted_id(emulator: Emulator) -> None:
    await emulator.authorize()
    answer = await emulator.http.post(
        "/v5.0/ocr/RecognizeRegions",
        json=sample_body("id-card"),
        headers={"Accept": "application/json"},
    )
    assert re.fullmatch(f'"{GUID_PATTERN}"', answer.text)


async def test_status_walks_pending_processing_completed() -> None:
    clock = ManualClock()
    app = create_app(make_settings(processing=ProcessingTime(seconds=10.0)), clock=clock)
    state = app.state.emulator
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e"
    ) as http:
        token = (
            await http.post(
                "/connect/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "ocrflow-demo",
                    "client_secret": "ocrflow-demo-secret",
                },
            )
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        job_id = (await http.post("/v5.0/ocr/RecognizeRegions", json=sample_body("id-card"))).text
        assert state.jobs.drain(60)
        seen = []
        for now in (0.0, 1.9, 2.0, 9.9, 10.0):
            clock.now = now
            body = (await http.get("/v5.0/ocr/RecognizeRegions", params={"id": job_id})).json()
            seen.append((body["taskStatus"], body["responseStatusCode"], body["results"] is None))
    state.jobs.close()
    assert seen == [
        ("Pending", "NotReady", True),
        ("Pending", "NotReady", True),
        ("Processing", "NotReady", True),
        ("Processing", "NotReady", True),
        ("Completed", "Ok", False),
    ]


async def test_completed_answer_has_one_text_entry_per_region(emulator: Emulator) -> None:
    await emulator.authorize()
    job_id = await emulator.submit(sample_body("id-card"))
    body = await emulator.finish(job_id)
    assert body["id"] == job_id
    assert body["error"] is None
    assert [r["type"] for r in body["results"]] == ["Text"] * 5
    assert list(body) == ["id", "taskStatus", "responseStatusCode", "results", "error"]


async def test_get_task_status_omits_results(emulator: Emulator) -> None:
    await emulator.authorize()
    job_id = await emulator.submit(sample_body("id-card"))
    await emulator.finish(job_id)
    answer = await emulator.http.get("/v5.0/ocr/Utilities/GetTaskStatus", params={"id": job_id})
    assert answer.json()["taskStatus"] == "Completed"
    assert answer.json()["results"] is None


async def test_unknown_id_reads_not_exist(emulator: Emulator) -> None:
    await emulator.authorize()
    for id_ in (UNKNOWN, "not-a-guid"):
        body = (await emulator.http.get("/v5.0/ocr/RecognizeRegions", params={"id": id_})).json()
        assert (body["taskStatus"], body["responseStatusCode"]) == ("NotExist", "TaskNotFound")


async def test_a_job_id_is_read_in_any_letter_case_and_any_net_guid_form(
    emulator: Emulator,
) -> None:
    await emulator.authorize()
    job_id = await emulator.submit(sample_body("id-card"))
    await emulator.finish(job_id)
    forms = [
        job_id.upper(),
        job_id.title(),
        f"{{{job_id.upper()}}}",
        f"({job_id})",
        job_id.replace("-", "").upper(),
        f"  {job_id.upper()} ",
    ]
    for form in forms:
        for path in ("/v5.0/ocr/RecognizeRegions", "/v5.0/ocr/Utilities/GetTaskStatus"):
            body = (await emulator.http.get(path, params={"id": form})).json()
            # The id comes back as .NET writes a Guid: lower-case 8-4-4-4-12.
            assert (body["taskStatus"], body["id"]) == ("Completed", job_id), (form, path)
    for not_the_job in (f"{{{job_id}", job_id[:-1], job_id + "0", f"urn:uuid:{job_id}"):
        body = (await emulator.http.get(path, params={"id": not_the_job})).json()
        assert (body["taskStatus"], body["id"]) == ("NotExist", not_the_job)
    await emulator.http.delete("/v5.0/ocr/RecognizeRegions", params={"id": job_id.upper()})
    gone = await emulator.http.get("/v5.0/ocr/RecognizeRegions", params={"id": job_id})
    assert gone.json()["taskStatus"] == "NotExist"


async def test_unknown_paths_and_methods_answer_problem_details(emulator: Emulator) -> None:
    await emulator.authorize()
    missing = await emulator.http.get("/v5.0/ocr/RecognizeNothing")
    wrong_method = await emulator.http.put("/v5.0/ocr/RecognizeRegions", params={"id": UNKNOWN})
    for answer, status, title in (
        (missing, 404, "Not Found"),
        (wrong_method, 405, "Method Not Allowed"),
    ):
        assert answer.status_code == status
        assert answer.headers["Content-Type"] == "application/problem+json"
        problem = answer.json()
        assert (problem["status"], problem["title"]) == (status, title)
        assert problem["type"].startswith("https://tools.ietf.org/html/rfc9110#section-15.5.")
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", problem["traceId"])
    assert set(wrong_method.headers["Allow"].replace(" ", "").split(",")) == {
        "POST",
        "GET",
        "DELETE",
    }


async def test_jobs_expire_after_the_retention() -> None:
    clock = ManualClock()
    app = create_app(make_settings(retention_s=100.0), clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e"
    ) as http:
        emulator = Emulator(app, clock, http)
        await emulator.authorize()
        job_id = await emulator.submit(sample_body("id-card"))
        assert emulator.state.jobs.drain(60)
        clock.now = 99.0
        before = (await http.get("/v5.0/ocr/RecognizeRegions", params={"id": job_id})).json()
        clock.now = 100.0
        await emulator.authorize()
        after = (await http.get("/v5.0/ocr/RecognizeRegions", params={"id": job_id})).json()
    app.state.emulator.jobs.close()
    assert before["taskStatus"] == "Completed"
    assert after["taskStatus"] == "NotExist"


async def test_delete_cancels_a_job(emulator: Emulator) -> None:
    await emulator.authorize()
    job_id = await emulator.submit(sample_body("id-card"))
    answer = await emulator.http.delete("/v5.0/ocr/RecognizeRegions", params={"id": job_id})
    assert (answer.status_code, answer.content) == (200, b"")
    body = await emulator.finish(job_id)
    assert body["taskStatus"] == "NotExist"


async def test_missing_id_is_a_400(emulator: Emulator) -> None:
    await emulator.authorize()
    for method in ("GET", "DELETE"):
        answer = await emulator.http.request(method, "/v5.0/ocr/RecognizeRegions")
        assert answer.status_code == 400
        assert answer.json()["errors"] == {"id": ["The id field is required."]}


async def test_recognize_image_reads_the_whole_page(emulator: Emulator) -> None:
    await emulator.authorize()
    body = sample_body("id-card")
    del body["settings"]["regions"]
    job_id = await emulator.submit(body, feature="RecognizeImage")
    answer = await emulator.finish(job_id, feature="RecognizeImage")
    text = decoded(answer["results"][0]).decode()
    assert len(answer["results"]) == 1
    assert "SMITH" in text
    assert "IDENTITY CARD" in text


async def test_simulation_mode_answers_known_text_without_ocr() -> None:
    clock = ManualClock()
    app = create_app(make_settings(simulate=True), clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e"
    ) as http:
        emulator = Emulator(app, clock, http)
        await emulator.authorize()
        body = sample_body("id-card")
        body["image"] = "bm90IGFuIGltYWdl"  # "not an image": simulation does not look
        job_id = await emulator.submit(body)
        answer = await emulator.finish(job_id)
    app.state.emulator.jobs.close()
    texts = [decoded(r).decode() for r in answer["results"]]
    assert texts == [simulated_text(job_id, order) for order in range(5)]
    assert texts[2] == f"REGION 2 OF {job_id[:8].upper()}"


def test_processing_time_draws_follow_the_lognormal_median() -> None:
    settings = make_settings(processing=ProcessingTime(kind="lognormal", seconds=2.0, sigma=0.75))
    app = create_app(settings, clock=ManualClock())
    jobs = app.state.emulator.jobs
    draws = sorted(jobs._draw_duration() for _ in range(4001))
    jobs.close()
    assert 1.85 < draws[2000] < 2.15
    assert draws[0] < 0.5
    assert draws[-1] > 8.0
