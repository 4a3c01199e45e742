"""The public names of the client package."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module_name", ["bkbn_pipelines.client", "bkbn_pipelines.backends"])
def test_all_names_importable_and_public(module_name):
    module = importlib.import_module(module_name)
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert not name.startswith("_"), name
        assert getattr(module, name) is not None


def test_not_given_is_a_falsy_singleton():
    from bkbn_pipelines.client import NOT_GIVEN, NotGiven

    assert NotGiven() is NOT_GIVEN
    assert not NOT_GIVEN and repr(NOT_GIVEN) == "NOT_GIVEN"
