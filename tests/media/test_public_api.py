"""The package exports what it documents and nothing private."""

from __future__ import annotations

import bkbn_pipelines.media as media


def test_all_names_are_importable_and_public() -> None:
    assert media.__all__, "the package must declare its public names"
    assert len(set(media.__all__)) == len(media.__all__)
    for name in media.__all__:
        assert not name.startswith("_"), name
        assert getattr(media, name) is not None, name


def test_documented_entry_points_are_exported() -> None:
    expected = {
        "FetchPolicy",
        "NormalisedPhoto",
        "fetch_photo",
        "normalise_photo",
        "open_image",
        "sniff",
        "safe_url",
        "DEFAULT_MAX_BYTES",
        "DEFAULT_MAX_PIXELS",
        "DEFAULT_BOMB_PIXELS",
    }
    assert expected <= set(media.__all__)
    public_callables = {
        name
        for name, value in vars(media).items()
        if not name.startswith("_")
        and callable(value)
        and value.__module__.startswith(media.__name__)
    }
    assert public_callables <= set(media.__all__)
