"""The studio on a disk that fills up (its TMPDIR on a real 4 MiB tmpfs, so writes fail with the
kernel's own ENOSPC): an edit whose result has no room, and an upload that has none, are each refused
in one sentence ("The server's disk is full…"), with no traceback and no file left half-written; once
there is room again the same edit is served. gradio_client and raw HTTP against `python app.py`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from small_disk import fill, small_tmpfs
from studio_server import running


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test and unmounted after it."""
    with small_tmpfs(tmp_path / "disk", "4M") as disk:
        yield disk


def test_a_full_disk_is_one_sentence_and_the_studio_serves_again(small_disk, tmp_path):
    from gradio_client import Client, handle_file

    rng = np.random.default_rng(0)
    picture, mask = tmp_path / "noise.png", tmp_path / "mask.png"
    Image.fromarray(rng.integers(0, 256, (200, 200, 3), np.uint8)).save(picture)  # about 120 KB
    Image.fromarray(np.pad(np.full((40, 40), 255, np.uint8), 80)).save(mask)
    env = {**os.environ, "TMPDIR": str(small_disk)}
    with running([], tmp_path, env) as studio:
        ballast = small_disk / "ballast"
        fill(ballast)
        with open(ballast, "r+b") as file:  # room for the uploads, not for the result and its served copy
            file.truncate(ballast.stat().st_size - 160 * 1024)
        client = Client(studio.url, verbose=False)
        with pytest.raises(Exception) as refused:
            client.predict(
                image=handle_file(str(picture)), mask=handle_file(str(mask)), options={"seed": 1}, api_name="/inpaint"
            )
        assert str(refused.value).startswith("The server's disk is full"), str(refused.value)[:500]

        fill(ballast)  # no room at all: an upload is refused too
        sent = httpx.post(studio.url + "gradio_api/upload", files=[("files", ("p.png", picture.read_bytes()))])
        assert sent.status_code == 507 and sent.text.startswith("The server's disk is full"), sent.text[:300]

        assert "Traceback" not in studio.log, studio.log[-3000:]
        written = [p for p in small_disk.rglob("*") if p.is_file() and p != ballast]
        assert not [p for p in written if p.name.endswith(".tmp") or p.name.startswith(".")], written
        assert not [p for p in written if p.name.startswith("tmp")], "an upload's temporary file stayed"

        ballast.unlink()
        sent_again = {"image": handle_file(str(picture)), "mask": handle_file(str(mask)), "options": {"seed": 1}}
        path, params = client.predict(**sent_again, api_name="/inpaint")
        assert params["seed"] == 1 and Image.open(path).size == (200, 200)
