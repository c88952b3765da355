"""Reading checkpoints: the configuration comes from the file's own keys and shapes.

Published VAR files are plain state dicts (`.pth`); the project also reads and writes
`.safetensors`, whose metadata may carry the configuration (`var_core.config`, JSON).
"""

from __future__ import annotations

import json
import math
import pickle
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .schedule import Schedule
from .transformer import VAR
from .vqvae import PATCH_NUMS_256, PATCH_NUMS_512, VQVAE

StateDict = Mapping[str, torch.Tensor]
Source = str | Path | StateDict
CONFIG_KEY = "var_core.config"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message is one sentence for the user."""


def read_checkpoint(source: Source) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """File path or state dict -> (state dict on the CPU, config from metadata or {}, display name)."""
    if isinstance(source, Mapping):
        return dict(source), {}, "the given state dict"
    path = Path(source)
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"No checkpoint file at {path}: check the path or download the weights first.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{name} is not a readable safetensors file ({e}); re-download or re-save it.") from e
        return state, json.loads(meta.get(CONFIG_KEY, "{}")), name
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "unsupported global" not in str(e).lower():
            raise CheckpointError(f"{name} is not a readable PyTorch checkpoint; re-download it.") from e
        raise CheckpointError(
            f"{name} holds pickled Python objects, not only tensors; re-save it as a plain state dict "
            "(torch.save(model.state_dict(), ...)) or as .safetensors."
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{name} is not a readable PyTorch checkpoint; re-download it.") from e
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for wrapper in ("state_dict", "model", "var_wo_ddp", "vae_wo_ddp"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{name} is not a state dict of tensors; save the model with model.state_dict().")
    return dict(obj), {}, name


def checkpoint_kind(state: StateDict) -> str:
    """'vqvae', 'var' or 'unknown', from the keys."""
    if "encoder.conv_in.weight" in state and "quantize.embedding.weight" in state:
        return "vqvae"
    if "class_emb.weight" in state and "head.weight" in state:
        return "var"
    return "unknown"


def _count(state: StateDict, pattern: str) -> int:
    """Number of distinct integers i for which a key starts with pattern.format(i)."""
    n = 0
    while any(k.startswith(pattern.format(n)) for k in state):
        n += 1
    return n


def vqvae_config(state: StateDict, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """VQVAE constructor arguments read off a state dict (and its metadata, for the schedule)."""
    vocab, z = state["quantize.embedding.weight"].shape
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = _count(state, "encoder.down.{}.")
    ch_mult = tuple(state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in range(levels))
    ema = state.get("quantize.ema_vocab_hit_SV")
    num_ema = ema.shape[0] if ema is not None else 10
    cfg = dict(
        vocab_size=vocab,
        z_channels=z,
        ch=ch,
        ch_mult=ch_mult,
        num_res_blocks=_count(state, "encoder.down.0.block.{}."),
        share_quant_resi=_quant_resi_sharing(state),
        patch_nums=PATCH_NUMS_256,
        num_ema_scales=num_ema,
    )
    if meta and "patch_nums" in meta:
        cfg["patch_nums"] = tuple(meta["patch_nums"])
    elif cfg["share_quant_resi"] == 0:
        # One conv per scale: the file fixes the number of scales but not their sizes.
        n = _count(state, "quantize.quant_resi.{}.")
        cfg["patch_nums"] = PATCH_NUMS_256 if n == len(PATCH_NUMS_256) else tuple(range(1, n + 1))
    return cfg


def _quant_resi_sharing(state: StateDict) -> int:
    if "quantize.quant_resi.qresi.weight" in state:
        return 1
    return _count(state, "quantize.quant_resi.qresi_ls.{}.")


def patch_nums_from_levels(lvl_1L: torch.Tensor) -> tuple[int, ...]:
    """The scale schedule from the `lvl_1L` buffer (scale index of each position)."""
    counts = Counter(lvl_1L.flatten().tolist())
    pns = tuple(math.isqrt(counts[k]) for k in range(len(counts)))
    if any(pn * pn != counts[k] for k, pn in enumerate(pns)):
        raise CheckpointError("The checkpoint's lvl_1L buffer does not describe square token maps; pass patch_nums=.")
    return pns


def var_config(state: StateDict) -> dict[str, Any]:
    """VAR constructor arguments read off a state dict."""
    classes, C = state["class_emb.weight"].shape
    L = state["pos_1LC"].shape[1]
    if "lvl_1L" in state:
        patch_nums = patch_nums_from_levels(state["lvl_1L"])
    else:
        known = {sum(p * p for p in pns): pns for pns in (PATCH_NUMS_256, PATCH_NUMS_512)}
        if L not in known:
            raise CheckpointError(f"The checkpoint has {L} token positions, not a known schedule; pass patch_nums=.")
        patch_nums = known[L]
    return dict(
        vocab_size=state["head.weight"].shape[0],
        z_channels=state["word_embed.weight"].shape[1],
        depth=_count(state, "blocks.{}."),
        embed_dim=C,
        num_heads=state["blocks.0.attn.scale_mul_1H11"].shape[1],
        num_classes=classes - 1,
        patch_nums=patch_nums,
        shared_aln="shared_ada_lin.1.weight" in state,
        mlp_ratio=state["blocks.0.ffn.fc1.weight"].shape[0] / C,
    )


# Far above every published model (d36: 2240 positions, width 2304, 4096 codes), far below what
# would make a damaged file allocate gigabytes: the attention mask alone is positions^2 floats.
LIMITS = {"positions": 8192, "embed_dim": 16384, "vocab_size": 1 << 17, "depth": 256, "num_classes": 1 << 17}


def check_sizes(cfg: Mapping[str, Any], name: str) -> None:
    """Refuse a configuration whose sizes no real checkpoint has, before anything is allocated."""
    sizes = {k: cfg[k] for k in LIMITS if k in cfg}
    if "patch_nums" in cfg:
        sizes["positions"] = sum(p * p for p in cfg["patch_nums"])
    for key, value in sizes.items():
        if value > LIMITS[key]:
            raise CheckpointError(
                f"{name} claims {value} {key.replace('_', ' ')}, more than any VAR checkpoint has "
                f"({LIMITS[key]}); the file is damaged or not a VAR checkpoint."
            )


def _read_back(derived: dict[str, Any], meta: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The shapes' configuration, completed by the metadata `save_checkpoint` wrote; the two must agree."""
    out = dict(derived)
    for key, value in meta.items():
        if key not in derived:
            out[key] = value
            continue
        given = tuple(value) if isinstance(value, list) else value
        if given != derived[key] and not (isinstance(given, float) and math.isclose(given, derived[key])):
            raise CheckpointError(
                f"{name} records {key}={value} in its metadata but its tensors say {derived[key]}; "
                "the file is damaged or was edited, re-save it."
            )
    return out


