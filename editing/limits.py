"""Limits on the work one request may ask for (pixels, canvas, candidates), not on bytes uploaded.

Every refusal is one sentence naming the limit and the flag (studio and CLI) that raises it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EditError


@dataclass(frozen=True)
class Limits:
    """picture_pixels: a picture or mask read from a file; canvas_pixels / canvas_side: the picture
    an edit produces (out-painting grows it); candidates; candidate_pixels: candidates x canvas pixels."""

    picture_pixels: int = 50_000_000  # a 48 MP phone photo fits; an 8000x8000 one does not
    canvas_pixels: int = 50_000_000
    canvas_side: int = 16384
    candidates: int = 64
    candidate_pixels: int = 200_000_000

    def check_canvas(self, width: int, height: int, candidates: int) -> None:
        if max(width, height) > self.canvas_side:
            raise EditError(
                f"The result would be {width}x{height} pixels, longer than the {self.canvas_side} px side "
                "allowed (--max-canvas-side); out-paint less."
            )
        if width * height > self.canvas_pixels:
            raise EditError(
                f"The result would be {width}x{height} pixels, more than the {self.canvas_pixels / 1e6:g} "
                "megapixels allowed (--max-canvas-mp); out-paint less or downscale the picture."
            )
        if candidates > self.candidates:
            raise EditError(f"Ask for at most {self.candidates} candidates (--max-candidates).")
        if candidates * width * height > self.candidate_pixels:
            raise EditError(
                f"{candidates} candidates of {width}x{height} pixels are more than the "
                f"{self.candidate_pixels / 1e6:g} megapixels allowed in all (--max-candidate-mp); "
                "ask for fewer candidates or use a smaller picture."
            )
