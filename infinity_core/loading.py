"""Loading Infinity: a model folder, or the published files, with the configuration read off their shapes.

A folder holds `model.json` (`{"family": "infinity", "resolution": 256}`), the transformer
(`infinity*.pth` or a `.safetensors` with upstream keys), the VAE (`vae*.pth`, published as
`{"vae": state_dict}`, or a `.safetensors`) and `text_encoder/` (what transformers' `save_pretrained`
writes for the T5 encoder and its tokenizer). Pickles go through var_core's safe loader; models
are built on the meta device and each tensor is copied once to its device, so the peak memory stays
near the weights' size. A file that does not fit is one sentence (`CheckpointError`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from var_core.loading import Checkpoint, CheckpointError, count_indexed, materialize, open_checkpoint

from .prepack import prepack
from .schedules import AREA_CLASSES, TEMPLATES, VAE_STRIDE, Schedule, schedule_for
from .text import TextEncoder
from .transformer import Infinity
from .vae import BSQVAE

StateDict = Mapping[str, torch.Tensor]
_CHUNKED = re.compile(r"^block_chunks\.(\d+)\.module\.(\d+)\.(.*)$")
_FLAT = re.compile(r"^blocks\.(\d+)\.(.*)$")
_VAE_BUFFERS = ("quantizer.lfq.mask", "quantize.lfq.mask")  # 2**arange(d): computed, never read


def transformer_keys_to_own(state: StateDict) -> tuple[dict[str, torch.Tensor], int]:
    """Upstream keys (`block_chunks.{c}.module.{j}.*` or `blocks.{i}.*`) -> this package's (`blocks.{i}.*`), chunks."""
    per_chunk = count_indexed(state, "block_chunks.0.module.{}.")
    chunks = count_indexed(state, "block_chunks.{}.")
    out = {}
    for key, value in state.items():
        m = _CHUNKED.match(key)
        out[f"blocks.{int(m[1]) * per_chunk + int(m[2])}.{m[3]}" if m else key] = value
    return out, max(chunks, 1)


def transformer_keys_to_upstream(state: StateDict, chunks: int) -> dict[str, torch.Tensor]:
    """This package's keys -> upstream's, blocks nested in `chunks` chunks (1 = `blocks.{i}`, as upstream)."""
    if chunks <= 1:
        return dict(state)
    depth = count_indexed(state, "blocks.{}.")
    per_chunk = depth // chunks
    out = {}
    for key, value in state.items():
        m = _FLAT.match(key)
        out[f"block_chunks.{int(m[1]) // per_chunk}.module.{int(m[1]) % per_chunk}.{m[2]}" if m else key] = value
    return out


def transformer_config(state: StateDict) -> dict[str, Any]:
    """`Infinity` constructor arguments from a state dict in this package's keys."""
    return dict(
        depth=count_indexed(state, "blocks.{}."),
        embed_dim=state["pos_start"].shape[-1],
        num_heads=state["blocks.0.sa.scale_mul_1H11"].shape[1],
        mlp_hidden=state["blocks.0.ffn.fc1.weight"].shape[0],
        text_channels=state["text_norm.weight"].shape[0],
        bits=state["word_embed.weight"].shape[1],
        pool_heads=state["text_proj_for_sos.ca.mat_q"].shape[1],
        text_maxlen=state["cfg_uncond"].shape[0],
        levels=state["lvl_embed.weight"].shape[0],
    )


def _vae_tensor(state: StateDict, key: str) -> torch.Tensor:
    """A VAE tensor under the module's name (`x.conv.weight`) or the plain one (`x.weight`)."""
    return state[key] if key in state else state[key.replace(".conv.", ".")]


def vae_config(state: StateDict) -> dict[str, Any]:
    """`BSQVAE` constructor arguments from a state dict with the module's or the plain layer names."""
    ch = _vae_tensor(state, "encoder.conv_in.conv.weight").shape[0]
    levels = count_indexed(state, "encoder.down.{}.")
    return dict(
        bits=_vae_tensor(state, "encoder.conv_out.conv.weight").shape[0],
        ch=ch,
        ch_mult=tuple(
            _vae_tensor(state, f"encoder.down.{i}.block.0.conv1.conv.weight").shape[0] // ch for i in range(levels)
        ),
        num_res_blocks=count_indexed(state, "encoder.down.0.block.{}."),
    )


