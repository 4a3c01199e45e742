"""The floor-plan graph: scored against the plan a synthetic capture was made from,
run on a real RGB-D frame, and its outputs opened with the tools users open them with."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import ezdxf
import numpy as np
import pytest
from shapely.geometry import LineString, Polygon

import bkbn_pipelines.runtime.graphs  # noqa: F401  (registers the graphs)
from bkbn_pipelines._events import ErrorEvent, NodeDone, RenderProgress, Result
from bkbn_pipelines.runtime import get_graph, run_graph
from bkbn_pipelines.runtime.capture import (
    Intrinsics,
    bundle_from_rgbd,
    demo_plan,
    plan_truth,
    synthesize_capture,
    write_capture,
)

from .test_capture import _rewrite

RGBD = Path(__file__).resolve().parents[1] / "data" / "rgbd"
NODES = ["load_capture", "backproject", "floor_slice", "walls", "rooms", "labels", "openings",
         "export"]  # fmt: skip


def _run(bundle: bytes, **params) -> list:
    return list(run_graph(get_graph("floor-plan"), [bundle], params))


def _result(bundle: bytes, **params) -> Result:
    events = _run(bundle, **params)
    assert isinstance(events[-1], Result), events[-1]
    return events[-1]


@pytest.fixture(scope="module")
def demo_bundle() -> bytes:
    return synthesize_capture(demo_plan(), seed=0)


@pytest.fixture(scope="module")
def demo_result(demo_bundle: bytes) -> Result:
    return _result(demo_bundle, units="metric")


def _wall_lines(walls) -> list[tuple[LineString, float]]:
    return [(LineString([tuple(w["start"]), tuple(w["end"])]), w["thickness"]) for w in walls]


def _parallel(a: LineString, b: LineString) -> bool:
    (ax0, ay0), (ax1, ay1) = a.coords
    (bx0, by0), (bx1, by1) = b.coords
    cross = (ax1 - ax0) * (by1 - by0) - (ay1 - ay0) * (bx1 - bx0)
    return abs(cross) < 0.05 * a.length * b.length


def _offset(a: LineString, b: LineString) -> float:
    """Distance between two parallel lines where they overlap (inf if they don't)."""
    mid = a.interpolate(0.5, normalized=True)
    proj = b.project(mid)
    if not 0 < proj < b.length:
        return math.inf
    return mid.distance(b.interpolate(proj))


def test_graph_is_registered_with_the_contract_version():
    assert get_graph("floor-plan").full_name == "floor-plan-v1.0"
    assert [n.name for n in get_graph("floor-plan").nodes] == NODES


def test_event_sequence_and_result_fields(demo_result: Result, demo_bundle: bytes):
    events = _run(demo_bundle)
    assert [e.node for e in events if isinstance(e, NodeDone)] == NODES
    assert any(isinstance(e, RenderProgress) for e in events)
    assert set(demo_result.artifacts) == {"plan", "svg", "dxf"}
    assert demo_result.data["weights"] == "none"
    assert json.loads(demo_result.artifacts["plan"].data) == demo_result.data["plan"]


def test_rooms_match_the_true_plan_with_iou_at_least_0_9(demo_result: Result):
    plan = demo_result.data["plan"]
    truth = plan_truth(demo_plan())
    assert len(plan["rooms"]) == len(truth.rooms)
    for label, true_poly in truth.rooms:
        found = [r for r in plan["rooms"] if r["label"] == label]
        assert len(found) == 1, label
        poly = Polygon(found[0]["polygon"])
        iou = poly.intersection(true_poly).area / poly.union(true_poly).area
        assert iou >= 0.9, (label, iou)
        assert found[0]["area_m2"] == pytest.approx(true_poly.area, rel=0.1)
        assert found[0]["label_source"] == "frames"


def test_walls_lie_within_5_cm_of_the_true_walls(demo_result: Result):
    detected = _wall_lines(demo_result.data["plan"]["walls"])
    true = _wall_lines(demo_plan()["walls"])
    for line, _ in detected:  # every detected wall is a real one
        errors = [_offset(line, t) for t, _ in true if _parallel(line, t)]
        assert min(errors) <= 0.05, line
    for t, _ in true:  # and every real wall longer than 0.5 m is found
        if t.length < 0.5:
            continue
        errors = [_offset(t, line) for line, _ in detected if _parallel(line, t)]
        errors += [_offset(line, t) for line, _ in detected if _parallel(line, t)]
        assert min(errors) <= 0.05, t
    inner = [w for w in demo_result.data["plan"]["walls"] if not w["exterior"]]
    assert len(inner) == 2  # the two walls seen from both sides; thickness measured
    assert all(w["thickness"] == pytest.approx(0.12, abs=0.02) for w in inner)


def test_doors_and_windows_are_found(demo_result: Result):
    openings = demo_result.data["plan"]["openings"]
    truth = plan_truth(demo_plan()).openings

    def near(kind, center):
        return [
            o for o in openings
            if o["type"] == kind and math.dist(o["position"], center) < 0.15
        ]  # fmt: skip

    for item in truth:
        match = near(item["type"], item["center"])
        assert len(match) == 1, item
        assert match[0]["width"] == pytest.approx(item["width"], abs=0.15)
    assert len(openings) == len(truth)
    assert sum(o["traversed"] for o in openings) == 2  # the walk went through two doors


def test_labels_fall_back_to_room_sizes(demo_bundle: bytes):
    def strip(meta):
        for frame in meta["frames"]:
            frame.pop("room", None)

    plan = _result(_rewrite(demo_bundle, strip)).data["plan"]
    labels = {r["label"]: r["label_source"] for r in plan["rooms"]}
    assert labels == {"living": "size", "bedroom": "size", "bathroom": "size"}


def test_units_change_the_display_not_the_metres(demo_bundle: bytes, demo_result: Result):
    imperial = _result(demo_bundle, units="imperial")
    metric_plan, imperial_plan = demo_result.data["plan"], imperial.data["plan"]
    assert imperial_plan["units"] == "imperial" and metric_plan["units"] == "metric"
    for m, i in zip(metric_plan["rooms"], imperial_plan["rooms"], strict=True):
        assert m["area_m2"] == i["area_m2"]
        assert m["area_display"].endswith("m²")
        assert i["area_display"].endswith("sq ft")
        assert float(i["area_display"].split()[0]) == pytest.approx(m["area_m2"] * 10.7639, abs=1)
    assert "sq ft" in imperial.artifacts["svg"].data.decode()


def test_svg_is_xml_and_labels_the_rooms(demo_result: Result):
    root = ET.fromstring(demo_result.artifacts["svg"].data)
    assert root.tag.endswith("svg")
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for label in ("Living", "Bedroom", "Bathroom", "m²"):
        assert label in text


def test_dxf_opens_passes_audit_and_has_the_layers(demo_result: Result, tmp_path: Path):
    path = tmp_path / "plan.dxf"
    path.write_bytes(demo_result.artifacts["dxf"].data)
    doc = ezdxf.readfile(path)
    auditor = doc.audit()
    assert not auditor.has_errors, [str(e) for e in auditor.errors]
    layers = {e.dxf.layer for e in doc.modelspace()}
    assert {"WALLS", "ROOMS", "OPENINGS", "TEXT"} <= layers
    rooms = doc.modelspace().query('LWPOLYLINE[layer=="ROOMS"]')
    assert len(rooms) == 3
    texts = [t.dxf.text for t in doc.modelspace().query("TEXT")]
    assert "Living" in texts


def test_real_rgbd_frame_gives_a_plausible_wall_layout():
    depth = np.fromfile(RGBD / "kitchen_5_Depth.raw", dtype="<u2").reshape(240, 424)
    k = Intrinsics(212.381516, 212.381516, 213.919891, 116.833138, 424, 240)
    result = _result(bundle_from_rgbd(depth, k, image=(RGBD / "kitchen_5_Color.png").read_bytes()))
    plan = json.loads(result.artifacts["plan"].data)
    assert plan["frame"]["floor_source"] == "assumed"  # the floor is not in view
    walls = plan["walls"]
    assert walls and max(w["length_m"] for w in walls) >= 1.0
    median = float(np.median(depth[depth > 0])) / 1000
    for wall in walls:
        coords = np.array([wall["start"], wall["end"]], dtype=float)
        assert np.all(np.isfinite(coords))
        # in front of the camera (plan y is forward), no nearer than the nearest depth
        # and not much beyond the depth range; the walls frame the median depth
        dist = LineString(coords).distance(LineString([(0, 0), (0, 0.001)]))
        assert 0.5 < dist < 4.0
    far = max(LineString([tuple(w["start"]), tuple(w["end"])]).distance(
        LineString([(0, 0), (0, 0.001)])) for w in walls)  # fmt: skip
    assert far >= median
    ET.fromstring(result.artifacts["svg"].data)
    assert not ezdxf.read(io.StringIO(result.artifacts["dxf"].data.decode())).audit().has_errors


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x00\x18ftypmp42" + bytes(64), "a plain video has none of them"),
        (b"", "the input is empty"),
    ],
    ids=["video", "empty"],
)
def test_unusable_inputs_end_in_a_clear_error_event(data: bytes, message: str):
    events = _run(data)
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error_type == "invalid_request_error"
    assert message in events[-1].message


