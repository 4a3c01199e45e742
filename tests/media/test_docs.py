"""The example in docs/media.md runs as written, and afetch_photo matches fetch_photo."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path

import pytest
from _media_samples import PHOTOS

from bkbn_pipelines._errors import FetchError
from bkbn_pipelines.media import FetchPolicy, afetch_photo, fetch_photo

ROOT = Path(__file__).resolve().parents[2]


def test_docs_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "media.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "docs/media.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0] == "1920 1283 6"
    assert lines[2].startswith("listing 'MLS-123', photo 'meta-data': refused to connect")


def test_afetch_photo_follows_the_same_rules() -> None:
    policy = FetchPolicy(local_roots=(PHOTOS,))
    path = PHOTOS / "int_cc0_kitchen.jpg"
    got = asyncio.run(afetch_photo(path, listing_id="1", policy=policy))
    assert got == fetch_photo(path, listing_id="1", policy=policy)
    with pytest.raises(FetchError, match="a link-local address"):
        asyncio.run(afetch_photo("http://169.254.169.254/x.jpg", listing_id="1"))
