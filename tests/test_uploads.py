"""What visitors upload: caps in all and per visitor, each refusal one sentence naming its flag;
an upload removed once the edit it was sent to has read it; nothing of the studio's or Gradio's
files left after SIGTERM or Ctrl-C (SIGINT). The studio runs as `python app.py` with TMPDIR set
to a folder of the test's own, so that everything it leaves would be found there."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from studio_server import Studio, running

CAPS = ["--max-upload-mb", "0.3", "--max-uploads-per-visitor-mb", "0.5", "--max-uploads-mb", "0.6"]
KB = 1024


def upload(url: str, size: int, source: str = "127.0.0.1") -> httpx.Response:
    """POST one file of `size` bytes to Gradio's upload route from the client address `source`."""
    body = os.urandom(size)
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60) as client:
        return client.post(url + "gradio_api/upload", files=[("files", (f"blob-{size}.bin", body))])


def left_behind(tmp: Path) -> list[Path]:
    """What is in the studio's TMPDIR, but torch's compile cache (torchinductor_<user>: shared by every
    torch program of the user and meant to outlive them)."""
    return sorted(p for p in tmp.iterdir() if not p.name.startswith("torchinductor_"))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(the studio's TMPDIR, a folder for the test's own files and the studio's console)."""
    (tmp_path / "tmp").mkdir()
    (tmp_path / "own").mkdir()
    return tmp_path / "tmp", tmp_path / "own"


def studio_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp)}


def test_upload_caps_are_one_sentence_and_used_uploads_go(folders: tuple[Path, Path]) -> None:
    from gradio_client import Client, handle_file

    tmp, own = folders
    with running(CAPS, own, studio_env(tmp)) as studio:
        # An edit's uploads are removed once it has read them.
        picture = own / "picture.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(picture)
        mask = own / "mask.png"
        Image.fromarray(np.pad(np.full((16, 16), 255, np.uint8), 24)).save(mask)
        client = Client(studio.url, verbose=False)
        sent = {"image": handle_file(str(picture)), "mask": handle_file(str(mask)), "options": {"seed": 1}}
        path, _ = client.predict(**sent, api_name="/inpaint")
        assert Path(path).exists()
        cache = next(tmp.glob("var-edit-app-*")) / "gradio"
        assert not [p for p in cache.rglob("*.png") if p.name in ("picture.png", "mask.png")], "the uploads stayed"

        too_big = upload(studio.url, 400 * KB)
        assert too_big.status_code == 413
        assert too_big.text == (
            "The file is larger than the 0.3 MB this studio accepts per upload (--max-upload-mb); send a smaller one."
        )
        assert upload(studio.url, 280 * KB).status_code == 200
        mine = upload(studio.url, 280 * KB)
        assert mine.status_code == 413
        assert mine.text == (
            "You already have the 0.5 MB of uploads one visitor may hold (--max-uploads-per-visitor-mb); "
            "run your edits, or wait a few minutes until they are removed."
        )
        assert upload(studio.url, 280 * KB, source="127.0.0.2").status_code == 200  # another visitor
        everyone = upload(studio.url, 280 * KB, source="127.0.0.3")
        assert everyone.status_code == 413
        assert everyone.text == (
            "The studio already holds its 0.6 MB of uploads (--max-uploads-mb); "
            "try again in a few minutes, when older uploads have been removed."
        )
        assert "refused: The studio already holds" in studio.log and "Traceback" not in studio.log

        assert (cache / "..").resolve() in left_behind(tmp) and any(cache.rglob("*"))
        studio.stop()  # SIGTERM
        assert studio.proc.returncode == 0
    assert left_behind(tmp) == []


def test_nothing_is_left_after_ctrl_c(folders: tuple[Path, Path]) -> None:
    tmp, own = folders
    studio = Studio([], own, studio_env(tmp))
    try:
        assert upload(studio.url, 100 * KB).status_code == 200
        assert any(next(tmp.glob("var-edit-app-*")).rglob("gradio/*"))
    finally:
        studio.proc.send_signal(signal.SIGINT)
        studio.proc.wait(timeout=60)
    assert left_behind(tmp) == []


@pytest.mark.browser
def test_the_page_names_the_flag_for_a_file_too_big(folders: tuple[Path, Path], browser) -> None:
    """Gradio's page refuses a file over --max-upload-mb before sending it; it says so as the studio does."""
    from chromium import studio_page

    tmp, own = folders
    photo = own / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 200, 3), np.uint8)).save(photo)  # ~120 KB
    with running(["--max-upload-mb", "0.05"], own, studio_env(tmp)) as studio, studio_page(browser, studio.url) as pg:
        pg.set_input_files("input[type=file][data-testid$='-upload-button']", str(photo))  # Open image file…
        toast = pg.locator("[data-testid='toast-body']").filter(has_text="--max-upload-mb").first
        toast.wait_for()  # Gradio's own words, then the studio's
        expected = "The file is larger than the 0.05 MB this studio accepts per upload (--max-upload-mb)"
        assert expected in toast.inner_text() and "File(s) exceed" not in toast.inner_text()
