"""Reading checkpoints: the configuration comes from the file's own keys and shapes.

Published VAR files are plain state dicts (`.pth`); the project also reads and writes
`.safetensors`, whose metadata may carry the configuration (`var_core.config`, JSON).

Loading fits the machine: a file is memory-mapped (`torch.load(weights_only=True, mmap=True)`,
safetensors through the same kind of mapping), its sizes are checked, the model is built on the
`meta` device (nothing allocated), and each tensor is copied straight to the target device and
precision and then dropped from memory, so the peak is about one copy of the weights.
"""

from __future__ import annotations

import ctypes
import json
import math
import mmap
import pickle
import re
import sys
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .cpu_linear import prepack
from .quantizer import QuantResidual
from .schedule import Schedule
from .transformer import VAR
from .vqvae import PATCH_NUMS_256, PATCH_NUMS_512, VQVAE

StateDict = Mapping[str, torch.Tensor]
Source = str | Path | StateDict
CONFIG_KEY = "var_core.config"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message is one sentence for the user."""


@dataclass
class Checkpoint:
    """A read checkpoint (`open_checkpoint`; shared with infinity_core). mapped: the tensors are views of a private
    memory map of the file at `path`."""

    state: dict[str, torch.Tensor]
    meta: dict[str, Any]
    name: str
    path: Path | None = None
    mapped: bool = False


def read_checkpoint(source: Source) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """File path or state dict -> (state dict on the CPU, config from metadata or {}, display name).

    A file's tensors are views of a private memory map: reading costs no memory until their values are
    used, and changing them never changes the file.
    """
    ckpt = open_checkpoint(source)
    return ckpt.state, ckpt.meta, ckpt.name


def open_checkpoint(source: Source) -> Checkpoint:
    """A file (.pth through the safe loader, .safetensors memory-mapped) or a state dict, read without building
    anything; CheckpointError (one sentence) for what is not a readable state dict of tensors."""
    if isinstance(source, Mapping):
        return Checkpoint(dict(source), {}, "the given state dict")
    path = Path(source)
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"No checkpoint file at {path}: check the path or download the weights first.")
    if path.suffix == ".safetensors":
        state, meta = _read_safetensors(path)
        try:
            config = json.loads(meta.get(CONFIG_KEY, "{}"))
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{name} has unreadable configuration metadata; re-save it.") from e
        return Checkpoint(state, config if isinstance(config, dict) else {}, name, path, mapped=True)
    mapped = zipfile.is_zipfile(path)  # torch's zip format can be mapped; the legacy one is read whole
    return Checkpoint(_unwrap(_torch_load(path, mapped), name), {}, name, path, mapped)


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _torch_load(path: Path, mapped: bool) -> Any:
    """torch.load that never runs code from the file; its refusals become one sentence."""
    name = path.name
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mapped)
    except pickle.UnpicklingError as e:
        # torch's own text advises weights_only=False, i.e. running the file's code: never pass it on.
        found = _GLOBAL.search(str(e))
        if found is None:
            raise CheckpointError(f"{name} is not a readable PyTorch checkpoint; re-download it.") from None
        raise CheckpointError(
            f"{name} was refused because it holds pickled Python objects or code ({found.group(1)}), not only "
            "tensors, and is never unpickled unsafely; re-save the weights as a plain state dict "
            "(torch.save(model.state_dict(), ...)) or as .safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{name} is not a readable PyTorch checkpoint; re-download it.") from e


def _unwrap(obj: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for wrapper in ("state_dict", "model", "var_wo_ddp", "vae_wo_ddp", "vae"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{name} is not a state dict of tensors; save the model with model.state_dict().")
    return dict(obj)


_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_MAX_HEADER = 100 * 2**20


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A .safetensors file as memory-mapped tensors (read lazily) and its string metadata."""
    name, size = path.name, path.stat().st_size
    broken = f"{name} is not a readable safetensors file; re-download or re-save it."
    try:
        with path.open("rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 2 <= n <= min(_MAX_HEADER, size - 8):
                raise CheckpointError(broken)
            header = json.loads(fh.read(n))
        meta = header.pop("__metadata__", None) or {}
        storage = torch.UntypedStorage.from_file(str(path), shared=False, nbytes=size)
    except (OSError, ValueError, RuntimeError) as e:  # ValueError includes JSON errors
        raise CheckpointError(broken) from e
    base, state = 8 + n, {}
    for key, info in header.items():
        try:
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(broken) from e
        itemsize = torch.empty(0, dtype=dtype).element_size()
        fits = 0 <= begin <= end <= size - base and min(shape, default=0) >= 0
        if not fits or end - begin != math.prod(shape) * itemsize:
            raise CheckpointError(broken)
        if (base + begin) % itemsize:
            raise CheckpointError(f"{name} has a misaligned tensor ({key}); re-save it with safetensors.")
        state[key] = torch.empty(0, dtype=dtype).set_(storage, (base + begin) // itemsize, shape)
    return state, {k: v for k, v in meta.items() if isinstance(v, str)}


def checkpoint_kind(state: StateDict) -> str:
    """'vqvae', 'var' or 'unknown', from the keys."""
    if "encoder.conv_in.weight" in state and "quantize.embedding.weight" in state:
        return "vqvae"
    if "class_emb.weight" in state and "head.weight" in state:
        return "var"
    return "unknown"


def count_indexed(state: StateDict, pattern: str) -> int:
    """Number of consecutive integers i = 0, 1, ... for which a key starts with pattern.format(i)."""
    prefix, suffix = pattern.split("{}")
    found = set()
    for key in state:
        if key.startswith(prefix):
            index, sep, _ = key[len(prefix) :].partition(suffix)
            if sep and index.isdigit():
                found.add(int(index))
    n = 0
    while n in found:
        n += 1
    return n


def vqvae_config(state: StateDict, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """VQVAE constructor arguments read off a state dict (and its metadata, for the schedule)."""
    vocab, z = state["quantize.embedding.weight"].shape
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = count_indexed(state, "encoder.down.{}.")
    ch_mult = tuple(state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in range(levels))
    ema = state.get("quantize.ema_vocab_hit_SV")
    num_ema = ema.shape[0] if ema is not None else 10
    cfg = dict(
        vocab_size=vocab,
        z_channels=z,
        ch=ch,
        ch_mult=ch_mult,
        num_res_blocks=count_indexed(state, "encoder.down.0.block.{}."),
        share_quant_resi=_quant_resi_sharing(state),
        patch_nums=PATCH_NUMS_256,
        num_ema_scales=num_ema,
    )
    if meta and "patch_nums" in meta:
        cfg["patch_nums"] = tuple(meta["patch_nums"])
    elif cfg["share_quant_resi"] == 0:
        # One conv per scale: the file fixes the number of scales but not their sizes.
        n = count_indexed(state, "quantize.quant_resi.{}.")
        cfg["patch_nums"] = PATCH_NUMS_256 if n == len(PATCH_NUMS_256) else tuple(range(1, n + 1))
    return cfg


def _quant_resi_sharing(state: StateDict) -> int:
    if "quantize.quant_resi.qresi.weight" in state:
        return 1
    return count_indexed(state, "quantize.quant_resi.qresi_ls.{}.")


def patch_nums_from_levels(lvl_1L: torch.Tensor) -> tuple[int, ...]:
    """The scale schedule from the `lvl_1L` buffer (scale index of each position)."""
    if lvl_1L.numel() > LIMITS["positions"]:
        raise CheckpointError(
            f"The checkpoint claims {lvl_1L.numel()} token positions, more than any VAR checkpoint has "
            f"({LIMITS['positions']}); the file is damaged or not a VAR checkpoint."
        )
    counts = Counter(lvl_1L.flatten().tolist())
    pns = tuple(math.isqrt(counts[k]) for k in range(len(counts)))
    if set(counts) != set(range(len(counts))) or any(pn * pn != counts[k] for k, pn in enumerate(pns)):
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
        depth=count_indexed(state, "blocks.{}."),
        embed_dim=C,
        num_heads=state["blocks.0.attn.scale_mul_1H11"].shape[1],
        num_classes=classes - 1,
        patch_nums=patch_nums,
        shared_aln="shared_ada_lin.1.weight" in state,
        mlp_ratio=state["blocks.0.ffn.fc1.weight"].shape[0] / C,
    )


def _config(kind: str, state: StateDict, meta: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The configuration from the shapes; a file whose keys do not add up is one sentence, not a KeyError."""
    try:
        return vqvae_config(state, meta) if kind == "vqvae" else var_config(state)
    except CheckpointError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError) as e:
        raise CheckpointError(
            f"{name} looks like a {'VQVAE' if kind == 'vqvae' else 'VAR'} checkpoint but its tensors do not add up "
            f"({type(e).__name__}: {e}); the file is damaged or from another code base."
        ) from e


# Far above every published model (d36: 2240 positions, width 2304, 4096 codes; the VQVAE: 160 channels
# times 4, 5 levels), far below what would make a damaged file allocate gigabytes: the attention mask
# alone is positions^2 floats.
LIMITS = {
    "positions": 8192,
    "embed_dim": 16384,
    "vocab_size": 1 << 17,
    "depth": 256,
    "num_classes": 1 << 17,
    "num_heads": 1024,
    "mlp_width": 1 << 16,
    "z_channels": 4096,
    "conv_width": 8192,
    "levels": 8,
    "num_res_blocks": 32,
    "num_ema_scales": 1024,
    "share_quant_resi": 64,
}


def check_sizes(cfg: Mapping[str, Any], name: str) -> None:
    """Refuse a configuration whose sizes no real checkpoint has, before anything is allocated."""
    sizes = {k: cfg[k] for k in LIMITS if k in cfg}
    if "patch_nums" in cfg:
        sizes["positions"] = sum(p * p for p in cfg["patch_nums"])
    if "embed_dim" in cfg and "mlp_ratio" in cfg:
        sizes["mlp_width"] = cfg["embed_dim"] * cfg["mlp_ratio"]
    if "ch" in cfg:
        sizes["conv_width"] = cfg["ch"] * max((*cfg.get("ch_mult", ()), 1))
        sizes["levels"] = len(cfg.get("ch_mult", ()))
    for key, value in sizes.items():
        if value > LIMITS[key]:
            raise CheckpointError(
                f"{name} claims {value:g} {key.replace('_', ' ')}, more than any VAR checkpoint has "
                f"({LIMITS[key]}); the file is damaged or not a VAR checkpoint."
            )
    heads, width = cfg.get("num_heads"), cfg.get("embed_dim")
    if heads and width and width % heads:
        raise CheckpointError(f"{name} has {heads} heads, which do not divide its width {width}; the file is damaged.")


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


# ---- building a model without a second copy of its weights ---------------------------------------
_PAGE = mmap.PAGESIZE
_MADV_DONTNEED = 4


def _madvise() -> Any:
    """libc's madvise on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _madvise()


class _Releaser:
    """Drops the pages of a memory-mapped checkpoint from this process once a tensor has been copied.

    Linux only (madvise on /proc/self/maps ranges of the file); elsewhere a no-op, and the mapped
    pages stay resident until the checkpoint is dropped (they are page cache, reclaimable).
    """

    def __init__(self, path: Path | None):
        self.ranges: list[tuple[int, int]] = []
        if path is None or _MADVISE is None:
            return
        target = str(path.resolve())
        try:
            with open("/proc/self/maps") as fh:
                for line in fh:
                    parts = line.rstrip("\n").split(maxsplit=5)
                    if len(parts) == 6 and parts[5] == target:
                        lo, hi = (int(x, 16) for x in parts[0].split("-"))
                        self.ranges.append((lo, hi))
        except OSError:
            self.ranges = []

    def __call__(self, t: torch.Tensor) -> None:
        if not self.ranges or t.device.type != "cpu" or t.numel() == 0:
            return
        extent = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride(), strict=True)) + 1
        begin = t.data_ptr() // _PAGE * _PAGE
        end = -(-(t.data_ptr() + extent * t.element_size()) // _PAGE) * _PAGE
        # Only whole pages of the file's own private mapping, never memory the process allocated.
        if any(lo <= begin and end <= hi for lo, hi in self.ranges):
            _MADVISE(ctypes.c_void_p(begin), ctypes.c_size_t(end - begin), _MADV_DONTNEED)


def _match(model: torch.nn.Module, state: StateDict, name: str) -> dict[str, torch.Tensor]:
    """The model's own (meta) tensors by key, after checking the file has exactly these keys and shapes."""
    own = model.state_dict(keep_vars=True)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        shown = ", ".join((missing + unexpected)[:3])
        raise CheckpointError(
            f"{name} does not match the model built from its own shapes ({len(missing)} missing and "
            f"{len(unexpected)} unexpected keys, e.g. {shown}); it may be damaged or from another code base."
        )
    for key, tensor in own.items():
        if key.endswith("ema_vocab_hit_SV"):  # a training statistic of any first dimension
            continue
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{name} does not match the model built from its own shapes ({key} is "
                f"{tuple(state[key].shape)}, not {tuple(tensor.shape)}); it may be damaged or from another code base."
            )
    return own


def materialize(
    model: torch.nn.Module,
    ckpt: Checkpoint,
    device: str | torch.device,
    weight_dtype: torch.dtype | None = None,
    low_precision: Callable[[str], bool] | None = None,
) -> None:
    """Give a `meta`-built model the checkpoint's tensors on `device`, one tensor at a time.

    Float tensors take the model's own dtype (float32), or `weight_dtype` for keys `low_precision(key)`
    accepts; a mapped file's pages are dropped as soon as each tensor is copied.
    """
    own = _match(model, ckpt.state, ckpt.name)
    release = _Releaser(ckpt.path) if ckpt.mapped else None
    device = torch.device(device)
    loaded: dict[str, torch.Tensor] = {}
    for key, target in own.items():
        source = ckpt.state[key]
        dtype = target.dtype
        if weight_dtype is not None and target.is_floating_point() and low_precision is not None and low_precision(key):
            dtype = weight_dtype
        if target.shape == source.shape:  # keeps the layout the model chose (e.g. channels-last convs)
            out = torch.empty_like(target, dtype=dtype, device=device)
        else:
            out = torch.empty(source.shape, dtype=dtype, device=device)
        out.copy_(source)
        loaded[key] = out
        if release is not None:
            release(source)
    model.load_state_dict(loaded, strict=True, assign=True)
    for module in model.modules():
        if isinstance(module, QuantResidual) and module.ticks.is_meta:
            # Computed in __init__, not stored: take it from a one-channel twin built on the CPU.
            with torch.device("cpu"):
                module.ticks = QuantResidual(1, len(module.convs), 2).ticks
    left = [k for k, v in [*model.named_parameters(), *model.named_buffers()] if v.is_meta]
    if left and device.type != "meta":
        raise RuntimeError(f"Internal error: {', '.join(left[:3])} stayed on the meta device.")


def _build_vqvae(ckpt: Checkpoint, device: str | torch.device, dtype: torch.dtype, overrides: dict) -> VQVAE:
    if checkpoint_kind(ckpt.state) != "vqvae":
        raise CheckpointError(f"{ckpt.name} is {_summary(describe(ckpt.state))}, but a VQVAE was expected.")
    cfg = {**_read_back(_config("vqvae", ckpt.state, ckpt.meta, ckpt.name), ckpt.meta, ckpt.name), **overrides}
    check_sizes(cfg, ckpt.name)
    with torch.device("meta"):
        model = VQVAE(**cfg)
    materialize(model, ckpt, device)
    model.compute_dtype = dtype
    return model.eval().requires_grad_(False)


def load_vqvae(
    source: Source, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **overrides: Any
) -> VQVAE:
    """Build a VQVAE from a checkpoint file or state dict; `overrides` replace inferred settings (e.g. patch_nums).

    Sizes are checked and keys and shapes matched before anything is allocated; the weights go
    straight to `device` in float32. dtype: the encoder/decoder's compute precision.
    """
    return _build_vqvae(open_checkpoint(source), device, dtype, overrides)


def _var_checkpoint(source: Source, **overrides: Any) -> tuple[Checkpoint, dict[str, Any]]:
    ckpt = open_checkpoint(source)
    if checkpoint_kind(ckpt.state) != "var":
        raise CheckpointError(f"{ckpt.name} is {_summary(describe(ckpt.state))}, but a VAR transformer was expected.")
    cfg = {**_read_back(_config("var", ckpt.state, ckpt.meta, ckpt.name), ckpt.meta, ckpt.name), **overrides}
    check_sizes(cfg, ckpt.name)
    return ckpt, cfg


def _in_blocks(key: str) -> bool:
    return key.startswith("blocks.") and not key.endswith("zero_k_bias")


def block_weight_dtype(
    device: str | torch.device, dtype: torch.dtype, weight_dtype: torch.dtype | None
) -> torch.dtype | None:
    """The transformer blocks' weight precision: `weight_dtype` when given; on CUDA with a low compute precision that
    precision (cast once at load: autocast would re-cast every weight on every call, and the memory halves); else
    None (float32, as the checkpoint)."""
    if weight_dtype is not None:
        return weight_dtype
    return dtype if torch.device(device).type == "cuda" and dtype != torch.float32 else None


def load_var(
    source: Source,
    vqvae: VQVAE,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weight_dtype: torch.dtype | None = None,
    cpu_prepack: bool = True,
    **overrides: Any,
) -> VAR:
    """Build a VAR transformer that samples with `vqvae`; both then hold the same `Schedule` object.

    dtype: the compute precision (bfloat16/float16 autocast on CUDA); the blocks' weights are held in it on
    CUDA, elsewhere float32 as in the original, unless weight_dtype (e.g. torch.bfloat16, which halves the memory
    of the transformer blocks) is given, and then dtype must be that precision too (`block_weight_dtype`).
    A VAR whose schedule differs from the VQVAE's is refused (load both with `load_pair`).
    cpu_prepack: on the CPU in float32, hold the linear layers in oneDNN's layout (`cpu_linear.prepack`).
    """
    return _build_var(*_var_checkpoint(source, **overrides), vqvae, device, dtype, weight_dtype, cpu_prepack)


def _build_var(
    ckpt: Checkpoint,
    cfg: dict[str, Any],
    vqvae: VQVAE,
    device: str | torch.device,
    dtype: torch.dtype,
    weight_dtype: torch.dtype | None,
    cpu_prepack: bool,
) -> VAR:
    name = ckpt.name
    weight_dtype = block_weight_dtype(device, dtype, weight_dtype)
    if weight_dtype not in (None, torch.float32) and dtype != weight_dtype:
        raise ValueError(f"weight_dtype={weight_dtype} needs the same compute dtype, not {dtype}.")
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
    with torch.device("meta"):
        model = VAR(**{**cfg, "patch_nums": vqvae.schedule})
    materialize(model, ckpt, device, weight_dtype, _in_blocks)
    model.compute_dtype = dtype
    model.eval().requires_grad_(False)
    if cpu_prepack:
        prepack(model)
    return model


def load_pair(
    vae_source: Source,
    var_source: Source,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weight_dtype: torch.dtype | None = None,
    cpu_prepack: bool = True,
) -> tuple[VQVAE, VAR]:
    """Load a VQVAE and the VAR that samples with it around one `Schedule`.

    The schedule is the VAR's (its position table fixes it); a VQVAE file that records another
    one (project .safetensors do) is refused, since its quantizer was trained for other scales.
    Both files are checked (sizes, keys, shapes) before either model is allocated. cpu_prepack: as `load_var`.
    """
    var_ckpt, var_cfg = _var_checkpoint(var_source)
    vae_ckpt = open_checkpoint(vae_source)
    if checkpoint_kind(vae_ckpt.state) == "vqvae":
        recorded = vae_ckpt.meta.get("patch_nums")
        if recorded is not None and tuple(recorded) != tuple(var_cfg["patch_nums"]):
            raise CheckpointError(
                f"{var_ckpt.name} samples the scales {Schedule(tuple(var_cfg['patch_nums']))} but {vae_ckpt.name} "
                f"was trained for {Schedule(tuple(recorded))}: the two files do not belong together."
            )
    vqvae = _build_vqvae(vae_ckpt, device, torch.float32, {"patch_nums": tuple(var_cfg["patch_nums"])})
    var = _build_var(var_ckpt, var_cfg, vqvae, device, dtype, weight_dtype, cpu_prepack)
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
