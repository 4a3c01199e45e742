"""``bkbn run`` against the emulator (and the local backend for a failing run)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from bkbn_pipelines.cli import EXIT_API, EXIT_FAILED, EXIT_NETWORK, EXIT_OK, EXIT_USAGE, main


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "room.jpg"
    Image.new("RGB", (96, 64), (180, 150, 120)).save(path, "JPEG")
    return path


@pytest.fixture
def api_env(monkeypatch, emulator_url, emulator_admin):
    key = emulator_admin.new_key()
    for name in ("BKBN_CLIENT_ID", "BKBN_FEDERATION_RULE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BKBN_API_KEY", key.api_key)
    monkeypatch.setenv("BKBN_BASE_URL", emulator_url)
    return key


def test_run_shows_progress_and_writes_the_render(api_env, photo, tmp_path, capsys):
    out = tmp_path / "renders" / "staged.png"
    code = main(
        ["run", "staging", "--input", str(photo), "--param", "style=scandi-warm", "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert captured.out.strip() == str(out)
    assert "render [" in captured.err and "4/4" in captured.err
    assert out.read_bytes().startswith(b"\x89PNG")
    assert api_env.api_key not in captured.err + captured.out


def test_json_lines_and_multi_output_graph(api_env, photo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps({"address": "1 Rue de Besançon", "price": 250000, "beds": 2}))
    code = main(
        [
            "run",
            "brochure",
            "--input",
            str(photo),
            "--input",
            str(photo),
            "--param",
            f"listing=@{listing}",
            "--json",
            "--out",
            "b/brochure.pdf",
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines[0]["event"] == "run.start"
    assert lines[-2]["event"] == "result"
    output = lines[-1]
    assert output["event"] == "output" and output["path"] == "b/brochure.pdf"
    assert (tmp_path / "b" / "brochure.pdf").read_bytes().startswith(b"%PDF")
    assert set(output["outputs"]) >= {"pdf", "html"}
    for path in output["outputs"].values():
        assert (tmp_path / path).stat().st_size > 0


def test_usage_errors_exit_2(api_env, photo, capsys):
    assert main(["run", "staging", "--input", str(photo), "--param", "novalue"]) == EXIT_USAGE
    assert main(["run", "staging", "--input", "/nonexistent/photo.jpg"]) == EXIT_USAGE
    assert main(["run", "staging", "--backend", "local", "--input", "https://x.test/a.jpg"]) == (
        EXIT_USAGE
    )
    with pytest.raises(SystemExit) as info:
        main(["run", "staging"])  # --input missing: argparse
    assert info.value.code == EXIT_USAGE


def test_api_error_exits_3(api_env, photo, capsys):
    code = main(["run", "staging", "--input", str(photo), "--param", "style=baroque"])
    assert code == EXIT_API
    assert "invalid_request_error" in capsys.readouterr().err


def test_network_error_exits_4(monkeypatch, photo, capsys):
    monkeypatch.setenv("BKBN_API_KEY", "bkbn_sk_whatever_0000")
    code = main(["run", "relight", "--input", str(photo), "--base-url", "http://127.0.0.1:9"])
    assert code == EXIT_NETWORK
    assert "network error" in capsys.readouterr().err


def test_failed_run_exits_5_with_local_backend(photo, capsys):
    code = main(["run", "floor-plan", "--backend", "local", "--input", str(photo)])
    assert code == EXIT_FAILED
    assert "capture bundle" in capsys.readouterr().err


def test_data_url_input_passes_through(api_env, tmp_path, capsys):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buf, "PNG")
    import base64

    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    out = tmp_path / "r.png"
    assert main(["run", "relight", "--input", uri, "--out", str(out)]) == EXIT_OK
    assert out.exists()


def test_bkbn_console_script_against_the_emulator(api_env, photo, tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = shutil.which("bkbn") or str(Path(sys.executable).with_name("bkbn"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [exe, "run", "staging", "--input", str(photo), "--param", "style=scandi-warm"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = tmp_path / done.stdout.strip()
    assert written.suffix == ".png" and written.read_bytes().startswith(b"\x89PNG")
    assert "render [" in done.stderr


def test_progress_bar_redraws_on_a_terminal_and_logs_quarters_otherwise():
    from bkbn_pipelines import NodeDone, NodeStart, RenderProgress
    from bkbn_pipelines.client._cli import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    events = [NodeStart(node="render")]
    events += [RenderProgress(step=i, total=8) for i in range(1, 9)]
    events += [NodeDone(node="render", ms=5)]
    for stream in (Terminal(), io.StringIO()):
        progress = _Progress(stream)
        for event in events:
            progress.show(event)
        progress.close()
        text = stream.getvalue()
        assert "[##############################] 8/8" in text
        assert text.splitlines()[-1].split() == ["render", "5", "ms"]
        if isinstance(stream, Terminal):
            assert text.count("\r") == 8
        else:
            assert "\r" not in text and text.count("  render [") == 5  # first, each quarter


@pytest.fixture(scope="module")
def capture_zip(tmp_path_factory):
    from bkbn_pipelines.runtime.capture import demo_plan, synthesize_capture

    path = tmp_path_factory.mktemp("capture") / "flat.zip"
    path.write_bytes(synthesize_capture(demo_plan(), seed=0))
    return path


def _floor_plan(capture_zip, out, capsys) -> str:
    args = ["run", "floor-plan", "--backend", "local", "--input", str(capture_zip)]
    code = main([*args, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    return captured.out.strip()


def test_out_with_an_output_suffix_gets_that_output(capture_zip, tmp_path, capsys):
    import xml.etree.ElementTree as ET

    printed = _floor_plan(capture_zip, tmp_path / "plan.svg", capsys)
    assert printed == str(tmp_path / "plan.svg")
    assert ET.fromstring((tmp_path / "plan.svg").read_bytes()).tag.endswith("svg")
    assert "walls" in json.loads((tmp_path / "plan.json").read_text())
    assert b"SECTION" in (tmp_path / "plan.dxf").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.dxf", "plan.json", "plan.svg"]

    _floor_plan(capture_zip, tmp_path / "dxf" / "plan.dxf", capsys)
    assert sorted(p.name for p in (tmp_path / "dxf").iterdir()) == [
        "plan.dxf",
        "plan.json",
        "plan.svg",
    ]
    assert b"SECTION" in (tmp_path / "dxf" / "plan.dxf").read_bytes()


def test_out_with_another_suffix_keeps_the_primary_output_there(capture_zip, tmp_path, capsys):
    printed = _floor_plan(capture_zip, tmp_path / "plan.out", capsys)
    assert printed == str(tmp_path / "plan.out")
    assert "walls" in json.loads((tmp_path / "plan.out").read_text())  # the primary: plan
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "plan.dxf.dxf",
        "plan.out",
        "plan.svg.svg",
    ]


def test_write_outputs_with_outputs_that_share_a_suffix(tmp_path):
    from bkbn_pipelines import Artifact, Result
    from bkbn_pipelines.client._cli import write_outputs

    outputs = {
        "pdf": Artifact(b"%PDF", "application/pdf"),
        "html": Artifact(b"<html>", "text/html; charset=utf-8"),
        "storyboard": Artifact(b"{}", "application/json"),
        "palette": Artifact(b"[]", "application/json"),
    }
    path, written = write_outputs("brochure", Result(data={}), outputs, tmp_path / "b.html")
    assert path == tmp_path / "b.html" and written["html"].read_bytes() == b"<html>"
    assert written["pdf"] == tmp_path / "b.pdf"
    assert written["storyboard"] == tmp_path / "b.storyboard.json"  # two JSON outputs
    assert written["palette"] == tmp_path / "b.palette.json"
    # A suffix that two outputs share names neither: the primary goes there, as before.
    path, written = write_outputs("brochure", Result(data={}), outputs, tmp_path / "c.json")
    assert written["pdf"] == path == tmp_path / "c.json"
    assert written["html"] == tmp_path / "c.html.html"


def test_untrained_staging_says_plainly_that_the_render_is_noise(
    photo, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("BKBN_STAGING_MODEL", raising=False)
    monkeypatch.setenv("BKBN_ALLOW_UNTRAINED", "1")
    monkeypatch.setenv("BKBN_STEPS", "2")
    monkeypatch.setenv("BKBN_MODELS_DIR", str(tmp_path / "models"))
    out = tmp_path / "staged.png"
    args = ["run", "staging", "--backend", "local", "--input", str(photo), "--out", str(out)]
    code = main([*args, "--param", "style=japandi"])
    err = capsys.readouterr().err
    assert code == EXIT_OK, err
    assert "WITHOUT real model weights" in err and "noise" in err
    assert "BKBN_STAGING_MODEL" in err
    assert out.read_bytes().startswith(b"\x89PNG")
