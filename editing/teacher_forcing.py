"""The edit loop: VAR's sampler with the image's own tokens forced outside the mask.

Two ways to force the kept tokens:
- consistent (default): at scale k the kept tokens are the nearest codes of the image's latent
  minus the f_hat actually accumulated so far, i.e. the image re-quantized against the history
  the sampler really produced, so kept areas reconstruct as well as a plain VQ round trip even
  next to generated content;
- replay (the original authors' way): the image's precomputed tokens, which were computed for
  the image's own history and drift wherever generated content bled into the residual.
Generation is the case with no source and nothing kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from var_core import VAR, VQVAE, SamplingOptions, sample_fhat
from var_core.sampling import ScaleCallback


@dataclass
class EncodedImage:
    """An image as the edit loop needs it: latent (1, Cvae, P, P) and its plain token maps [(1, pn_k^2)]."""

    latent: torch.Tensor
    tokens: list[torch.Tensor]


@torch.no_grad()
def encode_source(vqvae: VQVAE, x: torch.Tensor) -> EncodedImage:
    """Image (B, 3, H, W) in [-1, 1] -> its latent and token maps."""
    latent = vqvae.encode_latent(x)
    tokens, _ = vqvae.quantize.quantize(latent)
    return EncodedImage(latent, tokens)


@torch.no_grad()
def run_edit(
    var: VAR,
    vqvae: VQVAE,
    labels: torch.Tensor,
    options: SamplingOptions,
    source: EncodedImage | None = None,
    regenerate: list[torch.Tensor] | None = None,
    replay: bool = False,
    generator: torch.Generator | None = None,
    on_scale: ScaleCallback | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sample labels.shape[0] candidates, keeping `source`'s tokens where `regenerate[k]` is False.

    regenerate: per-scale bool maps [(pn_k^2,) or (B, pn_k^2)], True = sample. Returns (f_hat, tokens).
    """
    if source is None:
        return sample_fhat(var, vqvae, labels, options, generator, on_scale=on_scale)
    B = labels.shape[0]
    quant = vqvae.quantize

    def keep(k: int, f_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        kept = ~regenerate[k].to(labels.device).expand(B, -1)
        if not bool(kept.any()):
            return None
        if replay:
            tokens = source.tokens[k].expand(B, -1)
        else:
            tokens = quant.nearest_code(quant.downsample(source.latent - f_hat, k))
        return kept, tokens

    return sample_fhat(var, vqvae, labels, options, generator, keep=keep, on_scale=on_scale)
