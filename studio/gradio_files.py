"""The files Gradio writes for the page and the API, through the studio: pictures cached whole, every
copy counted against the results' caps, and a full disk said in one sentence.

Gradio saves each picture a handler returns under a hash of its bytes and, when the same picture is
returned again (the last live preview as the result, the same input shown twice), rewrites that
file in place: a page fetching it at that moment gets a short file (an ASGI "Too little data for
declared Content-Length" traceback and a broken picture in the browser). Here a picture already
cached is only touched (the cache sweep ages files by their change time), and a new one is written
under a temporary name and renamed. The copies Gradio makes of result files (to serve them) go into
the `Results` ledger as the visitor's, the pictures it caches from memory as nobody's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradio import processing_utils
from PIL import Image

from editing.files import written_whole

from .results import Results
from .session import full_disk_said

GRADIO_SAVE_FILE = processing_utils.save_file_to_cache  # Gradio's own, wrapped by `install`


def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's `processing_utils.save_pil_to_cache`, with whole files -> the cached file's path."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if path.exists():
        os.utime(path)
    else:
        with written_whole(path) as file:
            file.write(data)
    return str(path)


def _saying_a_full_disk(save: Callable[..., str]) -> Callable[..., str]:
    def run(*args: Any, **kwargs: Any) -> str:
        with full_disk_said():
            return save(*args, **kwargs)

    return run


def install(results: Results | None = None) -> None:
    """Make Gradio cache the pictures handlers return with `save_pil_to_cache` and count what it caches
    in `results` (every component looks both functions up in `processing_utils` when it saves a file)."""
    ledger = results or Results()
    save_pil, save_file = _saying_a_full_disk(save_pil_to_cache), _saying_a_full_disk(GRADIO_SAVE_FILE)

    def pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        path = save_pil(img, cache_dir, name, format)
        ledger.keep(path)
        return path

    def file_to_cache(file_path: str | Path, cache_dir: str) -> str:
        copy = save_file(file_path, cache_dir)
        ledger.copied(file_path, copy)
        return copy

    processing_utils.save_pil_to_cache = pil_to_cache
    processing_utils.save_file_to_cache = file_to_cache
