"""`bkbn nightly` end to end on a two-listing catalogue, and its pieces."""

from pathlib import Path

import dagster as dg
import pytest
from listing_support import tiny_jpeg, write_catalogue

from bkbn_pipelines.cli import EXIT_OK, EXIT_USAGE, main
from bkbn_pipelines.jobs._nightly import contiguous_ranges
from bkbn_pipelines.storage import MediaStore


def test_contiguous_ranges() -> None:
    keys = ["a", "b", "c", "d", "e"]
    assert contiguous_ranges(keys, set(keys)) == [("a", "e")]
    assert contiguous_ranges(keys, {"a", "b", "d"}) == [("a", "b"), ("d", "d")]
    assert contiguous_ranges(keys, set()) == []


def test_nightly_command_on_a_small_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # The demo's job (`bkbn demo` is this on examples/): in-process emulator over the
    # local runtime, staging on an untrained model, which the run must say plainly.
    for name in ("BKBN_BASE_URL", "BKBN_API_KEY", "BKBN_STAGING_MODEL", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BKBN_STEPS", "2")  # the untrained staging model: two steps do
    monkeypatch.chdir(tmp_path)
    source = write_catalogue(
        tmp_path / "export",
        [
            {"listing_id": "MLS/1", "photos": [tiny_jpeg(1, (64, 48))]},
            {"listing_id": "0150", "photos": [tiny_jpeg(2, (64, 48))], "style": "japandi"},
        ],
    )
    code = main(
        [
            "nightly",
            "--catalogue",
            str(source),
            "--backend",
            "api",
            "--allow-untrained",
            "--storage-root",
            str(tmp_path / "media"),
        ]
    )
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    home = tmp_path / ".dagster_home"
    assert (home / "dagster.yaml").exists()
    lines = out.splitlines()
    # the summary table: a header, a row per listing and the totals
    [header] = [line for line in lines if line.split()[:3] == ["listing", "id", "photos"]]
    assert header.split() == [
        "listing",
        "id",
        "photos",
        "failed",
        "enhanced",
        "renders",
        "weights",
        "plan",
        "status",
    ]
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 2 :][:3]}
    assert rows["mls-1"][:3] == ["mls-1", "MLS/1", "1"] and rows["0150"][:3] == ["0150"] * 2 + ["1"]
    assert rows["total"][:3] == ["total", "2", "2"]  # photos, renders
    assert any(
        line.startswith("2 listings, 2 processed, 2 photos, 2 renders, 0 failures")
        for line in lines
    )
    assert "UNTRAINED" in out.replace("WITHOUT real model weights", "UNTRAINED")
    assert "BKBN_STAGING_MODEL" in out
    pdfs = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("  mls-1: ")]
    assert pdfs and Path(pdfs[0]).read_bytes().startswith(b"%PDF-")

    store = MediaStore(tmp_path / "media")
    staged = store.read_manifest("staged_renders")
    assert set(staged["weights"]) == {"untrained"}
    brochures = latest_brochure_metadata(home)
    assert brochures["staged_renders_in"] == 0  # noise never goes into a brochure


def latest_brochure_metadata(home: Path) -> dict:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("brochures"), asset_partitions=["mls-1"]),
            limit=1,
        ).records
        metadata = record.asset_materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def test_nightly_without_the_local_runtime_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # A plain install (API backend only) has no torch or diffusers: the in-process
    # emulator cannot render, and the command says so before doing anything.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "diffusers" else real(name, *a),
    )
    monkeypatch.delenv("BKBN_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    source = write_catalogue(tmp_path / "export", [{"listing_id": "A1", "photos": [tiny_jpeg(1)]}])
    code = main(["nightly", "--catalogue", str(source), "--storage-root", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "diffusers" in err and "bkbn_pipelines[local]" in err and "BKBN_BASE_URL" in err
    assert not (tmp_path / "m").exists()  # nothing was run
