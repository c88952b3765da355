"""Multi-scale residual vector quantization (the tokenizer half of VAR).

A latent f (B, Cvae, P, P), P = patch_nums[-1], becomes one token map per scale k, each
quantizing what the coarser scales left over; the accumulated f_hat approximates f.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .schedule import Schedule, as_schedule


class QuantResidual(nn.Module):
    """The phi convs after each scale: phi(h) = (1 - r) h + r conv(h), r = 0.5.

    share = 1: one conv for all scales (`qresi`); share = n >= 2: n partially shared convs
    (`qresi_ls.j`); share = 0: one conv per scale (`j`). Scale k uses the conv whose tick is
    nearest to k / (K - 1).
    """

    def __init__(self, channels: int, share: int, num_scales: int, ratio: float = 0.5):
        super().__init__()
        n = share or num_scales
        convs = [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(n)]
        if share == 1:
            self.qresi = convs[0]
        elif share == 0:
            for j, conv in enumerate(convs):
                self.add_module(str(j), conv)
        else:
            self.qresi_ls = nn.ModuleList(convs)
        self.convs = convs
        self.ratio = ratio
        margin = 1 / 3 / n if n == 4 else 1 / 2 / n
        self.ticks = torch.linspace(margin, 1 - margin, n, dtype=torch.float64)

    def forward(self, h: torch.Tensor, k: int, num_scales: int) -> torch.Tensor:
        at = k / (num_scales - 1)
        conv = self.convs[int((self.ticks - at).abs().argmin())]
        return h * (1 - self.ratio) + conv(h) * self.ratio


class MultiScaleQuantizer(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        channels: int,
        schedule: Schedule | tuple[int, ...],
        share_quant_resi: int = 4,
        num_ema_scales: int = 10,
    ):
        super().__init__()
        self.vocab_size, self.Cvae = vocab_size, channels
        self.schedule = as_schedule(schedule)
        self.embedding = nn.Embedding(vocab_size, channels)
        self.quant_resi = QuantResidual(channels, share_quant_resi, self.schedule.num_scales)
        self.register_buffer("ema_vocab_hit_SV", torch.zeros(num_ema_scales, vocab_size))

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.schedule.patch_nums

    @property
    def num_scales(self) -> int:
        return self.schedule.num_scales

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A training statistic whose first dimension varies between files; never used here.
        key = prefix + "ema_vocab_hit_SV"
        if key in state_dict:
            self.ema_vocab_hit_SV = torch.zeros_like(state_dict[key], device=self.ema_vocab_hit_SV.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def nearest_code(self, z: torch.Tensor) -> torch.Tensor:
        """Latent map (B, C, h, w) -> nearest codebook index (B, h*w) by squared L2, row-major."""
        B, C, h, w = z.shape
        z_NC = z.permute(0, 2, 3, 1).reshape(-1, C).float()
        codes = self.embedding.weight.float()
        d = z_NC.square().sum(1, keepdim=True) + codes.square().sum(1)
        d.addmm_(z_NC, codes.T, alpha=-2, beta=1)
        return d.argmin(dim=1).view(B, h * w)

    def embed(self, idx: torch.Tensor, k: int) -> torch.Tensor:
        """Token map (B, pn_k^2) of scale k -> code map (B, C, pn_k, pn_k), float32."""
        pn = self.patch_nums[k]
        return self.embedding.weight.float()[idx].transpose(1, 2).reshape(idx.shape[0], self.Cvae, pn, pn)

    def scale_contribution(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Code map (B, C, pn_k, pn_k) of scale k -> its residual phi_k(up(h)) at full size (B, C, P, P)."""
        P = self.patch_nums[-1]
        if k != self.num_scales - 1:
            h = F.interpolate(h, size=(P, P), mode="bicubic")
        return self.quant_resi(h, k, self.num_scales)

    def downsample(self, f: torch.Tensor, k: int) -> torch.Tensor:
        """Full-size latent (B, C, P, P) -> area-downsampled (B, C, pn_k, pn_k) (identity on the last scale)."""
        pn = self.patch_nums[k]
        return f if pn == f.shape[-1] else F.interpolate(f, size=(pn, pn), mode="area")

    @torch.no_grad()
    def quantize(self, f: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Latent (B, C, P, P) -> (token maps [(B, pn_k^2)], accumulated f_hat (B, C, P, P))."""
        f = f.float()
        rest, f_hat, tokens = f.clone(), torch.zeros_like(f), []
        for k in range(self.num_scales):
            idx = self.nearest_code(self.downsample(rest, k))
            h = self.scale_contribution(self.embed(idx, k), k)
            f_hat += h
            rest -= h
            tokens.append(idx)
        return tokens, f_hat

    def tokens_to_fhat(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """Token maps [(B, pn_k^2)] -> accumulated latent f_hat (B, C, P, P)."""
        f_hat = 0
        for k, idx in enumerate(tokens):
            f_hat = f_hat + self.scale_contribution(self.embed(idx, k), k)
        return f_hat

    def teacher_forcing_input(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """Token maps -> VAR's inputs for scales 1..K-1: (B, L - pn_0^2, C), the area-downsampled f_hat."""
        f_hat, inputs = 0, []
        for k in range(self.num_scales - 1):
            f_hat = f_hat + self.scale_contribution(self.embed(tokens[k], k), k)
            inputs.append(self.downsample(f_hat, k + 1).flatten(2).transpose(1, 2))
        return torch.cat(inputs, dim=1)

    def straight_through(self, f: torch.Tensor, beta: float = 0.25) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training quantization: f -> (f_hat with straight-through gradient, VQ loss, code usage (V,))."""
        f_detached = f.detach()
        rest, f_hat = f_detached.clone(), torch.zeros_like(f_detached)
        loss = f.new_zeros(())
        usage = torch.zeros(self.vocab_size, device=f.device)
        for k in range(self.num_scales):
            with torch.no_grad():
                idx = self.nearest_code(self.downsample(rest, k))
            usage += torch.bincount(idx.flatten(), minlength=self.vocab_size).float()
            h = self.scale_contribution(self.embed(idx, k), k)
            f_hat = f_hat + h
            rest = rest - h.detach()
            loss = loss + beta * F.mse_loss(f_hat.detach(), f) + F.mse_loss(f_hat, f_detached)
        return (f_hat.detach() - f_detached) + f, loss / self.num_scales, usage
