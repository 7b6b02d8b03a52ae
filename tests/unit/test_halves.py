"""`make test`'s two halves: together the whole suite once, and a chosen test run as pytest would."""

from __future__ import annotations

import pytest

from tests.halves import ROOT, STACK_LEVEL, halves, names_tests


def test_the_halves_split_the_suite_without_overlap() -> None:
    split = halves(["-q"])
    assert all((ROOT / path).exists() for path in STACK_LEVEL)  # a rename would run it twice
    assert split["stack-level"] == ["-q", *STACK_LEVEL]
    ignored = [
        arg.removeprefix("--ignore=") for arg in split["rest"] if arg.startswith("--ignore=")
    ]
    assert ignored == STACK_LEVEL
    assert split["rest"][-1] == "tests"


@pytest.mark.parametrize(
    ("args", "chosen"),
    [
        (["-q", "-p", "no:cacheprovider", "--durations=40"], False),  # options and their values
        (["tests/unit"], True),
        (["tests/unit/test_ids.py::test_canonical_forms"], True),
        (["-k", "lease"], True),
        (["--lf"], True),
    ],
)
def test_arguments_that_choose_tests_run_one_pytest(args: list[str], chosen: bool) -> None:
    assert names_tests(args) is chosen
