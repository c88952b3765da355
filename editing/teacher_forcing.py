"""The keep hook: VAR's sampler with each row's own picture tokens forced outside its mask.

Two ways to force the kept tokens:
- consistent (default): at scale k the kept tokens are the nearest codes of the picture's latent
  minus the f_hat actually accumulated so far, i.e. the picture re-quantized against the history
  the sampler really produced, so kept areas reconstruct as well as a plain VQ round trip even
  next to generated content;
- replay (the original authors' way): the picture's precomputed tokens, which were computed for
  the picture's own history and drift wherever generated content bled into the residual.
Rows of one batch may come from different pictures, masks and modes; a row with nothing to keep
(generation) has an all-True regenerate map.

Keeping what fits (class edits): inside the mask a guided row may also keep the picture's own token
(the one it would force outside) wherever the new class predicts it at least as well as the
picture's context alone does: log p_class(token) - log p_uncond(token) >= the row's threshold,
with both probabilities from the sampler's two CFG branches, scale by scale (`FIT_THRESHOLD` is
the option's threshold; bench/class_edit_keep.py measures others).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from var_core import VAR, VQVAE, SamplingOptions, sample_fhat
from var_core.quantizer import MultiScaleQuantizer

FIT_THRESHOLD = 0.0  # keep_fitting: the picture's token stays where p_class(token) >= p_uncond(token)


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
class TeacherForcing:
    """The keep hook of a batch: rows' latents (B, Cvae, P, P), replay tokens [(B, pn_k^2)], keep
    maps [(B, pn_k^2)] (True = keep the picture's token) and replay flags (B,), all on the device;
    the sampled maps [(B, pn_k^2)] (the keep maps' complement) on the host, so the sampler knows
    which tokens it runs the head and sampling for before the run and never reads the device;
    fit (B,): each row's keep-what-fits threshold on the log-ratio (inf = off)."""

    quantizer: MultiScaleQuantizer
    latent: torch.Tensor
    tokens: list[torch.Tensor]
    kept: list[torch.Tensor]
    replay: torch.Tensor
    any_kept: list[bool]
    sampled_maps: list[torch.Tensor]
    fit: torch.Tensor
    any_fit: bool

    @classmethod
    def for_rows(
        cls,
        vqvae: VQVAE,
        sources: list[EncodedImage | None],
        regenerate: list[list[torch.Tensor] | None],
        replay: list[bool],
        device: torch.device | str,
        fit: list[float | None] | None = None,
    ) -> TeacherForcing:
        """One entry per row: its source (None = nothing kept), per-scale regenerate maps [(pn_k^2,)],
        replay flag and keep-what-fits threshold (None = off; default off for every row)."""
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
        replay_rows = torch.tensor(replay, dtype=torch.bool, device=device)
        fit = fit or [None] * len(sources)
        fit = [None if s is None else f for s, f in zip(sources, fit, strict=True)]
        thresholds = torch.tensor([torch.inf if f is None else f for f in fit], device=device)
        any_fit = any(f is not None for f in fit)
        return cls(quant, latent, tokens, kept, replay_rows, any_kept, sampled, thresholds, any_fit)

    def sampled(self, k: int) -> torch.Tensor:
        """Scale k's tokens that are sampled (not kept): bool (B, pn_k^2) on the host."""
        return self.sampled_maps[k]

    def __call__(self, k: int, f_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self.any_kept[k]:
            return None
        return self.kept[k], self._own(k, f_hat)

    def fits(
        self, k: int, f_hat: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, places: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The sampled tokens of guided rows (flat `places` (n_g,), logits (n_g, V) of both CFG branches) where the
        picture's own token fits the class: keep (B, pn_k^2) and the tokens (B, pn_k^2); None when no row asks."""
        if not self.any_fit or places.numel() == 0:
            return None
        own = self._own(k, f_hat)
        B, l = own.shape  # noqa: E741
        token = own.view(-1)[places].unsqueeze(-1)
        gain = cond.float().log_softmax(-1).gather(-1, token) - uncond.float().log_softmax(-1).gather(-1, token)
        keep = torch.zeros(B * l, dtype=torch.bool, device=own.device)
        keep[places] = gain.squeeze(-1) >= self.fit[places // l]
        return keep.view(B, l), own

    def _own(self, k: int, f_hat: torch.Tensor) -> torch.Tensor:
        """The picture's tokens (B, pn_k^2) at scale k given f_hat (B, Cvae, P, P): consistent, or replayed."""
        quant = self.quantizer
        consistent = quant.nearest_code(quant.downsample(self.latent - f_hat, k))
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
    fit: float | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sample labels.shape[0] rows keeping `source`'s tokens where `regenerate[k]` (pn_k^2,) is False.

    source: one picture for every row, or one per row (batch B). fit: the keep-what-fits threshold
    (None = off). Returns (f_hat, tokens); without a source it is plain generation."""
    B = labels.shape[0]
    rows = [source] * B
    if source is not None and source.latent.shape[0] == B > 1:
        rows = [EncodedImage(source.latent[i : i + 1], [t[i : i + 1] for t in source.tokens]) for i in range(B)]
    keep = TeacherForcing.for_rows(vqvae, rows, [regenerate] * B, [replay] * B, labels.device, [fit] * B)
    return sample_fhat(var, vqvae, labels, options, generator, keep=keep if source is not None else None)
