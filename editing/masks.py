"""Masks: where an edit regenerates, from the pixels it was painted in to the token maps of every scale.

A `Mask` is bool (H, W), True = regenerate. It is thresholded once, where it enters (`canvas.load_mask` for files,
arrays and pictures from the API and the CLI; `Mask.scaled` for the studio's canvas strokes), and owns what an edit
does with it: the crop to the edit's region, the resize to the model's resolution, the per-scale regenerate maps and
the finest scale's cells. "regenerate" is its one name from the canvas to the sampler.

For each scale k, of token grid (h_k, w_k) (a square grid may be given as its side pn_k), the mask becomes a bool
map (h_k * w_k,) row-major, True = the token is sampled, False = the
picture's token is kept. Policies (the mask is first dilated by `dilation` tokens of the finest grid):
- "touch" (default): on the finest scale every token whose cell contains a masked pixel (>= 0.5 of the mask
  resized to the model's resolution) is regenerated; on the coarser scales a token is regenerated when the mask
  covers more than half of its cell. Regenerating every touched coarse cell would redraw the whole 1x1 .. 3x3 maps
  for any small mask, and the finer scales cannot repair the kept area after that (bench/edit_quality.py);
- "strength": like "touch" from scale `strength` on; the coarser scales keep the image's tokens
  everywhere, so layout and colour stay while texture is redrawn;
- "compat" (not an option: the parity test and bench/edit_quality.py): the original authors' rule, the keep-mask
  on the finest grid, bilinearly resized to each scale and thresholded at > 0.5; scales with pn^2 <= 3 kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .canvas import Region, crop

POLICIES = ("touch", "strength")  # the option table's choices
ORIGINAL = "compat"  # the original authors' rule, which `scale_masks` also knows

Grid = int | tuple[int, int]  # a token grid (h, w), or the side of a square one


def grid_hw(grid: Grid) -> tuple[int, int]:
    """(h, w) of a grid given as (h, w) or as a square's side."""
    return (grid, grid) if isinstance(grid, int) else (int(grid[0]), int(grid[1]))


@dataclass(frozen=True)
class Mask:
    """Where to regenerate: `regenerate` bool (H, W), True = regenerate."""

    regenerate: np.ndarray

    def __post_init__(self) -> None:
        if self.regenerate.dtype != bool or self.regenerate.ndim != 2:
            raise TypeError("A Mask is a bool (H, W) array: threshold it where it enters (canvas.load_mask).")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.regenerate.shape[1], self.regenerate.shape[0]

    @property
    def coverage(self) -> float:
        """The share of pixels regenerated, 0 to 1."""
        return float(self.regenerate.mean())

    def scaled(self, size: tuple[int, int]) -> Mask:
        """The mask at another size (width, height): bilinear, half or more = regenerate (canvas strokes painted on
        a display copy, read at the full-resolution picture's size)."""
        if self.size == tuple(size):
            return self
        resized = self.image().resize(size, Image.Resampling.BILINEAR)
        return Mask(np.asarray(resized) >= 128)

    def crop(self, region: Region) -> Mask:
        """The mask over the square region; beyond the picture's border everything is regenerated."""
        W, H = self.size
        inside = crop(self.regenerate, region)
        return Mask(inside if region.within(W, H) else inside | (region.outside(W, H) > 0))

    def resized(self, size: Grid) -> np.ndarray:
        """The mask at `size` (H, W) pixels (or a square's side) as float32 in [0, 1]: the share of each pixel
        regenerated (area average when shrinking, bilinear when enlarging)."""
        H, W = grid_hw(size)
        values = self.regenerate.astype(np.float32)
        if values.shape == (H, W):
            return values
        interpolation = cv2.INTER_AREA if values.shape[0] > H else cv2.INTER_LINEAR
        return cv2.resize(values, (W, H), interpolation=interpolation)

    def scales(
        self, size: Grid, grids: tuple[Grid, ...], policy: str = "touch", dilation: int = 0, strength: int = 0
    ) -> list[torch.Tensor]:
        """The per-scale regenerate maps [(h_k * w_k,) bool] of the mask at the model's picture size `size`
        ((H, W) px, or a square's side), for token grids `grids` ((h, w) each, or a square's side)."""
        return scale_masks(torch.from_numpy(self.resized(size)), grids, policy, dilation, strength)

    def image(self) -> Image.Image:
        """'L', 255 = regenerate."""
        return Image.fromarray(np.multiply(self.regenerate, 255, dtype=np.uint8), "L")


def finest_cells(regenerate: list[torch.Tensor], grid: Grid | None = None) -> np.ndarray:
    """The finest scale's regenerated cells of per-scale maps [(h_k * w_k,)] on the finest grid (h, w) (None: a
    square one) -> bool (h, w)."""
    if grid is None:
        grid = int(round(regenerate[-1].numel() ** 0.5))
    return regenerate[-1].view(*grid_hw(grid)).cpu().numpy().astype(bool)


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of a (H, W) map by a square of side 2 * radius + 1."""
    if radius <= 0:
        return mask
    return F.max_pool2d(mask[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0]


def scale_masks(
    regenerate: torch.Tensor,
    patch_nums: tuple[Grid, ...],
    policy: str = "touch",
    dilation: int = 0,
    strength: int = 0,
) -> list[torch.Tensor]:
    """Pixel mask (H, W) in [0, 1] (1 = regenerate) -> per-scale bool maps [(h_k * w_k,)], True = regenerate, for
    token grids `patch_nums` ((h, w) each, or a square's side)."""
    if policy not in (*POLICIES, ORIGINAL):
        raise ValueError(f"Unknown mask policy {policy!r}; use one of {', '.join(POLICIES)}.")
    grids = [grid_hw(g) for g in patch_nums]
    m = regenerate.float()[None, None]
    if policy == ORIGINAL:
        return _original_masks(m, grids)
    Ph, Pw = grids[-1]
    binary = (m[0, 0] >= 0.5).float()
    pixels_per_token = max(binary.shape[0] / Ph, binary.shape[1] / Pw)
    binary = dilate(binary, round(dilation * pixels_per_token))[None, None]
    first = strength if policy == "strength" else 0
    out = []
    for k, hw in enumerate(grids):
        if k < first:
            regen = torch.zeros(hw, dtype=torch.bool)
        elif k == len(grids) - 1:
            regen = F.adaptive_max_pool2d(binary, hw)[0, 0] > 0
        else:
            regen = F.adaptive_avg_pool2d(binary, hw)[0, 0] > 0.5
        out.append(regen.flatten())
    return out


def _original_masks(m: torch.Tensor, grids: list[tuple[int, int]]) -> list[torch.Tensor]:
    """The original authors' rule on a mask (1, 1, H, W): the finest grid's keep-mask resized to each scale."""
    finest = grids[-1]
    keep = 1 - (F.adaptive_avg_pool2d(m, finest) if tuple(m.shape[-2:]) != finest else m)
    keep = (keep > 0.5).float()
    out = []
    for h, w in grids:
        if h * w <= 3:
            out.append(torch.zeros(h * w, dtype=torch.bool))
        else:
            kept = F.interpolate(keep, size=(h, w), mode="bilinear", align_corners=False) > 0.5
            out.append(~kept.flatten())
    return out
