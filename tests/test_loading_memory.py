"""Loading safely and within memory: unsafe pickles refused unrun, sizes checked before anything is built,
files mapped instead of read, about one copy of the weights at the peak, private copies, any device."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import var_core
import var_core.loading as loading
from var_core import CheckpointError
from var_core.quantizer import QuantResidual

TINY = Path(__file__).parent / "fixtures" / "tiny"
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")


class _RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", ["torch.save", "raw pickle"])
def test_a_malicious_pickle_is_refused_unrun_in_one_sentence(tmp_path, fmt):
    marker, path = tmp_path / "ran", tmp_path / "var_d16.pth"
    if fmt == "torch.save":
        torch.save({"head.weight": torch.zeros(2), "x": _RunsCode(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"x": _RunsCode(marker)}, protocol=2))
    for load in (lambda: var_core.load_vqvae(path), lambda: var_core.load_pair(path, path)):
        with pytest.raises(CheckpointError) as info:
            load()
        message = str(info.value)
        assert message.startswith("var_d16.pth was refused because it holds pickled Python objects or code (")
        assert "system" in message and message.count(". ") == 0  # names the culprit, one sentence
        assert "weights_only" not in message and info.value.__cause__ is None and info.value.__suppress_context__
    assert not marker.exists()


def _save(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


def _tiny(kind: str) -> dict[str, torch.Tensor]:
    return load_file(str(TINY / f"{kind}.safetensors"))


@pytest.mark.parametrize(
    "kind, change, says",
    [
        ("var", {"lvl_1L": torch.zeros(1, 9000, dtype=torch.long)}, "claims 9000 token positions"),
        ("var", {"class_emb.weight": torch.zeros(11, 20000)}, "claims 20000 embed dim"),
        ("var", {"blocks.0.attn.scale_mul_1H11": torch.zeros(1, 3, 1, 1)}, "3 heads, which do not divide"),
        ("vae", {"quantize.embedding.weight": torch.zeros(200_000, 8)}, "claims 200000 vocab size"),
        ("vae", {"encoder.conv_in.weight": torch.zeros(9000, 3, 3, 3)}, "claims 9000 conv width"),
    ],
)
def test_sizes_are_refused_before_any_model_is_built(tmp_path, monkeypatch, kind, change, says):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the sizes were checked")

    monkeypatch.setattr(loading, "VAR", refuse)
    monkeypatch.setattr(loading, "VQVAE", refuse)
    path = _save({**_tiny(kind), **change}, tmp_path / f"{kind}.pth")
    other = _save(_tiny("vae" if kind == "var" else "var"), tmp_path / "other.pth")
    pair = (other, path) if kind == "var" else (path, other)
    with pytest.raises(CheckpointError, match=says):
        var_core.load_pair(*pair)
    with pytest.raises(CheckpointError, match=says):
        var_core.load_vqvae(path) if kind == "vae" else loading._var_checkpoint(path)


def test_a_file_lacking_keys_is_one_sentence(tmp_path):
    state = _tiny("var")
    del state["blocks.0.ffn.fc1.weight"]
    with pytest.raises(CheckpointError, match=r"var.pth looks like a VAR checkpoint but its tensors do not add up"):
        var_core.load_pair(TINY / "vae.safetensors", _save(state, tmp_path / "var.pth"))


@pytest.mark.parametrize("damage", ["truncated", "offsets"])
def test_a_damaged_safetensors_file_is_one_sentence(tmp_path, damage):
    data = (TINY / "var.safetensors").read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = data.replace(b'"data_offsets":[0,', b'"data_offsets":[9,', 1)
    path = tmp_path / "var.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="var.safetensors is not a readable safetensors file"):
        var_core.read_checkpoint(path)


def test_meta_built_models_equal_eagerly_built_ones():
    vqvae, var = var_core.load_pair(TINY / "vae.safetensors", TINY / "var.safetensors", cpu_prepack=False)
    eager_vqvae = var_core.VQVAE(**{**vqvae.config, "patch_nums": var.patch_nums})
    eager_vqvae.load_state_dict(_tiny("vae"))
    eager_var = var_core.VAR(**var.config)
    eager_var.load_state_dict(_tiny("var"))
    for loaded, eager in ((vqvae, eager_vqvae), (var, eager_var)):
        for (k, a), (_, b) in zip(loaded.state_dict().items(), eager.state_dict().items(), strict=True):
            assert a.dtype == b.dtype and a.device.type == "cpu" and torch.equal(a, b), k
    assert torch.equal(vqvae.quantize.quant_resi.ticks, QuantResidual(8, 4, 4).ticks)
    tokens = vqvae.encode(torch.rand(2, 3, 64, 64) * 2 - 1)
    x = vqvae.quantize.teacher_forcing_input(tokens)
    labels = torch.tensor([1, 10])
    assert torch.equal(var(labels, x), eager_var(labels, x))


def test_float16_files_load_as_float32_weights(tmp_path):
    vqvae, var = var_core.load_pair(TINY / "vae.safetensors", TINY / "var.safetensors")
    var_core.save_checkpoint(var, tmp_path / "var.safetensors", dtype=torch.float16)
    loaded = var_core.load_var(tmp_path / "var.safetensors", vqvae)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    assert loaded.lvl_1L.dtype == torch.long


def test_weight_dtype_stores_the_blocks_in_bfloat16_and_still_samples():
    vqvae, var = var_core.load_pair(
        TINY / "vae.safetensors", TINY / "var.safetensors", dtype=torch.bfloat16, weight_dtype=torch.bfloat16
    )
    assert var.blocks[0].ffn.fc1.weight.dtype == torch.bfloat16 and var.head.weight.dtype == torch.float32
    assert vqvae.encoder.conv_in.weight.dtype == torch.float32
    images = var_core.generate(var, vqvae, torch.tensor([1, 10]), var_core.SamplingOptions(top_k=5))
    assert images.shape == (2, 3, 64, 64) and torch.isfinite(images).all()
    with pytest.raises(ValueError, match="needs the same compute dtype"):
        var_core.load_var(TINY / "var.safetensors", vqvae, weight_dtype=torch.bfloat16)


def test_any_device_goes_through_the_same_generic_calls():
    """`meta` stands in for a device this machine lacks (cuda, mps): nothing in loading is CPU- or CUDA-only."""
    vqvae, var = var_core.load_pair(TINY / "vae.safetensors", TINY / "var.safetensors", device="meta")
    assert {t.device.type for t in [*vqvae.state_dict().values(), *var.state_dict().values()]} == {"meta"}
    assert vqvae.quantize.quant_resi.ticks.device.type == "cpu"  # read on the host, whatever the device


def _run(code: str, cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


MEMORY = """
import torch, var_core

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
"""


@LINUX
def test_reading_a_checkpoint_maps_it_instead_of_allocating(tmp_path):
    torch.save({"w": torch.randn(40_000_000)}, tmp_path / "big.pth")  # 160 MB
    from safetensors.torch import save_file

    save_file({"w": torch.randn(40_000_000)}, str(tmp_path / "big.safetensors"))
    code = (
        MEMORY
        + """
