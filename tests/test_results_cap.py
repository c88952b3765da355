"""The result files a studio keeps are capped by configuration, not by visitors: `--max-results-mb`
for its own copies and the copies Gradio serves together, `--max-results-per-visitor-mb` for one
visitor's, the oldest removed first. Real in-paints through gradio_client on `python app.py`, with
caps small enough that a few noise pictures of 300x300 (about 270 KB a PNG) cross them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_server import running

MB = 1024 * 1024
TOTAL, VISITOR = 1.5, 0.8  # MB


def _kept(tmp: Path) -> int:
    """Bytes of the result files (PNGs) in the studio's folder, its and Gradio's copies."""
    return sum(p.stat().st_size for p in tmp.glob("var-edit-app-*/**/var-edit-seed*.png"))


def _copies(tmp: Path, seed: int) -> list[Path]:
    """The studio's copies of the result of `seed` (its own, Gradio's)."""
    return list(tmp.glob(f"var-edit-app-*/**/var-edit-seed{seed}.png"))


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    picture, mask = tmp_path / "noise.png", tmp_path / "mask.png"
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), np.uint8)).save(picture)
    Image.fromarray(np.pad(np.full((60, 60), 255, np.uint8), 120)).save(mask)
    return picture, mask


def test_results_are_capped_in_all_and_per_visitor(tmp_path, pictures):
    from gradio_client import Client, handle_file

    (tmp_path / "tmp").mkdir()
    caps = ["--max-results-mb", str(TOTAL), "--max-results-per-visitor-mb", str(VISITOR)]
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    with running(caps, tmp_path, env) as studio:
        assert f"results at most {TOTAL:g} MB ({VISITOR:g} MB a visitor)" in studio.log
        picture, mask = (handle_file(str(p)) for p in pictures)
        other = Client(studio.url, verbose=False)  # a visitor with one result
        other.predict(image=picture, mask=mask, options={"seed": 0}, api_name="/inpaint")
        busy = Client(studio.url, verbose=False)  # a visitor with many
        sizes = []
        for seed in range(1, 6):
            path, params = busy.predict(image=picture, mask=mask, options={"seed": seed}, api_name="/inpaint")
            assert params["seed"] == seed and Image.open(path).size == (300, 300)  # the newest is served
            sizes.append(_kept(tmp_path / "tmp"))
        one = Path(path).stat().st_size
        assert one > 200 * 1024, "each result is large enough to cross the caps"
        assert max(sizes) <= TOTAL * MB, f"{max(sizes)} bytes kept, over the {TOTAL} MB cap"
        # The busy visitor's results went, oldest first; the other visitor's one result stayed (both copies).
        assert len(_copies(tmp_path / "tmp", 0)) == 2, "another visitor's result was removed for the busy one"
        assert _copies(tmp_path / "tmp", 1) == [] and len(_copies(tmp_path / "tmp", 5)) == 2
        assert sizes[-1] - 2 * one <= VISITOR * MB, sizes
