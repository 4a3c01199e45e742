"""Fixtures of the runtime tests: a tiny random inpainting pipeline, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in these tests may reach the Hugging Face Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_inpaint_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seeded random StableDiffusionInpaintPipeline folder (diffusers format)."""
    from bkbn_pipelines.runtime.testing import build_tiny_inpaint_pipeline

    return build_tiny_inpaint_pipeline(tmp_path_factory.mktemp("models") / "tiny-inpaint", seed=0)


@pytest.fixture(scope="session")
def tiny_settings(tiny_inpaint_pipeline: Path) -> RuntimeSettings:
    """CPU settings on the tiny pipeline, 4 steps."""
    return RuntimeSettings(device="cpu", staging_model=str(tiny_inpaint_pipeline), steps=4)


@pytest.fixture(scope="session")
def tiny_runtime(tiny_settings: RuntimeSettings) -> LocalRuntime:
    return LocalRuntime(tiny_settings)
