"""The multi-scale VQVAE: convolutional encoder/decoder around a multi-scale residual quantizer.

Data flow: image (B, 3, H, W) in [-1, 1] -> encoder -> quant_conv -> f (B, Cvae, h, w)
-> quantizer -> token maps [(B, pn_k^2)] -> f_hat -> post_quant_conv -> decoder -> image.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from .quantizer import MultiScaleQuantizer
from .schedule import Schedule, as_schedule

PATCH_NUMS_256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
PATCH_NUMS_512 = (1, 2, 3, 4, 6, 9, 13, 18, 24, 32)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = _norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = _norm(out_ch)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_norm_silu(self.norm1, x))
        h = self.conv2(self.dropout(_norm_silu(self.norm2, h)))
        if torch.is_grad_enabled():
            return self.nin_shortcut(x) + h
        return h.add_(self.nin_shortcut(x))  # inference: no second map of this size (the same sums)


def _norm_silu(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """SiLU(GroupNorm(x)), in place on the norm's output where no gradient is kept (one map fewer written)."""
    return F.silu(norm(x), inplace=not torch.is_grad_enabled())


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels of a feature map."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * C**-0.5, dim=2)  # (B, HW_q, HW_k)
        h = torch.bmm(v, w.transpose(1, 2)).view(B, C, H, W)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest 2x, then a 3x3 conv (`conv`), computed on the small map.

    After a nearest 2x, output pixel (2i + a, 2j + b) sees through the 3x3 kernel only the input pixels
    i - 1 + a .. i + a, j - 1 + b .. j + b, some of them twice: so each of the four output phases (a, b) is
    a 2x2 conv of the input with the taps that read the same pixel summed, 16 instead of 36 products per
    input pixel, the same numbers up to float rounding."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_conv(x, self.conv)


def upsample_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """conv(nearest 2x of x) for a 3x3, padding-1 `conv`, computed on the small map as `Upsample` says:
    (B, I, H, W) -> (B, O, 2H, 2W), channels-last."""
    B, _, H, W = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    out = None
    for a, rows in enumerate(_fold_taps(conv.weight, 2)):
        for b, kernel in enumerate(_fold_taps(rows, 3)):
            phase = F.conv2d(padded[:, :, a : a + H + 1, b : b + W + 1], kernel, conv.bias)  # (B, O, H, W)
            if out is None:  # (B, H, 2, W, 2, O): the channels-last storage of (B, O, 2H, 2W)
                out = phase.new_empty(B, H, 2, W, 2, phase.shape[1])
            out[:, :, a, :, b] = phase.permute(0, 2, 3, 1)
    return out.view(B, 2 * H, 2 * W, -1).permute(0, 3, 1, 2)


def _fold_taps(w: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A kernel's 3 taps along `dim` -> the 2 taps of phase 0 ([0], [1] + [2]) and of phase 1 ([0] + [1], [2])."""
    t0, t1, t2 = w.unbind(dim)
    return torch.stack((t0, t1 + t2), dim), torch.stack((t0 + t1, t2), dim)


class _Level(nn.Module):
    """One resolution level: res blocks, optional attention after each, optional resampler."""

    def __init__(self, blocks: list[nn.Module], attn: list[nn.Module], resample: nn.Module | None, name: str):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attn)
        if resample is not None:
            self.add_module(name, resample)
        self.resample_name = name if resample is not None else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h)
        if self.resample_name is not None:
            h = getattr(self, self.resample_name)(h)
        return h


class _Mid(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_channels: int, dropout: float = 0.0):
        super().__init__()
        n = len(ch_mult)
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        levels, block_in = [], ch
        for i, mult in enumerate(ch_mult):
            block_out, blocks, attn = ch * mult, [], []
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if i == n - 1:
                    attn.append(AttnBlock(block_in))
            levels.append(_Level(blocks, attn, Downsample(block_in) if i != n - 1 else None, "downsample"))
        self.down = nn.ModuleList(levels)
        self.mid = _Mid(block_in, dropout)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(_norm_silu(self.norm_out, self.mid(h)))


