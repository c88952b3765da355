"""Ready for a GPU, checked on the CPU: the compiled per-scale step keeps the eager model's greedy tokens, and on CUDA
the transformer's block weights are loaded once in the compute precision (not re-cast by autocast on every call).
torch.compile here runs `torch._dynamo.config.patch(recompile_limit=...)`, a private setting (var_core/compiled.py)."""

from __future__ import annotations

from pathlib import Path

import torch

import var_core
from editing.masks import scale_masks
from editing.teacher_forcing import TeacherForcing, encode_source
from var_core.compiled import compile_steps
from var_core.loading import block_weight_dtype

TINY = Path(__file__).parent / "fixtures" / "tiny"
GREEDY = var_core.SamplingOptions(cfg=2.0, top_k=1, top_p=0.0)


def _runs(vqvae: var_core.VQVAE, var: var_core.VAR) -> list[list[torch.Tensor]]:
    """Greedy token maps of a generation batch and of an in-paint + class edit batch (both 3 rows with the guided
    twin, so the compiled step's graphs serve both)."""
    generated = var_core.sample_fhat(var, vqvae, torch.tensor([1, var.num_classes]), GREEDY)[1]
    R = vqvae.image_size
    low = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    source = encode_source(vqvae, torch.nn.functional.interpolate(low, size=(R, R), mode="bicubic").clamp(-1, 1))
    box = torch.zeros(R, R)
    box[R // 4 : 3 * R // 4, R // 8 : R // 2] = 1
    masks = scale_masks(box, var.patch_nums)
    hook = TeacherForcing.for_rows(vqvae, [source, source], [masks, masks], [False, False], "cpu")
    edited = var_core.sample_fhat(var, vqvae, torch.tensor([var.num_classes, 2]), GREEDY, keep=hook)[1]
    return [generated, edited]


def test_the_compiled_step_keeps_the_greedy_tokens():
    vqvae, var = var_core.load_pair(TINY / "vae.safetensors", TINY / "var.safetensors", cpu_prepack=False)
    eager = _runs(vqvae, var)
    assert compile_steps(var) is var and "body" in var.__dict__
    compiled = _runs(vqvae, var)
    for a, b in zip(eager, compiled, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_compiling_needs_plain_linear_layers():
    _, var = var_core.load_pair(TINY / "vae.safetensors", TINY / "var.safetensors")
    try:
        compile_steps(var)
    except ValueError as e:
        assert "cpu_prepack=False" in str(e)
    else:
        raise AssertionError("a prepacked model was compiled")


def test_on_cuda_the_block_weights_load_in_the_compute_dtype():
    assert block_weight_dtype("cuda", torch.bfloat16, None) == torch.bfloat16
    assert block_weight_dtype("cuda:0", torch.float16, None) == torch.float16
    assert block_weight_dtype("cuda", torch.float32, None) is None
    assert block_weight_dtype("cpu", torch.bfloat16, None) is None  # the CPU keeps float32 (prepacked, autocast)
    assert block_weight_dtype("cuda", torch.bfloat16, torch.float32) == torch.float32  # asked for explicitly
