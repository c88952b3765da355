"""Pixel masks onto every token scale.

A mask is a float tensor (H, W) in [0, 1], 1 = regenerate. For each scale k it becomes a bool
map (pn_k^2,) row-major, True = the token is sampled, False = the image's token is kept.

Policies (the mask is first dilated by `dilation` tokens of the finest grid):
- "touch" (default): on the finest scale every token whose cell contains a masked pixel (>= 0.5)
  is regenerated; on the coarser scales a token is regenerated when the mask covers more than
  half of its cell. Regenerating every touched coarse cell would redraw the whole 1x1 .. 3x3 maps
  for any small mask, and the finer scales cannot repair the kept area after that
  (bench/edit_quality.py: kept-area PSNR 15-20 dB instead of 24-27);
- "touch-all": every touched cell on every scale (the literal rule, for comparison);
- "compat": the original authors' rule: the keep-mask on the finest grid, bilinearly resized to
  each scale and thresholded at > 0.5; scales with pn^2 <= 3 are kept whole;
- "strength": like "touch" from scale `strength` on; the coarser scales keep the image's tokens
  everywhere, so layout and colour stay while texture is redrawn.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("touch", "compat", "strength", "touch-all")


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of a (H, W) map by a square of side 2 * radius + 1."""
    if radius <= 0:
        return mask
    return F.max_pool2d(mask[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0]


def scale_masks(
    regenerate: torch.Tensor,
    patch_nums: tuple[int, ...],
    policy: str = "touch",
    dilation: int = 0,
    strength: int = 0,
) -> list[torch.Tensor]:
    """Pixel mask (H, W) in [0, 1] (1 = regenerate) -> per-scale bool maps [(pn_k^2,)], True = regenerate."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown mask policy {policy!r}; use one of {', '.join(POLICIES)}.")
    P = patch_nums[-1]
    m = regenerate.float()[None, None]
    if policy == "compat":
        keep = 1 - (F.adaptive_avg_pool2d(m, P) if m.shape[-1] != P or m.shape[-2] != P else m)
        keep = (keep > 0.5).float()
        out = []
        for pn in patch_nums:
            if pn * pn <= 3:
                out.append(torch.zeros(pn * pn, dtype=torch.bool))
            else:
                kept = F.interpolate(keep, size=(pn, pn), mode="bilinear", align_corners=False) > 0.5
                out.append(~kept.flatten())
        return out
    binary = (m[0, 0] >= 0.5).float()
    pixels_per_token = max(binary.shape) / P
    binary = dilate(binary, round(dilation * pixels_per_token))[None, None]
    first = strength if policy == "strength" else 0
    out = []
    for k, pn in enumerate(patch_nums):
        if k < first:
            regen = torch.zeros(pn, pn, dtype=torch.bool)
        elif policy == "touch-all" or k == len(patch_nums) - 1:
            regen = F.adaptive_max_pool2d(binary, pn)[0, 0] > 0
        else:
            regen = F.adaptive_avg_pool2d(binary, pn)[0, 0] > 0.5
        out.append(regen.flatten())
    return out


def regenerated_fraction(masks: list[torch.Tensor]) -> list[float]:
    """Share of tokens sampled at each scale (for display and tests)."""
    return [m.float().mean().item() for m in masks]
