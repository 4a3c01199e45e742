"""The public names of the emulator package."""

from __future__ import annotations

import bkbn_pipelines.emulator as emulator
import bkbn_pipelines.emulator.testing as testing


def test_all_names_are_public_and_importable():
    for module in (emulator, testing):
        assert module.__all__, module.__name__
        for name in module.__all__:
            assert not name.startswith("_"), name
            assert getattr(module, name) is not None
    assert sorted(emulator.__all__) == emulator.__all__
