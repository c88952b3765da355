"""The keep hook: VAR's sampler with each row's own picture tokens forced outside its mask.

Two ways to force the kept tokens:
- consistent (this project's): at scale k the kept tokens are the nearest codes of the picture's
  latent minus the f_hat actually accumulated so far, i.e. the picture re-quantized against the
  history the sampler really produced, so kept areas reconstruct as well as a plain VQ round trip
  even next to generated content;
- replay (the original authors' way, kept for the parity test and bench/edit_quality.py): the
  picture's precomputed tokens, which were computed for the picture's own history and drift
  wherever generated content bled into the residual.
Rows of one batch may come from different pictures, masks and modes; a row with nothing to keep
(generation) samples every token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from var_core import VAR, VQVAE, KeepHook, SamplingOptions, sample_fhat
from var_core.quantizer import MultiScaleQuantizer


@dataclass
class EncodedImage:
    """A picture as the edit loop needs it: latent (1, Cvae, P, P) and its plain token maps [(1, pn_k^2)]."""

    latent: torch.Tensor
    tokens: list[torch.Tensor]


@torch.no_grad()
def encode_source(vqvae: VQVAE, x: torch.Tensor) -> EncodedImage:
    """Picture (1, 3, H, W) in [-1, 1] -> its latent and token maps."""
    latent = vqvae.encode_latent(x)
    tokens, _ = vqvae.quantize.quantize(latent)
    return EncodedImage(latent, tokens)


@dataclass
class TeacherForcing(KeepHook):
    """The keep hook of a batch: rows' latents (B, Cvae, P, P), replay tokens [(B, pn_k^2)] and keep maps
    [(B, pn_k^2)] (True = keep the picture's token) on the device; the sampled maps [(B, pn_k^2)] (the keep maps'
    complement) on the host, so the sampler knows which tokens it runs the head and sampling for before the run and
    never reads the device; `replay` (B,) on the device, or None when no row replays."""

    quantizer: MultiScaleQuantizer
    latent: torch.Tensor
    tokens: list[torch.Tensor]
    kept: list[torch.Tensor]
    any_kept: list[bool]
    sampled_maps: list[torch.Tensor]
    replay: torch.Tensor | None = None

    @classmethod
    def for_rows(
        cls,
        vqvae: VQVAE,
        sources: Sequence[EncodedImage | None],
        regenerate: Sequence[list[torch.Tensor] | None],
        replay: Sequence[bool] | None = None,
        device: torch.device | str = "cpu",
    ) -> TeacherForcing:
        """One entry per row: its source (None = nothing kept), per-scale regenerate maps [(pn_k^2,)] (None = all)
        and replay flag (None: no row replays)."""
        quant = vqvae.quantize
        P = quant.patch_nums[-1]
        zero = torch.zeros(1, quant.Cvae, P, P, device=device)
        latent = torch.cat([s.latent.to(device) if s is not None else zero for s in sources])
        tokens, kept, any_kept, sampled = [], [], [], []
        for k, pn in enumerate(quant.patch_nums):
            rows_tokens, rows_sampled = [], []
            for source, regen in zip(sources, regenerate, strict=True):
                if source is None or regen is None:
                    rows_tokens.append(torch.zeros(1, pn * pn, dtype=torch.long, device=device))
                    rows_sampled.append(torch.ones(1, pn * pn, dtype=torch.bool))
                else:
                    rows_tokens.append(source.tokens[k].to(device))
                    rows_sampled.append(regen[k].to("cpu", torch.bool).view(1, -1))
            tokens.append(torch.cat(rows_tokens))
            sampled.append(torch.cat(rows_sampled))
            kept.append((~sampled[-1]).to(device))
            any_kept.append(not bool(sampled[-1].all()))  # on the host: the loop never waits on the device
        replay_rows = torch.tensor(replay, dtype=torch.bool, device=device) if replay and any(replay) else None
        return cls(quant, latent, tokens, kept, any_kept, sampled, replay_rows)

    def sampled(self, k: int) -> torch.Tensor:
        """Scale k's tokens that are sampled (not kept): bool (B, pn_k^2) on the host."""
        return self.sampled_maps[k]

    def __call__(self, k: int, f_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self.any_kept[k]:
            return None
        return self.kept[k], self._own(k, f_hat)

    def _own(self, k: int, f_hat: torch.Tensor) -> torch.Tensor:
        """The picture's tokens (B, pn_k^2) at scale k given f_hat (B, Cvae, P, P): consistent, or replayed."""
        quant = self.quantizer
        consistent = quant.nearest_code(quant.downsample(self.latent - f_hat, k))
        if self.replay is None:
            return consistent
        return torch.where(self.replay.view(-1, 1), self.tokens[k], consistent)


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
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sample labels.shape[0] rows keeping `source`'s tokens where `regenerate[k]` (pn_k^2,) is False.

    source: one picture for every row, or one per row (batch B). replay: the original authors' teacher forcing.
    Returns (f_hat, tokens); without a source it is plain generation."""
    B = labels.shape[0]
    rows = [source] * B
    if source is not None and source.latent.shape[0] == B > 1:
        rows = [EncodedImage(source.latent[i : i + 1], [t[i : i + 1] for t in source.tokens]) for i in range(B)]
    keep = TeacherForcing.for_rows(vqvae, rows, [regenerate] * B, [replay] * B, labels.device)
    return sample_fhat(var, vqvae, labels, options, generator, keep=keep if source is not None else None)