def vae_keys_to_own(state: StateDict, own: set[str]) -> dict[str, torch.Tensor]:
    """A file's VAE keys -> the module's: plain names gain their wrapper (`x.weight` -> `x.conv.weight` or
    `x.norm.weight`) where only that is the module's; the quantizer's mask buffers are dropped."""
    out = {}
    for key, value in state.items():
        if key in _VAE_BUFFERS:
            continue
        if key not in own:
            for wrapper in ("conv", "norm"):
                wrapped = re.sub(r"\.(weight|bias)$", rf".{wrapper}.\1", key)
                if wrapped in own:
                    key = wrapped
                    break
        out[key] = value
    return out


def _config_or_refuse(fn, state: StateDict, what: str, name: str) -> dict[str, Any]:
    try:
        return fn(state)
    except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError, AttributeError):
        raise CheckpointError(
            f"{name} is not an Infinity {what} (its tensors lack the expected keys); check the file."
        ) from None


def _refuse_big(cfg: Mapping[str, Any], name: str) -> None:
    """Sizes far above any published model mean a damaged file: refuse before allocating."""
    limits = {"depth": 256, "embed_dim": 16384, "mlp_hidden": 1 << 17, "text_channels": 16384, "bits": 256,
              "text_maxlen": 4096, "levels": 64, "ch": 4096, "num_res_blocks": 32}  # fmt: skip
    for key, limit in limits.items():
        if key in cfg and not 0 < int(cfg[key]) <= limit:
            raise CheckpointError(f"{name} claims {cfg[key]} {key.replace('_', ' ')}; the file is damaged.")
    if "num_heads" in cfg and (cfg["num_heads"] <= 0 or cfg["embed_dim"] % cfg["num_heads"]):
        raise CheckpointError(f"{name} has heads that do not divide its width; the file is damaged.")


def load_transformer(
    source: str | Path | StateDict,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    cpu_prepack: bool = True,
) -> Infinity:
    """Build the transformer from a file or state dict (upstream keys); weights in `dtype` on `device`.

    cpu_prepack: on the CPU in float32, hold the per-scale linear layers in oneDNN's layout (`prepack.prepack`)."""
    ckpt = open_checkpoint(source)
    state, chunks = transformer_keys_to_own(ckpt.state)
    cfg = _config_or_refuse(transformer_config, state, "transformer", ckpt.name)
    _refuse_big(cfg, ckpt.name)
    with torch.device("meta"):
        model = Infinity(**cfg, block_chunks=chunks)
    materialize(model, Checkpoint(state, ckpt.meta, ckpt.name, ckpt.path, ckpt.mapped), device, dtype, _in_blocks)
    model.compute_dtype = dtype
    model = model.eval().requires_grad_(False)
    if cpu_prepack:
        prepack(model)
    return model


def _in_blocks(key: str) -> bool:
    """Upstream keeps the blocks in the low precision and the rest in float32."""
    return key.startswith("blocks.") and not key.endswith("zero_k_bias")


def load_vae(source: str | Path | StateDict, device: torch.device | str = "cpu") -> BSQVAE:
    """Build the BSQ VAE from a file (`{"vae": state_dict}` pickles included) or state dict; float32."""
    ckpt = open_checkpoint(source)
    cfg = _config_or_refuse(vae_config, ckpt.state, "VAE", ckpt.name)
    _refuse_big(cfg, ckpt.name)
    with torch.device("meta"):
        model = BSQVAE(**cfg)
    state = vae_keys_to_own(ckpt.state, set(model.state_dict()))
    materialize(model, Checkpoint(state, ckpt.meta, ckpt.name, ckpt.path, ckpt.mapped), device)
    return model.to(memory_format=torch.channels_last).eval().requires_grad_(False)