class Decoder(nn.Module):
    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_channels: int, dropout: float = 0.0):
        super().__init__()
        n = len(ch_mult)
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, dropout)
        levels: list[nn.Module] = []
        for i in reversed(range(n)):
            block_out, blocks, attn = ch * ch_mult[i], [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if i == n - 1:
                    attn.append(AttnBlock(block_in))
            levels.insert(0, _Level(blocks, attn, Upsample(block_in) if i != 0 else None, "upsample"))
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(_norm_silu(self.norm_out, h))


def fast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where convolutions in it are faster than in float32 (a CUDA GPU that has it, a CPU with AVX512-BF16
    or AMX), else None."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    has = [getattr(torch.cpu, f"_is_{name}_supported", lambda: False)() for name in ("avx512_bf16", "amx_tile")]
    return torch.bfloat16 if device.type == "cpu" and any(has) else None


@functools.cache
def keep_large_blocks_on_the_heap() -> None:
    """Have glibc's malloc reuse freed blocks of up to 256 MiB instead of mapping fresh pages for each.

    By default blocks over 32 MiB (every 160-channel 256 px map of the decoder is 42 MiB) get a new mmap per
    allocation, and touching its pages for the first time costs about 15 % of a CPU decode. Process-wide and
    harmless (memory is reused, not leaked); a no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD: keep up to this much freed memory for reuse
    except (OSError, AttributeError, TypeError):
        pass


class VQVAE(nn.Module):
    """Multi-scale residual VQVAE; defaults are the published `vae_ch160v4096z32` settings."""

    def __init__(
        self,
        vocab_size: int = 4096,
        z_channels: int = 32,
        ch: int = 160,
        ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        share_quant_resi: int = 4,
        patch_nums: Schedule | tuple[int, ...] = PATCH_NUMS_256,
        dropout: float = 0.0,
        num_ema_scales: int | None = None,
    ):
        super().__init__()
        self._arch = dict(
            vocab_size=vocab_size,
            z_channels=z_channels,
            ch=ch,
            ch_mult=tuple(ch_mult),
            num_res_blocks=num_res_blocks,
            share_quant_resi=share_quant_resi,
        )
        self.vocab_size, self.Cvae = vocab_size, z_channels
        self.compute_dtype = torch.float32
        self.downsample = 2 ** (len(ch_mult) - 1)
        self.encoder = Encoder(ch, tuple(ch_mult), num_res_blocks, z_channels, dropout)
        self.decoder = Decoder(ch, tuple(ch_mult), num_res_blocks, z_channels, dropout)
        for part in (self.encoder, self.decoder):  # their maps run channels-last; weights in it too spare a reorder
            part.to(memory_format=torch.channels_last)
        self.quant_conv = nn.Conv2d(z_channels, z_channels, 3, padding=1)
        self.post_quant_conv = nn.Conv2d(z_channels, z_channels, 3, padding=1)
        schedule = as_schedule(patch_nums)
        self.quantize = MultiScaleQuantizer(
            vocab_size, z_channels, schedule, share_quant_resi, num_ema_scales or schedule.num_scales
        )

    @property
    def schedule(self) -> Schedule:
        """The scale schedule, the same object as the paired VAR's."""
        return self.quantize.schedule

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.schedule.patch_nums

    @property
    def config(self) -> dict:
        """Constructor arguments (what `save_checkpoint` records and the loader reads back)."""
        return {**self._arch, "patch_nums": self.patch_nums}

    @property
    def image_size(self) -> int:
        return self.patch_nums[-1] * self.downsample

    def autocast(self, device_type: str, dtype: torch.dtype | None = None) -> contextlib.AbstractContextManager:
        """Encoder/decoder precision: `dtype`, else `compute_dtype` (float32: whatever the caller set); the
        quantizer always works in float32."""
        dtype = dtype or self.compute_dtype
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=dtype)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W) in [-1, 1] -> continuous latent f (B, Cvae, H/16, W/16), float32 (convs channels-last)."""
        with self.autocast(x.device.type):
            h = self.encoder(x.float().contiguous(memory_format=torch.channels_last))
            return self.quant_conv(h).float().contiguous()

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image (B, 3, H, W) in [-1, 1] -> token maps [(B, pn_k^2) int64 for each scale]."""
        return self.quantize.quantize(self.encode_latent(x))[0]

    def decode_fhat(self, f_hat: torch.Tensor, fast: bool = False) -> torch.Tensor:
        """Accumulated latent (B, Cvae, pn, pn) -> image (B, 3, H, W) clamped to [-1, 1], convs channels-last.

        fast: run the decoder in bfloat16 where the hardware does that faster than float32 (CUDA, CPUs with
        AVX512-BF16 or AMX: about 4x on such a CPU), else as usual; pixels move by about 45 dB PSNR."""
        if f_hat.device.type == "cpu":
            keep_large_blocks_on_the_heap()
        dtype = fast_dtype(f_hat.device) if fast else None
        if dtype is not None and f_hat.device.type == "cpu":  # a decoder held in bfloat16: no casts per layer
            h = self.post_quant_conv(f_hat.float().contiguous(memory_format=torch.channels_last))
            return self._low_decoder(dtype)(h.to(dtype)).float().clamp(-1, 1).contiguous()
        with self.autocast(f_hat.device.type, dtype):
            h = self.post_quant_conv(f_hat.float().contiguous(memory_format=torch.channels_last))
            return self.decoder(h).float().clamp(-1, 1).contiguous()

    def _low_decoder(self, dtype: torch.dtype) -> Decoder:
        """A copy of the decoder in `dtype` (half its float32 memory for bfloat16), made on first use and again
        whenever a weight of the decoder changed in place (training). CPU autocast would instead cast every weight
        on every call and run each GroupNorm in float32 between casts of its 42 MiB maps."""
        version = sum(0 if p.is_inference() else p._version for p in self.decoder.parameters())  # inference: none
        cached = self.__dict__.get("_low")  # not a submodule: outside the state dict and `.to()`
        if cached is None or cached[0] != (dtype, version):
            self.__dict__["_low"] = cached = ((dtype, version), copy.deepcopy(self.decoder).to(dtype))
        return cached[1]

    @torch.no_grad()
    def decode(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """Token maps [(B, pn_k^2)] -> image (B, 3, H, W) in [-1, 1]."""
        return self.decode_fhat(self.quantize.tokens_to_fhat(tokens))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: image in [-1, 1] -> (reconstruction, VQ loss, per-code usage counts (V,))."""
        f = self.encode_latent(x)
        f_hat, vq_loss, usage = self.quantize.straight_through(f)
        return self.decoder(self.post_quant_conv(f_hat)), vq_loss, usage
