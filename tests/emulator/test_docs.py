"""docs/emulator.md stands on its own: its links resolve and what it claims holds."""

from __future__ import annotations

import re
from pathlib import Path

from .test_basics import assert_error

DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_emulator_doc_needs_no_outside_document():
    text = DOC.read_text()
    for target in LINK.findall(text):
        if "://" not in target:
            assert (DOC.parent / target).is_file(), f"docs/emulator.md links to missing {target}"
    for outside in ("public overview", "public documentation", "see the overview"):
        assert outside not in text.lower(), f"docs/emulator.md refers to the {outside!r}"


def test_batches_endpoint_is_not_served(api):
    assert_error(api.post("/v1/batches", json={"items": []}), 404, "not_found_error")
