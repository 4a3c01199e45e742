"""Tiny, seeded, randomly initialised diffusers pipelines for tests and demos.

:func:`build_tiny_inpaint_pipeline` writes a complete ``StableDiffusionInpaintPipeline``
folder in diffusers format, small enough to run the real pipeline code on a CPU in
about a second at 64 pixels.  Nothing is downloaded: the tokenizer is a byte-level BPE
tokenizer built from a vocabulary written here.  The folder carries a
``bkbn_weights.json`` marker saying the weights are untrained, so every result made
with it is labelled ``weights: "untrained"``.

Other parts of the project (the emulator, the Dagster tests, the demo) build their
local-runtime models with this function; its signature is stable.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
    "WEIGHTS_MARKER",
    "build_tiny_controlnet",
    "build_tiny_inpaint_pipeline",
    "build_tiny_segmentation_model",
    "byte_level_vocab",
]

#: Prompt length of the tiny text encoder, in tokens.  Its tokenizer has no merges, so
#: a token is one byte and the graphs' prompts need more than CLIP's usual 77.
TOKENS = 320

#: Name of the marker file that records how a pipeline folder's weights were made.
WEIGHTS_MARKER = "bkbn_weights.json"


def byte_level_vocab() -> dict[str, int]:
    """A CLIP-style vocabulary of the 256 byte symbols, alone and word-final.

    With no merges, every word becomes one token per byte: enough for a tokenizer
    that must run, not one that must understand.
    """
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    symbols = _byte_symbols()
    for symbol in symbols:
        vocab[symbol] = len(vocab)
    for symbol in symbols:
        vocab[symbol + "</w>"] = len(vocab)
    return vocab


def _byte_symbols() -> list[str]:
    """The printable stand-in of each byte that byte-level BPE tokenizers use.

    Printable Latin-1 bytes stand for themselves; the others are shifted to code
    points from 256 upwards, in byte order.
    """
    printable = (
        set(range(ord("!"), ord("~") + 1))
        | set(range(ord("\xa1"), ord("\xac") + 1))
        | set(range(ord("\xae"), ord("\xff") + 1))
    )
    symbols, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def build_tiny_inpaint_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Build a tiny random ``StableDiffusionInpaintPipeline`` and save it at ``path``.

    The same ``seed`` always gives the same weights.  The VAE downsamples by 2, the
    UNet has two blocks of 16 and 32 channels and the text encoder two layers of
    width 32.  Returns ``path`` as a :class:`~pathlib.Path`.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    vocab = byte_level_vocab()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=64,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(vocab),
            max_position_embeddings=TOKENS,
        )
    )
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TOKENS)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    _write_marker(path, "build_tiny_inpaint_pipeline", seed)
    return path


def build_tiny_controlnet(path: str | Path, seed: int = 0) -> Path:
    """Build a tiny random edge ``ControlNetModel`` that fits the tiny inpainting UNet.

    Point ``controlnet_model`` at it together with a tiny pipeline from
    :func:`build_tiny_inpaint_pipeline` to run the ControlNet path of ``staging``.
    """
    import torch
    from diffusers import ControlNetModel

    path = Path(path)
    torch.manual_seed(seed)
    controlnet = ControlNetModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        conditioning_embedding_out_channels=(8, 16),
    )
    controlnet.save_pretrained(path)
    _write_marker(path, "build_tiny_controlnet", seed)
    return path


def build_tiny_segmentation_model(path: str | Path, seed: int = 0) -> Path:
    """Build a tiny random SegFormer with ADE20K-style labels (wall, floor, ceiling...).

    Point ``segmentation_model`` at it to run the model path of ``segment_rooms`` and
    of ``declutter``'s mask.
    """
    import torch
    from transformers import (
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SegformerImageProcessor,
    )

    path = Path(path)
    labels = ["wall", "floor", "ceiling", "windowpane", "door", "sofa", "table", "plant"]
    config = SegformerConfig(
        num_channels=3,
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[4, 2],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    torch.manual_seed(seed)
    SegformerForSemanticSegmentation(config).save_pretrained(path)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(path)
    _write_marker(path, "build_tiny_segmentation_model", seed)
    return path


def _write_marker(path: Path, builder: str, seed: int) -> None:
    marker = {
        "weights": "untrained",
        "builder": f"bkbn_pipelines.runtime.testing.{builder}",
        "seed": seed,
        "note": "random weights for tests; outputs are noise-like and must not be used",
    }
    (path / WEIGHTS_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