def describe(state: StateDict) -> dict[str, Any]:
    """What a checkpoint is: kind, configuration and parameter count (used by `inspect` and errors)."""
    kind = checkpoint_kind(state)
    params = sum(v.numel() for k, v in state.items() if k not in _BUFFERS)
    if kind == "vqvae":
        cfg = vqvae_config(state)
        cfg["num_scales"] = cfg.pop("num_ema_scales")
        if cfg["num_scales"] != len(PATCH_NUMS_256):
            cfg["patch_nums"] = None  # not recorded in the file; the paired VAR fixes it
        cfg["downsample"] = 2 ** (len(cfg["ch_mult"]) - 1)
        return {"kind": "vqvae", **cfg, "parameters": params}
    if kind == "var":
        cfg = var_config(state)
        cfg["image_size_with_published_vqvae"] = cfg["patch_nums"][-1] * 16
        return {"kind": "var", "name": f"VAR-d{cfg['depth']}", **cfg, "parameters": params}
    return {"kind": "unknown", "keys": len(state), "parameters": params}


_BUFFERS = {"lvl_1L", "attn_bias_for_masking", "quantize.ema_vocab_hit_SV"}


def _summary(info: Mapping[str, Any]) -> str:
    if info["kind"] == "var":
        return f"a {info['name']} transformer checkpoint (width {info['embed_dim']}, {info['num_classes']} classes)"
    if info["kind"] == "vqvae":
        return f"a VQVAE checkpoint (vocabulary {info['vocab_size']}, latent width {info['z_channels']})"
    return f"not a VAR or VQVAE checkpoint ({info['keys']} tensors)"