for name in ("big.pth", "big.safetensors"):
    before = status("VmRSS")
    state, _, _ = var_core.read_checkpoint(name)
    print(name, (status("VmRSS") - before) / 1e6, float(state["w"][:10].sum()) != 0)
"""
    )
    for line in _run(code, tmp_path).splitlines():
        name, grown_mb, readable = line.split()
        assert float(grown_mb) < 16 and readable == "True", line


@LINUX
def test_loading_peaks_near_one_copy_of_the_weights(tmp_path):
    torch.manual_seed(0)
    torch.save(var_core.VAR(depth=8).state_dict(), tmp_path / "var_d8.pth")  # ~170 MB, the published format
    size = (tmp_path / "var_d8.pth").stat().st_size
    code = (
        MEMORY
        + """
with torch.device("meta"):
    vqvae = var_core.VQVAE()
reset_peak()
before = status("VmRSS")
var = var_core.load_var("var_d8.pth", vqvae)
print((status("VmHWM") - before))
"""
    )
    peak = int(_run(code, tmp_path))
    assert peak < 1.3 * size, f"peak {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"


def test_loaded_weights_are_private_copies_of_the_file(tmp_path):
    """Rewriting the file in place after loading (cp over it, say) neither changes nor crashes the model."""
    torch.save(_tiny("var"), tmp_path / "var.pth")
    code = """
import os, torch, var_core
vqvae = var_core.load_vqvae("%s", patch_nums=(1, 2, 3, 4))
var = var_core.load_var("var.pth", vqvae)
before = [p.clone() for p in var.state_dict().values()]
with open("var.pth", "r+b") as fh:
    fh.write(b"\\0" * os.path.getsize("var.pth"))
    fh.truncate(100)
print(all(torch.equal(a, b) for a, b in zip(before, var.state_dict().values())))
""" % (TINY / "vae.safetensors")
    assert _run(code, tmp_path).strip() == "True"
