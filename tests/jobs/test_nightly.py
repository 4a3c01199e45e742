"""`bkbn nightly` end to end on a two-listing catalogue, and its pieces."""

from pathlib import Path

import dagster as dg
import pytest
from listing_support import tiny_jpeg, write_catalogue

from bkbn_pipelines.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
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
        line.startswith(
            "2 listings, 2 processed, 2 photos, 2 renders, 0 failed listing(s), "
            "0 failed photo(s), 0 rejected catalogue row(s)"
        )
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


def _no_stack_traces(text: str) -> None:
    assert "Traceback" not in text and "Stack Trace" not in text, text
    assert '  File "' not in text, text


def test_nightly_names_rejected_rows_and_failed_listings_in_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # No staging weights and no --allow-untrained: the in-process emulator could not
    # stage, so staging is skipped and said so, and every other step runs.
    for name in (
        "BKBN_BASE_URL",
        "BKBN_API_KEY",
        "BKBN_STAGING_MODEL",
        "BKBN_ALLOW_UNTRAINED",
        "DAGSTER_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    export = tmp_path / "export"
    source = write_catalogue(
        export,
        [
            {
                "listing_id": "GOOD-1",
                "photos": [tiny_jpeg(1, (64, 48)), ("empty.jpg", b"")],
            },
            {"listing_id": "BAD-1", "photos": [tiny_jpeg(2, (64, 48))], "style": "baroque"},
            {"listing_id": "FAKE-1", "photos": [("fake.jpg", b"<!DOCTYPE html><p>moved</p>")]},
        ],
    )
    code = main(["nightly", "--catalogue", str(source), "--storage-root", str(tmp_path / "m")])
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert code == EXIT_FAILED, out + err
    _no_stack_traces(out + err)
    assert "REJECTED catalogue row 2: listing 'BAD-1': style 'baroque'" in err
    assert "FAILED fake-1:" in err and "not an image" in err
    assert "1 failed listing(s), 1 failed photo(s), 1 rejected catalogue row(s)" in out
    assert "PHOTO FAILED good-1: empty.jpg: " in err  # named in the summary, not only the log
    assert "Staging was skipped" in out and "BKBN_STAGING_MODEL" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert rows["good-1"].rstrip().endswith("ok")
    assert MediaStore(tmp_path / "m").read_manifest("brochures", "good-1")["key"].size
    [hint] = [line for line in out.splitlines() if line.startswith("See the runs and lineage")]
    assert f"DAGSTER_HOME={tmp_path / '.dagster_home'} " in hint
    dagster = hint.split()[-4]  # the dagster command this environment has
    assert dagster == "dagster" or Path(dagster).is_file(), hint


def test_nightly_with_a_missing_catalogue_is_a_usage_error_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("BKBN_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["nightly", "--catalogue", str(tmp_path / "nope.csv")])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE
    assert captured.err.strip() == f"error: catalogue {tmp_path / 'nope.csv'} not found"
    assert "Emulator" not in captured.out and not (tmp_path / ".dagster_home").exists()


def test_the_catalogue_s3_endpoint_comes_from_the_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bkbn_pipelines.cli import _parser

    monkeypatch.setenv("BKBN_CATALOGUE_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    args = _parser().parse_args(["nightly", "--catalogue", "s3://exports/listings.csv"])
    assert args.s3_endpoint_url == "http://127.0.0.1:9000"
    given = ["nightly", "--catalogue", "s3://e/l.csv", "--s3-endpoint-url", "http://h:1"]
    assert _parser().parse_args(given).s3_endpoint_url == "http://h:1"  # the flag wins
