"""Fixtures of the runtime tests: a tiny random inpainting pipeline, built once.

Nothing in these tests may reach the Hugging Face Hub.  huggingface_hub reads
``HF_HUB_OFFLINE`` once, when it is first imported (and diffusers copies the value),
so the variables are set here, when pytest imports this file, before any test or
fixture imports diffusers or transformers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings


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
