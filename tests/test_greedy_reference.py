"""The sampler and the edit loop give today's exact path: greedy tokens identical, pictures within float
noise, against outputs stored from the code before the request/pipeline rewrite (commit 2eacdee)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import var_core
from editing.masks import scale_masks
from editing.teacher_forcing import encode_source, run_edit

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "greedy_reference.safetensors"
MODELS = {
    "tiny": (FIXTURES / "tiny" / "vae.safetensors", FIXTURES / "tiny" / "var.safetensors"),
    "demo": (Path(__file__).parent.parent / "assets" / "demo" / "vae.safetensors",
             Path(__file__).parent.parent / "assets" / "demo" / "var.safetensors"),
}  # fmt: skip
GREEDY = var_core.SamplingOptions(cfg=2.0, top_k=1, top_p=0.0)


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    with safe_open(str(REFERENCE), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _model(name: str) -> tuple[var_core.VQVAE, var_core.VAR]:
    return var_core.load_pair(*MODELS[name])


def _tokens(ref: dict, prefix: str) -> list[torch.Tensor]:
    n = sum(1 for k in ref if k.startswith(prefix))
    return [ref[f"{prefix}{k}"] for k in range(n)]


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_greedy_generation_is_unchanged(reference, name):
    vqvae, var = _model(name)
    labels = torch.tensor([0, 1, var.num_classes])
    f_hat, tokens = var_core.sample_fhat(var, vqvae, labels, GREEDY)
    for got, want in zip(tokens, _tokens(reference, f"{name}.generate.tokens."), strict=True):
        assert torch.equal(got, want)
    torch.testing.assert_close(vqvae.decode_fhat(f_hat), reference[f"{name}.generate.image"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["tiny", "demo"])
@pytest.mark.parametrize("mode", ["inpaint", "edit_class"])
def test_greedy_edits_are_unchanged(reference, name, mode):
    vqvae, var = _model(name)
    source = encode_source(vqvae, reference[f"{name}.image"])
    masks = scale_masks(reference[f"{name}.mask"], var.patch_nums)
    labels = torch.tensor([var.num_classes if mode == "inpaint" else 1])
    f_hat, tokens = run_edit(var, vqvae, labels, GREEDY, source, masks)
    for got, want in zip(tokens, _tokens(reference, f"{name}.{mode}.tokens."), strict=True):
        assert torch.equal(got, want)
    torch.testing.assert_close(vqvae.decode_fhat(f_hat), reference[f"{name}.{mode}.image"], atol=1e-4, rtol=0)
