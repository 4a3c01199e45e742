"""Partition keys from listing ids: safe, stable, unique or refused."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path

import pytest

import bkbn_pipelines.catalogue as catalogue
from bkbn_pipelines._errors import CatalogueError
from bkbn_pipelines.catalogue import build_partition_map, slugify_listing_id

SAFE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("listing_id", "slug"),
    [
        ("MLS/12345", "mls-12345"),  # case 1
        ("12 Main St, Springfield", "12-main-st-springfield"),  # case 2
        ("unit-4.1", "unit-4.1"),  # case 3
        ("unit-4.2", "unit-4.2"),
        ("000388907", "000388907"),  # case 5: zeros kept
        ("0150", "0150"),
        ("a|b[1]", "a-b-1"),
        ("a...b", "a.b"),
        ("a..b", "a.b"),
        ("Besançon-Île", "besancon-ile"),
        ("Straße 5", "strasse-5"),
        ("Søndergade", "sondergade"),
        ("ﬂat①", "flat1"),
        ("  -lot_7-  ", "lot_7"),
        ("tab\there\x00nul", "tab-here-nul"),
        ("../../etc/passwd", "etc-passwd"),
    ],
)
def test_slugs(listing_id: str, slug: str) -> None:
    assert slugify_listing_id(listing_id) == slug
    assert SAFE.match(slug)
    assert slugify_listing_id(slug) == slug  # a slug is its own slug


@pytest.mark.parametrize("listing_id", ["", "   ", "..", "///", "物件", "\x00\x01"])
def test_ids_without_usable_characters_are_refused(listing_id: str) -> None:
    with pytest.raises(CatalogueError, match="no characters"):
        slugify_listing_id(listing_id)


def test_long_ids_are_cut_with_a_hash() -> None:
    first = slugify_listing_id("x" * 150 + "1")
    second = slugify_listing_id("x" * 150 + "2")
    assert len(first) == len(second) == 100
    assert first != second
    assert SAFE.match(first)
    assert slugify_listing_id("y" * 100) == "y" * 100


def test_no_forbidden_characters_ever() -> None:
    nasty = "".join(chr(c) for c in range(0, 0x250)) + "…،|[],/\\"
    slug = slugify_listing_id(nasty)
    assert SAFE.match(slug)
    for bad in ("/", ",", "|", "[", "]", "..", "\\"):
        assert bad not in slug


def test_partition_map_keeps_the_source_ids() -> None:
    ids = ["MLS/12345", "12 Main St, Springfield", "unit-4.1", "unit-4.2", "0150", "0150"]
    mapping = build_partition_map(ids)
    assert mapping == {
        "mls-12345": "MLS/12345",
        "12-main-st-springfield": "12 Main St, Springfield",
        "unit-4.1": "unit-4.1",
        "unit-4.2": "unit-4.2",
        "0150": "0150",
    }


def test_colliding_ids_are_refused_naming_both() -> None:
    with pytest.raises(CatalogueError) as info:
        build_partition_map(["MLS/1", "other", "mls-1"])
    assert "'MLS/1'" in str(info.value) and "'mls-1'" in str(info.value)


def test_all_names_are_public_and_importable() -> None:
    assert len(set(catalogue.__all__)) == len(catalogue.__all__)
    for name in catalogue.__all__:
        assert not name.startswith("_")
        assert getattr(catalogue, name) is not None


def test_the_table_in_the_docs_holds() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "catalogue.md"
    text = doc.read_text(encoding="utf-8")
    table = text.split("| listing id | partition key |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) >= 6
    for line in rows:
        ids_cell, slugs_cell = (
            cell.strip() for cell in line.replace("\\|", "\x1f").strip("|").split("|")
        )
        ids = [part.strip().strip("`").replace("\x1f", "|") for part in ids_cell.split(",")]
        slugs = [part.strip().strip("`") for part in slugs_cell.split(",")]
        if len(ids) != len(slugs):  # an id with a comma in it
            ids = [ids_cell.strip("`")]
        assert [slugify_listing_id(i) for i in ids] == slugs, line


def test_random_ids_give_safe_idempotent_slugs() -> None:
    rng = random.Random(20261203)
    pool = (
        string.ascii_letters
        + string.digits
        + string.punctuation
        + " \t\n\x00\x7f"
        + "éèçñüßøæœłđþıİ…‥。①ﬁ物件😀\u0301\u200b"
        + "\uff0f\uff0c\uff5c\uff3b\uff3d"  # full-width / , | [ ]
    )
    seen: dict[str, str] = {}
    for _ in range(3000):
        listing_id = "".join(rng.choice(pool) for _ in range(rng.randint(1, 140)))
        try:
            slug = slugify_listing_id(listing_id)
        except CatalogueError:
            continue
        assert SAFE.match(slug), (listing_id, slug)
        assert len(slug) <= 100
        assert ".." not in slug
        assert slugify_listing_id(slug) == slug
        seen[listing_id] = slug
    assert len(seen) > 2500
