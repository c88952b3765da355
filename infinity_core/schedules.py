"""Dynamic-resolution scale schedules: aspect templates, area classes and RoPE positions.

Each aspect template (h/w) has one list of token grids (h, w); the area classes `0.06M`, `0.25M`,
`0.60M` and `1M` take its first 7, 10, 12 and 13 grids. A picture is made at 16 pixels per token of
the last grid. RoPE positions are measured on the last grid of the template's `1M` class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

VAE_STRIDE = 16
AREA_CLASSES = {"0.06M": 7, "0.25M": 10, "0.60M": 12, "1M": 13}

# h/w -> the grids of the largest class; the inverse templates are these transposed.
# fmt: off
_GRIDS = {
    1.000: [(1, 1), (2, 2), (4, 4), (6, 6), (8, 8), (12, 12), (16, 16), (20, 20), (24, 24), (32, 32), (40, 40), (48, 48), (64, 64)],  # noqa: E501
    1.250: [(1, 1), (2, 2), (3, 3), (5, 4), (10, 8), (15, 12), (20, 16), (25, 20), (30, 24), (35, 28), (45, 36), (55, 44), (70, 56)],  # noqa: E501
    1.333: [(1, 1), (2, 2), (4, 3), (8, 6), (12, 9), (16, 12), (20, 15), (24, 18), (28, 21), (36, 27), (48, 36), (60, 45), (72, 54)],  # noqa: E501
    1.500: [(1, 1), (2, 2), (3, 2), (6, 4), (9, 6), (15, 10), (21, 14), (27, 18), (33, 22), (39, 26), (48, 32), (63, 42), (78, 52)],  # noqa: E501
    1.750: [(1, 1), (2, 2), (3, 3), (7, 4), (11, 6), (14, 8), (21, 12), (28, 16), (35, 20), (42, 24), (56, 32), (70, 40), (84, 48)],  # noqa: E501
    2.000: [(1, 1), (2, 2), (4, 2), (6, 3), (10, 5), (16, 8), (22, 11), (30, 15), (38, 19), (46, 23), (60, 30), (74, 37), (90, 45)],  # noqa: E501
    2.500: [(1, 1), (2, 2), (5, 2), (10, 4), (15, 6), (20, 8), (25, 10), (30, 12), (40, 16), (50, 20), (65, 26), (80, 32), (100, 40)],  # noqa: E501
    3.000: [(1, 1), (2, 2), (6, 2), (9, 3), (15, 5), (21, 7), (27, 9), (36, 12), (45, 15), (54, 18), (72, 24), (90, 30), (111, 37)],  # noqa: E501
}
# fmt: on


def _templates() -> dict[float, tuple[tuple[int, int], ...]]:
    out = {}
    for ratio, grids in _GRIDS.items():
        out[ratio] = tuple(grids)
        if ratio != 1.0:
            out[int(1 / ratio * 1000) / 1000] = tuple((w, h) for h, w in grids)  # upstream truncates to 3 digits
    return out


TEMPLATES: dict[float, tuple[tuple[int, int], ...]] = _templates()


@dataclass(frozen=True)
class Schedule:
    """The token grids of one (aspect template, area class); `grids[k]` = (h, w) of scale k."""

    template: float
    area: str
    grids: tuple[tuple[int, int], ...]

    @property
    def last(self) -> tuple[int, int]:
        return self.grids[-1]

    @property
    def pixels(self) -> tuple[int, int]:
        """(height, width) of the picture in pixels."""
        return self.last[0] * VAE_STRIDE, self.last[1] * VAE_STRIDE

    @property
    def tokens(self) -> int:
        return sum(h * w for h, w in self.grids)

    @property
    def rope_grid(self) -> tuple[int, int]:
        """The grid RoPE positions are measured on: the last grid of the template's 1M class."""
        return TEMPLATES[self.template][AREA_CLASSES["1M"] - 1]

    def offsets(self) -> list[int]:
        """Token offset of each scale in the whole sequence (scales before it)."""
        out, total = [], 0
        for h, w in self.grids:
            out.append(total)
            total += h * w
        return out


# The templates as people name aspects, width:height: square, landscape, then portrait (1:1 is h/w 1.0).
ASPECTS = ("1:1", "5:4", "4:3", "3:2", "7:4", "2:1", "5:2", "3:1", "4:5", "3:4", "2:3", "4:7", "1:2", "2:5", "1:3")


def aspect_template(aspect: str) -> float:
    """'W:H', one of ASPECTS -> its template (h/w)."""
    w, h = aspect.split(":")
    return nearest_template(int(h) / int(w))


def nearest_template(h_div_w: float) -> float:
    """The aspect template (h/w) nearest to `h_div_w` (> 0)."""
    return min(TEMPLATES, key=lambda t: (abs(t - h_div_w), t))


def schedule_for(h_div_w: float = 1.0, area: str = "0.06M") -> Schedule:
    """The schedule upstream uses for a picture of aspect h/w at an area class (`0.06M` ... `1M`)."""
    if area not in AREA_CLASSES:
        raise ValueError(f"Unknown area class {area[:20]!r}: use one of {', '.join(AREA_CLASSES)}.")
    template = nearest_template(h_div_w)
    return Schedule(template, area, TEMPLATES[template][: AREA_CLASSES[area]])


def schedule_for_pixels(height: int, width: int) -> Schedule | None:
    """The schedule whose picture is exactly height x width pixels, or None."""
    for template, grids in TEMPLATES.items():
        for area, n in AREA_CLASSES.items():
            if (grids[n - 1][0] * VAE_STRIDE, grids[n - 1][1] * VAE_STRIDE) == (height, width):
                return Schedule(template, area, grids[:n])
    return None


def rope_positions(schedule: Schedule) -> torch.Tensor:
    """(tokens, 2) int64 (row, column) RoPE position of every token, scale by scale, row-major.

    A token (i, j) of a grid (h, w) sits at (round(i * H / h), round(j * W / w)) of the 1M grid (H, W),
    computed in float32 and rounded half to even, as upstream does.
    """
    H, W = schedule.rope_grid
    parts = []
    for h, w in schedule.grids:
        rows = (torch.arange(h) * (H / h)).round().long()
        cols = (torch.arange(w) * (W / w)).round().long()
        parts.append(torch.stack([rows[:, None].expand(h, w), cols[None, :].expand(h, w)], dim=-1).reshape(-1, 2))
    return torch.cat(parts)
