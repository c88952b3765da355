"""The scale schedule: the side of every token map, coarse to fine, shared by a VQVAE and its VAR.

A model pair holds one `Schedule` object: the quantizer splits latents with it and the
transformer predicts along it, so the two can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Schedule:
    """patch_nums: token-map sides from 1x1 up to the latent's side, e.g. (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)."""

    patch_nums: tuple[int, ...]

    def __post_init__(self) -> None:
        pns = tuple(int(p) for p in self.patch_nums)
        if len(pns) < 2 or any(p < 1 for p in pns) or any(b <= a for a, b in zip(pns, pns[1:], strict=False)):
            raise ValueError(f"A scale schedule is 2 or more growing token-map sides, not {self.patch_nums!r}.")
        object.__setattr__(self, "patch_nums", pns)

    @property
    def num_scales(self) -> int:
        return len(self.patch_nums)

    @property
    def length(self) -> int:
        """Tokens over all scales, L = sum(pn_k^2)."""
        return sum(p * p for p in self.patch_nums)

    @cached_property
    def begin_ends(self) -> tuple[tuple[int, int], ...]:
        """(start, end) of every scale's positions in the flattened sequence of L tokens."""
        out, start = [], 0
        for pn in self.patch_nums:
            out.append((start, start + pn * pn))
            start += pn * pn
        return tuple(out)

    def __str__(self) -> str:
        return ",".join(map(str, self.patch_nums))


def as_schedule(value: Schedule | tuple[int, ...] | list[int]) -> Schedule:
    """A Schedule as it is, or one made from a sequence of sides."""
    return value if isinstance(value, Schedule) else Schedule(tuple(value))