def load_text_encoder(folder: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None):
    """The tokenizer and T5 encoder saved in `folder` (fp16 on CUDA, fp32 elsewhere unless `dtype` says)."""
    from transformers import AutoTokenizer, T5EncoderModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder.name}/ holds no T5 encoder (config.json); save one with save_pretrained.")
    if dtype is None:
        dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), legacy=True)
        model, info = T5EncoderModel.from_pretrained(str(folder), dtype=dtype, output_loading_info=True)
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{folder.name}/ is not a readable T5 encoder and tokenizer ({type(e).__name__})."
        ) from None
    missing = sorted(info["missing_keys"])  # transformers fills these with random values and only warns
    if missing:
        raise CheckpointError(
            f"{folder.name}/ lacks {len(missing)} of the T5 encoder's weights (e.g. {missing[0][:80]}); its weights "
            "file holds another part of the model: fetch the encoder's weights again."
        )
    tokenizer.model_max_length = 512
    return TextEncoder(tokenizer, model.to(device).eval().requires_grad_(False))


@dataclass
class InfinityBundle:
    """A loaded Infinity: VAE, transformer, text encoder and the folder's default picture side."""

    vae: BSQVAE
    transformer: Infinity
    text: TextEncoder
    resolution: int

    def schedule(self, h_div_w: float = 1.0, area: str | None = None) -> Schedule:
        """The schedule for an aspect h/w at an area class (default: the class of the folder's resolution)."""
        return schedule_for(h_div_w, area or area_for_resolution(self.resolution))


def area_for_resolution(side: int) -> str:
    """The area class whose square picture is side x side pixels (256 -> 0.06M ... 1024 -> 1M)."""
    for area, n in AREA_CLASSES.items():
        if TEMPLATES[1.0][n - 1][0] * VAE_STRIDE == side:
            return area
    sides = ", ".join(str(TEMPLATES[1.0][n - 1][0] * VAE_STRIDE) for n in AREA_CLASSES.values())
    raise CheckpointError(f"An Infinity resolution of {side} is not one of {sides}; fix model.json.")


def _weights(folder: Path, prefix: str, other: str) -> Path:
    """The one file of a part: `{prefix}*.pth` or `*.safetensors` (those of the other part excluded)."""
    found = sorted(p for p in folder.iterdir() if p.suffix in (".pth", ".safetensors") and p.name.startswith(prefix))
    if not found:
        found = sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith(other) and "t5" not in p.name)
    if len(found) != 1:
        what = "transformer" if prefix == "infinity" else "VAE"
        raise CheckpointError(
            f"{folder.name} needs exactly one {what} file ({prefix}*.pth or {prefix}*.safetensors), found {len(found)}."
        )
    return found[0]


def read_model_json(folder: str | Path) -> dict[str, Any]:
    """The folder's model.json, checked: family "infinity" and a known resolution."""
    path = Path(folder) / "model.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        raise CheckpointError(f"{Path(folder).name} has no readable model.json; add one.") from None
    if not isinstance(info, dict) or info.get("family") != "infinity":
        raise CheckpointError(f'{path} does not say "family": "infinity"; fix model.json.')
    area_for_resolution(int(info.get("resolution", 1024)))
    return info


def load_folder(
    path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> InfinityBundle:
    """Load a model folder: the transformer's weights in `dtype`, the VAE in float32, T5 as `load_text_encoder`."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"No model folder at {folder}; check the path.")
    info = read_model_json(folder)
    transformer_file = _weights(folder, "infinity", "vae")
    vae_file = _weights(folder, "vae", "infinity")
    vae = load_vae(vae_file, device)
    transformer = load_transformer(transformer_file, device, dtype)
    if transformer.bits != vae.bits:
        raise CheckpointError(
            f"{transformer_file.name} predicts {transformer.bits} bits per token but {vae_file.name} has "
            f"{vae.bits}: the two files do not belong together."
        )
    text = load_text_encoder(folder / "text_encoder", device)
    if text.model.config.d_model != transformer.config["text_channels"]:
        raise CheckpointError(
            f"The text encoder is {text.model.config.d_model} wide but {transformer_file.name} reads "
            f"{transformer.config['text_channels']}-wide text: they do not belong together."
        )
    return InfinityBundle(vae, transformer, text, int(info.get("resolution", 1024)))
