"""Number-for-number parity with the original implementation on a reference fixture.

The fixture folder (config.json, vae/var/expected .safetensors) comes from $VAR_PARITY_FIXTURE,
default the tiny one shipped in tests/fixtures/tiny; any fixture made the same way must pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import var_core
from editing.masks import scale_masks
from editing.teacher_forcing import encode_source, run_edit

FIXTURE = Path(os.environ.get("VAR_PARITY_FIXTURE", Path(__file__).parent / "fixtures" / "tiny"))
ATOL = 1e-4


@pytest.fixture(scope="module")
def ref():
    cfg = json.loads((FIXTURE / "config.json").read_text())
    expected = load_file(str(FIXTURE / "expected.safetensors"))
    vqvae = var_core.load_vqvae(FIXTURE / "vae.safetensors", patch_nums=tuple(cfg["patch_nums"]))
    var = var_core.load_var(FIXTURE / "var.safetensors", vqvae)
    return cfg, expected, vqvae, var


def _tokens(expected: dict, prefix: str) -> list[torch.Tensor]:
    n = sum(1 for k in expected if k.startswith(prefix))
    return [expected[f"{prefix}{k}"] for k in range(n)]


def test_config_read_from_checkpoint(ref):
    cfg, _, vqvae, var = ref
    assert var.patch_nums == tuple(cfg["patch_nums"])
    assert vqvae.image_size == cfg["image_size"]
    assert (var.config["depth"], var.num_classes, var.config["shared_aln"]) == (
        cfg["depth"],
        cfg["num_classes"],
        cfg["shared_aln"],
    )


def test_tokenizer(ref):
    _, exp, vqvae, _ = ref
    tokens = vqvae.encode(exp["image_pm1"])
    for got, want in zip(tokens, _tokens(exp, "tokens_"), strict=True):
        assert torch.equal(got, want)
    f_hat = vqvae.quantize.tokens_to_fhat(tokens)
    torch.testing.assert_close(f_hat, exp["f_hat_last"], atol=ATOL, rtol=0)
    torch.testing.assert_close(vqvae.decode(tokens), exp["recon_pm1"], atol=ATOL, rtol=0)


def test_teacher_forced_logits(ref):
    _, exp, vqvae, var = ref
    x = vqvae.quantize.teacher_forcing_input(_tokens(exp, "tokens_"))
    torch.testing.assert_close(x, exp["var_input"], atol=ATOL, rtol=0)
    with torch.no_grad():
        logits = var(exp["label"], x)
    torch.testing.assert_close(logits, exp["logits_teacher_forced"], atol=ATOL, rtol=0)


def test_greedy_generation(ref):
    _, exp, vqvae, var = ref
    options = var_core.SamplingOptions(cfg=1.5, top_k=1, top_p=0.0)
    f_hat, tokens = var_core.sample_fhat(var, vqvae, exp["label"], options)
    for got, want in zip(tokens, _tokens(exp, "gen_tokens_"), strict=True):
        assert torch.equal(got, want)
    image = vqvae.decode_fhat(f_hat).add(1).mul(0.5)
    torch.testing.assert_close(image, exp["gen_cfg1.5_topk1_img01"], atol=ATOL, rtol=0)


def test_compat_inpainting(ref):
    _, exp, vqvae, var = ref
    regenerate = 1 - exp["edit_keep_mask"]
    masks = scale_masks(regenerate, var.patch_nums, policy="compat")
    source = encode_source(vqvae, exp["image_pm1"])
    labels = torch.full((2,), var.num_classes)
    options = var_core.SamplingOptions(cfg=3.0, top_k=1, top_p=0.0)
    f_hat, tokens = run_edit(var, vqvae, labels, options, source=source, regenerate=masks, replay=True)
    for got, want in zip(tokens, _tokens(exp, "edit_tokens_"), strict=True):
        assert torch.equal(got, want)
    image = vqvae.decode_fhat(f_hat).add(1).mul(0.5)
    torch.testing.assert_close(image, exp["edit_inpaint_cfg3_topk1_img01"], atol=ATOL, rtol=0)
