"""Settings from the environment, device choice, the local backend and the public names."""

from __future__ import annotations

import importlib

import pytest

import bkbn_pipelines.runtime as runtime_pkg
from bkbn_pipelines._errors import ConfigError, ModelNotFoundError, UnknownGraphError
from bkbn_pipelines._events import Result
from bkbn_pipelines.backends import GraphRequest, InputFile
from bkbn_pipelines.backends._base import Backend
from bkbn_pipelines.backends._local import LocalBackend
from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings
from bkbn_pipelines.runtime._device import resolve_device, resolve_dtype
from bkbn_pipelines.runtime._models import weights_label

from ._photos import photo_bytes


def test_settings_from_the_environment(tmp_path) -> None:
    env = {
        "BKBN_DEVICE": "CPU",
        "BKBN_MODELS_DIR": str(tmp_path),
        "BKBN_STAGING_MODEL": "sd-inpaint",
        "BKBN_STEPS": "12",
        "BKBN_RENDER_SIZE": "384",
        "BKBN_ALLOW_UNTRAINED": "yes",
    }
    settings = RuntimeSettings.from_env(env, steps=9)
    assert settings.device == "cpu" and settings.steps == 9 and settings.render_size == 384
    assert settings.allow_untrained is True
    assert settings.model_path("staging_model") == tmp_path / "sd-inpaint"
    assert settings.model_path("controlnet_model") is None
    with pytest.raises(ConfigError, match="BKBN_STEPS"):
        RuntimeSettings.from_env({"BKBN_STEPS": "many"})
    with pytest.raises(ConfigError, match="BKBN_DEVICE"):
        RuntimeSettings.from_env({"BKBN_DEVICE": "tpu"})
    with pytest.raises(ConfigError, match="BKBN_ALLOW_UNTRAINED"):
        RuntimeSettings.from_env({"BKBN_ALLOW_UNTRAINED": "perhaps"})
    with pytest.raises(AttributeError):
        settings.steps = 3  # frozen


def test_device_and_precision_choice() -> None:
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("auto", "cuda") == "float16"
    assert resolve_dtype("bfloat16", "cuda") == "bfloat16"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="BKBN_DEVICE"):
            resolve_device("cuda")


@pytest.fixture
def hardware(monkeypatch):
    """Pretend the machine has the given devices: ``hardware(cuda=..., mps=...)``."""
    from bkbn_pipelines.runtime import _device

    def pretend(*, cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(_device, "_available", lambda: (cuda, mps))

    return pretend


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(hardware, cuda, mps, expected) -> None:
    hardware(cuda=cuda, mps=mps)
    device = resolve_device("auto")
    assert device == expected
    assert resolve_dtype("auto", device) == ("float32" if expected == "cpu" else "float16")
    settings = RuntimeSettings(device="auto")
    assert LocalRuntime(settings).device == expected
    assert LocalRuntime(settings).dtype == resolve_dtype("auto", expected)


def test_an_absent_device_asked_for_by_name_is_a_config_error(hardware) -> None:
    hardware(cuda=False, mps=True)
    with pytest.raises(ConfigError, match=r"BKBN_DEVICE.*'cuda'.*no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("mps") == "mps"
    hardware(cuda=True, mps=False)
    with pytest.raises(ConfigError, match=r"BKBN_DEVICE.*'mps'"):
        resolve_device("mps")
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cpu") == "cpu"


def test_half_precision_on_gpus_and_full_on_the_cpu() -> None:
    assert resolve_dtype("auto", "cuda") == "float16"
    assert resolve_dtype("auto", "mps") == "float16"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("float32", "cuda") == "float32"  # an explicit choice wins


def test_weights_label_reads_the_marker(tmp_path, tiny_inpaint_pipeline) -> None:
    assert weights_label(tiny_inpaint_pipeline) == "untrained"
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionInpaintPipeline"}')
    assert weights_label(tmp_path) == "pretrained"
    (tmp_path / "model_index.json").write_text('{"_bkbn_weights": "untrained"}')
    assert weights_label(tmp_path) == "untrained"


def test_the_hub_is_offline_before_diffusers_is_imported(tiny_inpaint_pipeline) -> None:
    import huggingface_hub.constants
    from diffusers.utils import hub_utils

    # Read once, when huggingface_hub is imported: setting the variable later does nothing.
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert hub_utils.HF_HUB_OFFLINE is True


@pytest.mark.parametrize("setting", ["staging_model", "controlnet_model", "segmentation_model"])
def test_a_hub_id_is_refused_without_touching_the_network(
    tmp_path, monkeypatch, tiny_inpaint_pipeline, setting
) -> None:
    import socket

    attempts: list[object] = []

    def no_network(self, address):
        attempts.append(address)
        raise OSError("these tests have no network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.chdir(tmp_path)  # where a folder "someone/some-model" does not exist
    settings = RuntimeSettings(
        device="cpu",
        steps=2,
        **{"staging_model": str(tiny_inpaint_pipeline), setting: "someone/some-model"},
    )
    variable = f"BKBN_{setting.upper()}"
    with pytest.raises(ModelNotFoundError, match=variable) as caught:
        LocalRuntime(settings).run(
            "staging", [photo_bytes("int_cc0_kitchen.jpg")], {"style": "coastal"}
        )
    assert "Hugging Face Hub id" in str(caught.value)
    assert "not downloaded" in str(caught.value)
    assert attempts == []


def test_allow_untrained_builds_a_labelled_fallback(tmp_path) -> None:
    settings = RuntimeSettings(device="cpu", models_dir=tmp_path, allow_untrained=True, steps=2)
    events = list(
        LocalRuntime(settings).run(
            "staging", [photo_bytes("int_cc0_kitchen.jpg")], {"style": "coastal"}
        )
    )
    assert isinstance(events[-1], Result), events[-1]
    assert events[-1].data["weights"] == "untrained"
    assert (tmp_path / "bkbn-untrained-tiny-inpaint" / "model_index.json").is_file()


def test_local_backend_runs_a_request(tiny_settings) -> None:
    backend = LocalBackend(tiny_settings)
    assert isinstance(backend, Backend) and backend.name == "local"
    request = GraphRequest(
        graph="relight",
        inputs=[InputFile(photo_bytes("int_cc0_kitchen.jpg"), "image/jpeg", "kitchen.jpg")],
    )
    events = list(backend.stream(request))
    assert events[0].type == "run.start" and isinstance(events[-1], Result)
    outputs = backend.outputs(events[-1])
    assert set(outputs) == {"image"} and outputs["image"].data.startswith(b"\x89PNG")
    with pytest.raises(UnknownGraphError):
        backend.stream(GraphRequest(graph="teleport", inputs=[]))
    backend.close()


def test_runtime_exports_are_public_and_importable() -> None:
    for module_name in ("bkbn_pipelines.runtime", "bkbn_pipelines.runtime.testing"):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert not name.startswith("_"), name
            assert getattr(module, name) is not None
    assert set(runtime_pkg.__all__) >= {"LocalRuntime", "RuntimeSettings", "register", "Graph"}


def test_all_image_graphs_are_registered() -> None:
    LocalRuntime(RuntimeSettings(device="cpu"))
    names = runtime_pkg.graph_names()
    for graph in ("staging-v2.4", "relight-v1.2", "declutter-v1.1"):
        assert graph in names
