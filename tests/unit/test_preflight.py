"""Checks before a POST: images that decode, regions inside them; and ledger write retries."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy.exc import IntegrityError, OperationalError

from ocrflow.dbretry import (
    END_OF_RUN_BUDGET_S,
    describe_ledger_error,
    end_of_run_budget,
    is_transient_db_error,
    retry_transient,
)
from ocrflow.models import Rect, Region
from ocrflow.preflight import InputError, check_submission, inspect_image
from tests.unit.fakes import FakeClock


def png(width: int = 200, height: int = 50) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, "PNG")
    return buffer.getvalue()


def region(x: int, y: int, w: int, h: int) -> Region:
    return Region(rect=Rect.from_xywh(x, y, w, h), order=0)


def test_a_whole_image_and_regions_inside_it_pass() -> None:
    info = check_submission(png(), [region(0, 0, 200, 50), region(10, 10, 20, 20)])
    assert (info.format, info.width, info.height) == ("PNG", 200, 50)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "is empty"),
        (b"just some text, named .png\n", "is not an image"),
        (png()[:60], "cannot be decoded"),
        (b"%PDF-1.7\n1 0 obj <<>> endobj\n", "truncated PDF"),
    ],
    ids=["empty", "text", "truncated PNG", "truncated PDF"],
)
def test_data_that_does_not_decode_is_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        inspect_image(data, name="scan.png")


@pytest.mark.parametrize(
    ("rect", "fragment"),
    [
        (Rect(top_left_x=10, top_left_y=40, bottom_right_x=100, bottom_right_y=10), "inverted"),
        (Rect.from_xywh(10, 10, 0, 20), "empty"),
        (Rect.from_xywh(150, 10, 100, 20), "reaches outside the 200x50 image"),
        (Rect.from_xywh(-5, 10, 100, 20), "negative corner"),
    ],
)
def test_regions_that_cannot_be_read_are_refused(rect: Rect, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        check_submission(png(), [Region(rect=rect, order=3)], name="card.png")


def test_a_pdf_is_checked_by_its_header_and_trailer_only() -> None:
    info = check_submission(b"%PDF-1.7\n%%EOF\n", [region(0, 0, 10_000, 10_000)])
    assert info.format == "PDF"
    assert info.width is None


def test_transient_database_errors_are_told_from_lasting_ones() -> None:
    assert is_transient_db_error(OperationalError("SELECT 1", {}, ConnectionResetError()))
    assert is_transient_db_error(ConnectionRefusedError())
    assert not is_transient_db_error(IntegrityError("INSERT", {}, ValueError("duplicate")))
    assert not is_transient_db_error(ValueError("bad"))


async def test_a_write_is_retried_through_an_outage_within_its_budget() -> None:
    clock = FakeClock(start=0.0)
    calls: list[float] = []

    async def write() -> str:
        calls.append(clock.now)
        if len(calls) < 4:
            raise ConnectionRefusedError("the database is restarting")
        return "written"

    assert await retry_transient(write, budget_s=10, sleep=clock.sleep, clock=clock) == "written"
    assert clock.sleeps == [0.2, 0.4, 0.8]
    assert len(calls) == 4


async def test_a_write_gives_up_when_its_budget_is_spent_or_the_error_lasts() -> None:
    clock = FakeClock(start=0.0)

    async def down() -> None:
        raise ConnectionRefusedError("down")

    with pytest.raises(ConnectionRefusedError):
        await retry_transient(down, budget_s=2, sleep=clock.sleep, clock=clock)
    assert clock.now <= 2

    async def broken() -> None:
        raise IntegrityError("INSERT", {}, ValueError("duplicate"))

    with pytest.raises(IntegrityError):
        await retry_transient(broken, budget_s=60, sleep=clock.sleep, clock=clock)


def test_a_ledger_error_says_whether_the_ledger_was_away_and_hides_its_password() -> None:
    away = OSError("cannot reach postgresql://ocr:s3cret-pw@db.internal:5432/ledger")
    said = describe_ledger_error(away)
    assert said.startswith("the ledger could not be reached (OSError: ")
    assert "left unfinished for the next run" in said
    assert "s3cret-pw" not in said
    broken = describe_ledger_error(IntegrityError("INSERT", {}, ValueError("duplicate")))
    assert "could not be reached" not in broken
    assert broken.startswith("IntegrityError: ")


def test_end_of_run_writes_wait_for_the_ledger_at_most_ten_seconds() -> None:
    assert end_of_run_budget(60.0) == END_OF_RUN_BUDGET_S == 10.0
    assert end_of_run_budget(3.0) == 3.0
    assert end_of_run_budget(0.0) == 0.0
