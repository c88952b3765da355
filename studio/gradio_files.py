"""Pictures the page is shown, cached whole: Gradio's cache never rewrites a file under a reader.

Gradio saves each picture a handler returns under a hash of its bytes and, when the same picture is
returned again (the last live preview as the result, the same input shown twice), rewrites that
file in place: a page fetching it at that moment gets a short file (an ASGI "Too little data for
declared Content-Length" traceback and a broken picture in the browser). Here a picture already
cached is only touched (the cache sweep ages files by their change time), and a new one is written
under a temporary name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path

from gradio import processing_utils
from PIL import Image

from editing.files import written_whole


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


def install() -> None:
    """Make Gradio cache the pictures handlers return with `save_pil_to_cache` (every component
    looks it up in `processing_utils` when it saves one)."""
    processing_utils.save_pil_to_cache = save_pil_to_cache
