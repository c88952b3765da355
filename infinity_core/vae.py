"""The BSQ multi-scale VAE: a convolutional encoder and decoder around a bitwise quantizer.

Layer names follow the published module (`*.conv.weight`, `*.norm.weight`), so a published file's
keys are this module's keys. A latent has d channels (the bits per token) at 1/16 of the picture's
side. Bits are kept as (B, h, w, d) integer tensors of 0/1; the code of a bit vector b is
(2b - 1) / sqrt(d), L2-normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from var_core.vqvae import keep_large_blocks_on_the_heap, upsample_conv

from .schedules import Schedule


class Conv(nn.Module):
    """A 2-D convolution under the name the published files use (`conv`)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Norm(nn.Module):
    """GroupNorm (32 groups, or 24 where 32 do not divide) under the published name (`norm`)."""

    def __init__(self, channels: int):
        super().__init__()
        groups = 32 if channels % 32 == 0 else 24
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def swish_(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x), written into x (a map no one else holds) in one pass (F.silu; within an ulp of the product
    upstream writes)."""
    return F.silu(x, inplace=True)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = Norm(cin), Conv(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = Norm(cout), Conv(cout, cout, 3, padding=1)
        self.nin_shortcut = Conv(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish_(self.norm1(x)))
        h = self.conv2(swish_(self.norm2(h)))
        return h.add_(x if self.nin_shortcut is None else self.nin_shortcut(x))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = Conv(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = Conv(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv(nearest 2x of x) on the small map (var_core's `upsample_conv`: 16 products a pixel, not 36)."""
        return upsample_conv(x, self.conv.conv)


def _level(blocks: list[ResBlock]) -> nn.Module:
    level = nn.Module()
    level.block = nn.ModuleList(blocks)
    return level


def _middle(channels: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1, mid.block_2 = ResBlock(channels, channels), ResBlock(channels, channels)
    return mid


class Encoder(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, d, H/16, W/16) latent (with 5 levels: 4 halvings)."""

    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, bits: int, downsamples: int = 4):
        super().__init__()
        self.conv_in = Conv(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for i, mult in enumerate(ch_mult):
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(cin, ch * mult))
                cin = ch * mult
            level = _level(blocks)
            if i < downsamples:
                level.downsample = Downsample(cin)
            self.down.append(level)
        self.mid = _middle(cin)
        self.norm_out, self.conv_out = Norm(cin), Conv(cin, bits, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.block_1(h))
        return self.conv_out(swish_(self.norm_out(h)))


class Decoder(nn.Module):
    """(B, d, h, w) summed codes -> (B, 3, 16h, 16w) picture (not clamped)."""

    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, bits: int, upsamples: int = 4):
        super().__init__()
        cin = ch * ch_mult[-1]
        self.conv_in = Conv(bits, cin, 3, padding=1)
        self.mid = _middle(cin)
        levels = []
        for i in reversed(range(len(ch_mult))):
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
            level = _level(blocks)
            if 1 <= i <= upsamples:
                level.upsample = Upsample(cin)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out, self.conv_out = Norm(cin), Conv(cin, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid.block_2(self.mid.block_1(self.conv_in(z)))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(swish_(self.norm_out(h)))


def resize_trilinear(codes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, d, h, w) -> (B, d, *size), trilinear on a one-frame volume as upstream (up or down)."""
    if tuple(codes.shape[-2:]) == tuple(size):
        return codes
    return F.interpolate(codes.unsqueeze(2), size=(1, *size), mode="trilinear").squeeze(2)


def resize_area(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, d, H, W) -> (B, d, h, w) by area averaging on a one-frame volume, as upstream's encoder."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x.unsqueeze(2), size=(1, *size), mode="area").squeeze(2)


def _reuse_freed_maps(x: torch.Tensor) -> None:
    """On the CPU, have malloc reuse the 32-64 MiB maps of a 256 px picture instead of mapping fresh pages for each
    (var_core's `keep_large_blocks_on_the_heap`)."""
    if x.device.type == "cpu":
        keep_large_blocks_on_the_heap()


class BSQVAE(nn.Module):
    """The multi-scale BSQ tokenizer: `encode_bits` a picture, `codes` of bits, `decode` summed codes.

    Its maps run channels-last (as `load_vae` leaves the weights): oneDNN's convolutions are faster
    so on the CPU (docs/speed.md measures the same for VAR's decoder); sums within float rounding."""

    def __init__(
        self, bits: int = 32, ch: int = 128, ch_mult: tuple[int, ...] = (1, 2, 4, 4, 4), num_res_blocks: int = 2
    ):
        super().__init__()
        self.bits = bits
        self.config = dict(bits=bits, ch=ch, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks)
        self.encoder = Encoder(ch, tuple(ch_mult), num_res_blocks, bits)
        self.decoder = Decoder(ch, tuple(ch_mult), num_res_blocks, bits)

    def codes(self, bits: torch.Tensor) -> torch.Tensor:
        """(B, h, w, d) bits in {0, 1} -> (B, d, h, w) float32 codes (2b - 1) / sqrt(d), unit norm per token."""
        scale = 1 / self.bits**0.5
        codes = F.normalize(bits.float() * scale * 2 - scale, dim=-1)
        return codes.permute(0, 3, 1, 2)

    @torch.no_grad()
    def encode_bits(self, pictures: torch.Tensor, schedule: Schedule) -> list[torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] at the schedule's pixel size -> per scale (B, h, w, d) int64 bits.

        Residual quantisation: each scale quantises the area-downsampled residual (L2-normalised per
        token, bit = value > 0), and its code, upsampled trilinear, is taken off the residual.
        """
        _reuse_freed_maps(pictures)
        residual = self.encoder(pictures.contiguous(memory_format=torch.channels_last)).float().contiguous()
        size = tuple(residual.shape[-2:])
        q_scale = 1.0 / self.bits**0.5
        out = []
        for grid in schedule.grids:
            z = F.normalize(resize_area(residual, grid).permute(0, 2, 3, 1), dim=-1)
            zhat = torch.where(z > 0, 1.0, -1.0).to(z.dtype) * q_scale
            quantized = z + (zhat - z)  # upstream's straight-through expression, rounded the same way
            out.append((quantized > 0).long())
            residual = residual - resize_trilinear(quantized.permute(0, 3, 1, 2), size)
        return out

    @torch.no_grad()
    def decode(self, summed_codes: torch.Tensor) -> torch.Tensor:
        """(B, d, h, w) sum of the upsampled codes -> (B, 3, 16h, 16w) picture clamped to [-1, 1]."""
        _reuse_freed_maps(summed_codes)
        return self.decoder(summed_codes.contiguous(memory_format=torch.channels_last)).clamp(-1, 1).contiguous()

    def summed_codes(self, bits: list[torch.Tensor]) -> torch.Tensor:
        """Per-scale bits (B, h, w, d) -> (B, d, H, W) sum of their codes upsampled to the last grid."""
        size = tuple(bits[-1].shape[1:3])
        total = 0
        for b in bits:
            total = total + resize_trilinear(self.codes(b), size)
        return total
