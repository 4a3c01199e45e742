"""Fixtures of the end-to-end fault tests: a fresh key per test, a Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test names its credentials; none may come from the environment."""
    for name in (
        "BKBN_API_KEY",
        "BKBN_CLIENT_ID",
        "BKBN_CLIENT_SECRET",
        "BKBN_FEDERATION_RULE_ID",
        "BKBN_ASSERTION_FILE",
        "BKBN_BASE_URL",
        "BKBN_STORAGE_ROOT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
