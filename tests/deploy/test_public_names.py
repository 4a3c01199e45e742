"""The deployment modules export what they say, and nothing private."""

import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["bkbn_pipelines.jobs._scaleout", "bkbn_pipelines.client._shared_ratelimit"]
)
def test_all_names_exist_and_are_public(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__, key=lambda n: (not n.isupper(), n))
    for name in mod.__all__:
        assert not name.startswith("_")
        assert getattr(mod, name) is not None
