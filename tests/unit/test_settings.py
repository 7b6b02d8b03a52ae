"""Client settings: read from OCRFLOW_* at the edge, secrets never shown."""

from __future__ import annotations

import pytest

from ocrflow.settings import VENDOR_BASE_URL, ClientSettings


def test_defaults_point_at_the_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCRFLOW_BASE_URL", raising=False)
    settings = ClientSettings(_env_file=None)
    assert settings.base_url == VENDOR_BASE_URL
    assert settings.resolved_token_url == f"{VENDOR_BASE_URL}/connect/token"


def test_environment_is_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCRFLOW_BASE_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("OCRFLOW_CLIENT_SECRET", "top-secret")
    monkeypatch.setenv("OCRFLOW_MAX_ATTEMPTS", "3")
    settings = ClientSettings(_env_file=None)
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.resolved_token_url == "http://127.0.0.1:8080/connect/token"
    assert settings.max_attempts == 3
    assert settings.client_secret.get_secret_value() == "top-secret"
    assert "top-secret" not in repr(settings)
    assert "top-secret" not in str(settings.model_dump())


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCRFLOW_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="max_attempts"):
        ClientSettings(_env_file=None)
