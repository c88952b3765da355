"""The linear layers prepacked for the CPU (var_core.cpu_linear) change no greedy token, no state-dict value and no
fast-mode number; they hold no second copy of the weights, and prepacking is refused where it does not apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import var_core
from editing.masks import scale_masks
from editing.teacher_forcing import TeacherForcing, encode_source
from var_core.cpu_linear import PrepackedLinear, available, prepack
from var_core.sampling import FAST_SCALES

DEMO = Path(__file__).parent.parent / "assets" / "demo"
TINY = Path(__file__).parent / "fixtures" / "tiny"
GREEDY = var_core.SamplingOptions(cfg=2.0, top_k=1, top_p=0.0)

pytestmark = pytest.mark.skipif(not available(), reason="this PyTorch has no oneDNN")


def _pair(prepacked: bool, folder: Path = DEMO) -> tuple[var_core.VQVAE, var_core.VAR]:
    return var_core.load_pair(folder / "vae.safetensors", folder / "var.safetensors", cpu_prepack=prepacked)


@pytest.fixture(scope="module")
def both() -> tuple[tuple[var_core.VQVAE, var_core.VAR], tuple[var_core.VQVAE, var_core.VAR]]:
    return _pair(True), _pair(False)


def _linears(var: var_core.VAR) -> list[torch.nn.Module]:
    return [m for m in var.modules() if isinstance(m, (torch.nn.Linear, PrepackedLinear))]


def test_loading_on_the_cpu_prepacks_every_block_and_the_head(both):
    (_, packed), (_, plain) = both
    swapped = [m for m in _linears(packed) if isinstance(m, PrepackedLinear)]
    assert len(swapped) == 4 * len(packed.blocks) + 1
    assert all(m.weight.is_mkldnn for m in swapped)  # the layout replaces the plain weight; no second copy
    assert not any(isinstance(m, PrepackedLinear) for m in _linears(plain))
    assert sum(p.numel() for p in packed.parameters()) == sum(p.numel() for p in plain.parameters())


def test_the_state_dict_is_the_checkpoints(both):
    (_, packed), (_, plain) = both
    a, b = packed.state_dict(), plain.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert not a[key].is_mkldnn and torch.equal(a[key], b[key]), key


def test_teacher_forced_logits_agree_to_float_rounding(both):
    (vqvae, packed), (_, plain) = both
    tokens = vqvae.encode(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    x = vqvae.quantize.teacher_forcing_input(tokens)
    labels = torch.tensor([1, packed.num_classes])
    a, b = packed(labels, x), plain(labels, x)
    assert not torch.equal(a, b)  # really another kernel
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


@pytest.mark.parametrize("fast", [False, True])
def test_greedy_generation_and_edits_keep_their_tokens(both, fast):
    """Greedy generation, an in-paint and a class edit in one batch: exact, the same tokens at every scale. Fast, the
    same below its bfloat16 scales; there bfloat16 rounding can magnify the float32 layers' last-bit differences,
    so a few tokens may move (as between two float32 kernels on another CPU)."""
    (vqvae, packed), (_, plain) = both
    options = var_core.SamplingOptions(cfg=GREEDY.cfg, top_k=1, top_p=0.0, fast=fast)
    labels = torch.tensor([0, 3, packed.num_classes])
    outs = [var_core.sample_fhat(var, vqvae, labels, options)[1] for var in (packed, plain)]
    g = torch.Generator().manual_seed(2)
    low = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    picture = torch.nn.functional.interpolate(low, size=(vqvae.image_size,) * 2, mode="bicubic").clamp(-1, 1)
    source = encode_source(vqvae, picture)
    box = torch.zeros(vqvae.image_size, vqvae.image_size)
    box[16:48, 8:40] = 1
    masks = scale_masks(box, packed.patch_nums)
    keep = TeacherForcing.for_rows(vqvae, [source, source], [masks, masks], [False, False], "cpu")
    edit_labels = torch.tensor([packed.num_classes, 5])
    edits = [var_core.sample_fhat(var, vqvae, edit_labels, options, keep=keep)[1] for var in (packed, plain)]
    exact_until = packed.num_scales - (FAST_SCALES if fast else 0)
    for a, b in (outs, edits):
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            agree = (x == y).float().mean().item()
            assert agree == 1 if k < exact_until else agree >= 0.9, f"scale {k}: {agree:.3f}"


def test_the_tiny_fixture_keeps_its_greedy_tokens():
    (vqvae, packed), (_, plain) = _pair(True, TINY), _pair(False, TINY)
    labels = torch.tensor([1, 4])
    a = var_core.sample_fhat(packed, vqvae, labels, GREEDY)[1]
    b = var_core.sample_fhat(plain, vqvae, labels, GREEDY)[1]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_prepack_applies_once_and_only_to_float32_on_the_cpu():
    _, var = _pair(False)
    assert prepack(var) and not prepack(var)
    _, low = var_core.load_pair(
        DEMO / "vae.safetensors", DEMO / "var.safetensors", dtype=torch.bfloat16, weight_dtype=torch.bfloat16
    )
    assert not prepack(low) and not any(isinstance(m, PrepackedLinear) for m in low.modules())
