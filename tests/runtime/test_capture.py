"""Capture bundles: the format reader, its errors, the writer and the generator."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from bkbn_pipelines._errors import CaptureBundleError
from bkbn_pipelines.runtime import capture
from bkbn_pipelines.runtime.capture import (
    PLAIN_VIDEO_MESSAGE,
    Intrinsics,
    bundle_from_rgbd,
    demo_plan,
    plan_truth,
    read_capture,
    synthesize_capture,
    write_capture,
)

K = Intrinsics(fx=100.0, fy=100.0, cx=31.5, cy=23.5, width=64, height=48)


def _frame(**overrides):
    depth = np.full((48, 64), 2000, dtype=np.uint16)
    depth[0, 0] = 0
    frame = {"pose": np.eye(4), "intrinsics": K, "depth_mm": depth, "room": "kitchen"}
    frame.update(overrides)
    return frame


def _rewrite(bundle: bytes, edit) -> bytes:
    """The same bundle with capture.json changed by ``edit(meta)``."""
    src = zipfile.ZipFile(io.BytesIO(bundle))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "capture.json":
                meta = json.loads(data)
                edit(meta)
                data = json.dumps(meta).encode()
            dst.writestr(info.filename, data)
    return out.getvalue()


def test_all_exports_are_public_and_importable():
    for name in capture.__all__:
        assert not name.startswith("_")
        assert getattr(capture, name) is not None


def test_round_trip_keeps_pose_intrinsics_depth_and_room():
    pose = np.eye(4)
    pose[:3, 3] = [1.0, 1.5, -2.0]
    bundle = read_capture(write_capture([_frame(pose=pose), _frame()]))
    assert len(bundle.frames) == 2
    first = bundle.frames[0]
    assert np.allclose(first.pose, pose)
    assert first.intrinsics == K
    assert first.room == "kitchen"
    assert first.depth_m.shape == (48, 64)
    assert first.depth_m[1, 1] == pytest.approx(2.0)
    assert first.depth_m[0, 0] == 0
    assert np.allclose(bundle.up, [0, 1, 0])


def test_z16_raw_depth_and_rgbd_helper():
    depth = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64)
    bundle = read_capture(bundle_from_rgbd(depth, K, room="kitchen"))
    assert np.allclose(bundle.up, [0, -1, 0])
    assert bundle.frames[0].depth_m[10, 3] == pytest.approx(depth[10, 3] / 1000)


def test_opengl_poses_are_turned_to_opencv_axes():
    data = _rewrite(write_capture([_frame()]), lambda m: m.update(camera="opengl"))
    pose = read_capture(data).frames[0].pose
    assert np.allclose(pose[:3, :3], np.diag([1, -1, -1]))


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64),  # mp4
        b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + bytes(64),  # mov
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(64),  # webm
    ],
    ids=["mp4", "mov", "webm"],
)
def test_plain_video_gets_the_error_that_says_what_is_needed(data):
    with pytest.raises(CaptureBundleError) as info:
        read_capture(data)
    assert str(info.value) == PLAIN_VIDEO_MESSAGE
    assert "camera poses" in str(info.value) and "docs/capture-bundle.md" in str(info.value)


def test_the_plain_video_error_asks_for_poses_depth_and_intrinsics_all():
    message = PLAIN_VIDEO_MESSAGE
    assert "camera poses, depth and intrinsics" in message
    assert " or " not in message and "neither" not in message  # all three are required


def test_zip_holding_only_a_video_is_a_plain_video():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("walkthrough.mp4", b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(CaptureBundleError, match="a plain video has none of them"):
        read_capture(buf.getvalue())


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m["frames"][1].pop("pose"), r"frames\[1\]\.pose is missing"),
        (
            lambda m: m["frames"][0]["intrinsics"].pop("fy"),
            r"frames\[0\]\.intrinsics is missing fy",
        ),
        (
            lambda m: m["frames"][0].update(depth="depth/nope.png"),
            r"'depth/nope.png'.*not in the zip",
        ),
        (lambda m: m["frames"][0].update(pose=[1, 0, 0]), r"frames\[0\]\.pose must be 16 numbers"),
        (lambda m: m.update(frames=[]), r"frames is missing or empty"),
        (lambda m: m.update(version=7), r"version must be 1"),
        (lambda m: m.update(units="furlong"), r"units must be one of"),
    ],
    ids=["pose", "fy", "depth-file", "pose-shape", "no-frames", "version", "units"],
)
def test_validation_names_exactly_what_is_wrong(edit, expected):
    data = _rewrite(write_capture([_frame(), _frame()]), edit)
    with pytest.raises(CaptureBundleError, match=expected):
        read_capture(data)


def test_zip_without_capture_json_and_non_zip_input():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("frames/0.jpg", b"\xff\xd8\xff")
    with pytest.raises(CaptureBundleError, match=r"capture\.json is missing"):
        read_capture(buf.getvalue())
    with pytest.raises(CaptureBundleError, match="not a zip"):
        read_capture(b"hello, this is text")


def test_z16_with_the_wrong_size_is_refused():
    data = bundle_from_rgbd(np.zeros((48, 64), np.uint16), K)
    data = _rewrite(data, lambda m: m["frames"][0]["depth"].update(width=65))
    with pytest.raises(CaptureBundleError, match="expected 65x48x2 for Z16"):
        read_capture(data)


def test_plan_truth_rooms_of_the_demo_plan():
    truth = plan_truth(demo_plan())
    areas = {label: poly.area for label, poly in truth.rooms}
    assert areas["living"] == pytest.approx(5.75 * 3.815 - 0.375 * 0.065, abs=0.02)
    assert areas["bathroom"] == pytest.approx(1.815 * 1.815, abs=0.01)
    assert {o["type"] for o in truth.openings} == {"door", "window"}


def test_synthetic_capture_is_deterministic_and_valid():
    plan = {
        "wall_height": 2.5,
        "walls": [
            {"start": a, "end": b, "thickness": 0.2}
            for a, b in [([0, 0], [3, 0]), ([3, 0], [3, 3]), ([3, 3], [0, 3]), ([0, 3], [0, 0])]
        ],
        "rooms": [{"label": "office", "seed": [1.5, 1.5]}],
    }
    one = synthesize_capture(plan, seed=3, frames_per_room=4, width=48, height=36)
    two = synthesize_capture(plan, seed=3, frames_per_room=4, width=48, height=36)
    assert one == two
    bundle = read_capture(one)
    assert len(bundle.frames) == 4
    assert {f.room for f in bundle.frames} == {"office"}
    depth = bundle.frames[0].depth_m
    valid = depth[depth > 0]
    # from near the centre of a 2.8 m room every wall, floor and ceiling hit is within 3 m
    assert valid.size > 0.95 * depth.size
    assert valid.min() > 0.5 and valid.max() < 3.0


def test_a_damaged_member_is_a_capture_error():
    data = bytearray(write_capture([_frame()]))
    start = data.find(b"depth/00000.png")
    # flip bytes inside the stored data of the first depth member (after its name)
    for offset in range(start + 40, start + 60):
        data[offset] ^= 0xFF
    with pytest.raises(CaptureBundleError, match=r"depth/00000\.png"):
        read_capture(bytes(data))