def test_bundle_without_depth_is_refused_naming_depth():
    k = Intrinsics(100, 100, 31.5, 23.5, 64, 48)
    image = (RGBD / "kitchen_5_Depth.png").read_bytes()
    data = write_capture([{"pose": np.eye(4), "intrinsics": k, "image": image}])
    events = _run(data)
    assert isinstance(events[-1], ErrorEvent)
    assert "no frame has depth" in events[-1].message


@pytest.mark.parametrize(
    "params",
    [{"units": "cubits"}, {"slice_band": [2, 1]}, {"grid_cm": 50}],
    ids=["units", "band", "grid"],
)
def test_bad_parameters_are_invalid_requests(demo_bundle: bytes, params: dict):
    events = _run(demo_bundle, **params)
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error_type == "invalid_request_error"
    assert next(iter(params)) in events[-1].message


def test_local_runtime_refuses_bad_units_before_the_run(demo_bundle: bytes):
    from bkbn_pipelines._errors import InvalidParamsError
    from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings

    runtime = LocalRuntime(RuntimeSettings(device="cpu"))
    with pytest.raises(InvalidParamsError, match="units"):
        runtime.run("floor-plan", [demo_bundle], {"units": "cubits"})
    result = list(runtime.run("floor-plan", [demo_bundle], {"units": "imperial"}))[-1]
    assert isinstance(result, Result)
    assert result.data["usage"] == {"tokens": 10}
    assert result.data["width"] > 0 and result.data["height"] > 0


