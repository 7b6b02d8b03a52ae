"""No secret in what is printed: masked URL passwords, escaped control characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocrflow.redact import mask_credentials, printable


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "cannot open the ledger postgresql+asyncpg://postgres:S3cret@db:5432/ledger: refused",
            "cannot open the ledger postgresql+asyncpg://postgres:***@db:5432/ledger: refused",
        ),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://hooks.example/ocr?x=1", "https://hooks.example/ocr?x=1"),
        ("sqlite+aiosqlite:///var/ocrflow.db", "sqlite+aiosqlite:///var/ocrflow.db"),
        ("a: x://u:p@h and y://v:q@k", "a: x://u:***@h and y://v:***@k"),
    ],
)
def test_url_passwords_are_masked(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


# A password may hold anything but whitespace, '/' and '@' (a URL would need them escaped).
PASSWORDS = st.text(
    alphabet=st.characters(
        blacklist_categories=("Zs", "Zl", "Zp", "Cc"), blacklist_characters="/@"
    ),
    min_size=1,
    max_size=30,
)


@given(password=PASSWORDS)
def test_no_password_survives_masking(password: str) -> None:
    url = f"postgresql+asyncpg://user:{password}@127.0.0.1:5432/db"
    assert mask_credentials(f"error at {url}: boom") == (
        "error at postgresql+asyncpg://user:***@127.0.0.1:5432/db: boom"
    )


def test_control_characters_are_escaped() -> None:
    assert printable("SMITH\x1b[31m\x07\nJOHN\tA") == "SMITH\\x1b[31m\\x07\nJOHN\tA"
    assert printable("a\nb", keep_newlines=False) == "a\\nb"