def _load_strict(model: torch.nn.Module, state: StateDict, name: str) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        shown = ", ".join((missing + unexpected)[:3])
        raise CheckpointError(
            f"{name} does not match the model built from its own shapes ({len(missing)} missing and "
            f"{len(unexpected)} unexpected keys, e.g. {shown}); it may be damaged or from another code base."
        )


def load_vqvae(
    source: Source, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **overrides: Any
) -> VQVAE:
    """Build a VQVAE from a checkpoint file or state dict; `overrides` replace inferred settings (e.g. patch_nums)."""
    state, meta, name = read_checkpoint(source)
    if checkpoint_kind(state) != "vqvae":
        raise CheckpointError(f"{name} is {_summary(describe(state))}, but a VQVAE was expected.")
    cfg = {**_read_back(vqvae_config(state, meta), meta, name), **overrides}
    check_sizes(cfg, name)
    model = VQVAE(**cfg)
    _load_strict(model, state, name)
    model.compute_dtype = dtype
    return model.to(device).eval().requires_grad_(False)


def _var_config(source: Source, **overrides: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    state, meta, name = read_checkpoint(source)
    if checkpoint_kind(state) != "var":
        raise CheckpointError(f"{name} is {_summary(describe(state))}, but a VAR transformer was expected.")
    cfg = {**_read_back(var_config(state), meta, name), **overrides}
    check_sizes(cfg, name)
    return state, cfg, name


def load_var(
    source: Source,
    vqvae: VQVAE,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    **overrides: Any,
) -> VAR:
    """Build a VAR transformer that samples with `vqvae`; both then hold the same `Schedule` object.

    dtype: the compute precision (bfloat16/float16 autocast on CUDA); weights stay float32.
    A VAR whose schedule differs from the VQVAE's is refused (load both with `load_pair`).
    """
    state, cfg, name = _var_config(source, **overrides)
    if (cfg["vocab_size"], cfg["z_channels"]) != (vqvae.vocab_size, vqvae.Cvae):
        raise CheckpointError(
            f"{name} predicts {cfg['vocab_size']} codes of width {cfg['z_channels']}, but the VQVAE has "
            f"{vqvae.vocab_size} codes of width {vqvae.Cvae}: the two files do not belong together."
        )
    if tuple(cfg["patch_nums"]) != vqvae.patch_nums:
        raise CheckpointError(
            f"{name} samples the scales {Schedule(tuple(cfg['patch_nums']))} but the VQVAE was set up for "
            f"{vqvae.schedule}: load the two files together with load_pair, or give load_vqvae patch_nums=."
        )
    model = VAR(**{**cfg, "patch_nums": vqvae.schedule})
    _load_strict(model, state, name)
    model.compute_dtype = dtype
    return model.to(device).eval().requires_grad_(False)


def load_pair(
    vae_source: Source,
    var_source: Source,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[VQVAE, VAR]:
    """Load a VQVAE and the VAR that samples with it around one `Schedule`.

    The schedule is the VAR's (its position table fixes it); a VQVAE file that records another
    one (project .safetensors do) is refused, since its quantizer was trained for other scales.
    """
    var_state, var_cfg, var_name = _var_config(var_source)
    vae_state, vae_meta, vae_name = read_checkpoint(vae_source)
    if checkpoint_kind(vae_state) == "vqvae":
        recorded = vae_meta.get("patch_nums")
        if recorded is not None and tuple(recorded) != tuple(var_cfg["patch_nums"]):
            raise CheckpointError(
                f"{var_name} samples the scales {Schedule(tuple(var_cfg['patch_nums']))} but {vae_name} was "
                f"trained for {Schedule(tuple(recorded))}: the two files do not belong together."
            )
    vqvae = load_vqvae(vae_state, device=device, patch_nums=tuple(var_cfg["patch_nums"]))
    var = load_var(var_state, vqvae, device=device, dtype=dtype)
    return vqvae, var


def save_checkpoint(model: VQVAE | VAR, path: str | Path, dtype: torch.dtype | None = None) -> None:
    """Write a model's state dict as .safetensors (optionally cast, e.g. float16) with its config as metadata."""
    from safetensors.torch import save_file

    state = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() and k not in _BUFFERS else v).contiguous()
        for k, v in model.state_dict().items()
    }
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.items()}
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={CONFIG_KEY: json.dumps(config)})
    tmp.replace(path)
