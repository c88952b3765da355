"""The fast mode's CPU decoder is a bfloat16 copy of the decoder (var_core/vqvae.py): close to the float32 decode,
outside the state dict, and made again when a decoder weight changes in place, which it notices through
`torch.Tensor._version` (a private counter of in-place writes, named here as the codebase's rule asks)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import var_core
from var_core.vqvae import fast_dtype

TINY = Path(__file__).parent / "fixtures" / "tiny"

pytestmark = pytest.mark.skipif(fast_dtype(torch.device("cpu")) is None, reason="no fast bfloat16 on this CPU")


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(4 / max((a - b).square().mean().item(), 1e-12))  # pictures in [-1, 1]


def test_the_bfloat16_decoder_follows_the_weights_and_stays_out_of_the_state_dict():
    vqvae = var_core.load_vqvae(TINY / "vae.safetensors")
    keys = set(vqvae.state_dict())
    f_hat = torch.randn(
        2, vqvae.Cvae, vqvae.patch_nums[-1], vqvae.patch_nums[-1], generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        exact, fast = vqvae.decode_fhat(f_hat), vqvae.decode_fhat(f_hat, fast=True)
        assert fast.dtype == torch.float32 and _psnr(exact, fast) > 30
        assert set(vqvae.state_dict()) == keys
        version = vqvae.decoder.conv_out.weight._version
        vqvae.decoder.conv_out.weight.mul_(-1)  # an in-place change, as an optimizer step makes
        assert vqvae.decoder.conv_out.weight._version > version
        flipped = vqvae.decode_fhat(f_hat, fast=True)
    assert _psnr(vqvae.decode_fhat(f_hat), flipped) > 30 and _psnr(fast, flipped) < 30


def test_a_vqvae_made_in_inference_mode_decodes_fast():
    """Inference tensors keep no version counter; such weights cannot change outside inference mode anyway."""
    with torch.inference_mode():
        vqvae = var_core.load_vqvae(TINY / "vae.safetensors")
        P = vqvae.patch_nums[-1]
        f_hat = torch.randn(1, vqvae.Cvae, P, P, generator=torch.Generator().manual_seed(1))
        assert _psnr(vqvae.decode_fhat(f_hat), vqvae.decode_fhat(f_hat, fast=True)) > 30