def test_the_demo_capture_in_examples_gives_the_demo_flat():
    path = Path(__file__).resolve().parents[2] / "examples" / "captures" / "demo_walkthrough.zip"
    data = path.read_bytes()
    assert len(data) < 3 * 1024 * 1024
    plan = _result(data).data["plan"]
    assert sorted(r["label"] for r in plan["rooms"]) == ["bathroom", "bedroom", "living"]
    assert plan["total_area_m2"] == pytest.approx(34.5, abs=0.5)


def test_graph_packages_export_public_names():
    from bkbn_pipelines.runtime.graphs import brochure, floorplan

    for module in (brochure, floorplan):
        for name in module.__all__:
            assert not name.startswith("_") and getattr(module, name) is not None


def test_a_plan_turned_27_degrees_is_found_in_its_own_frame():
    def turn(point, angle=math.radians(27)):
        c, s = math.cos(angle), math.sin(angle)
        return [point[0] * c - point[1] * s + 1.0, point[0] * s + point[1] * c - 2.0]

    plan = demo_plan()
    plan["walls"] = [dict(w, start=turn(w["start"]), end=turn(w["end"])) for w in plan["walls"]]
    plan["rooms"] = [dict(r, seed=turn(r["seed"])) for r in plan["rooms"]]
    for kind in ("doors", "windows"):
        plan[kind] = [dict(o, center=turn(o["center"])) for o in plan[kind]]
    bundle = synthesize_capture(plan, seed=1, frames_per_room=8, width=128, height=96)
    result = _result(bundle).data["plan"]
    assert result["frame"]["manhattan_angle_deg"] == pytest.approx(27, abs=0.3)
    for label, true_poly in plan_truth(plan).rooms:
        (found,) = [Polygon(r["polygon"]) for r in result["rooms"] if r["label"] == label]
        assert found.intersection(true_poly).area / found.union(true_poly).area >= 0.9
