"""Output files: a PNG appears under its name whole or not at all (the studio's Gradio cache too),
and keeps the input's ICC profile and EXIF (orientation applied and reset to 1) beside the edit's
parameters, through the Python API, JSON requests and the CLI."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from editing import EditOptions, Editor, EditRequest, load_image, read_params, save_png
from editing.__main__ import main

ORIENTATION, MAKE, MODEL = ExifTags.Base.Orientation, ExifTags.Base.Make, ExifTags.Base.Model


@pytest.fixture(scope="module")
def editor() -> Editor:
    return Editor.from_pretrained("demo")


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # made once: it holds its date


def _photo(path: Path) -> Path:
    """A 48x32 JPEG stored sideways (EXIF orientation 6: shown rotated 90° clockwise, 32x48) with an
    sRGB profile and a camera's Make and Model; its left column red, so the upright picture's top row is."""
    pixels = np.full((32, 48, 3), 90, np.uint8)
    pixels[:, :6] = (220, 30, 30)
    exif = Image.Exif()
    exif[ORIENTATION], exif[MAKE], exif[MODEL] = 6, "TestCam", "Model 7"
    Image.fromarray(pixels).save(path, quality=95, icc_profile=SRGB, exif=exif.tobytes())
    return path


def _mask(path: Path) -> Path:
    mask = np.zeros((48, 32), np.uint8)  # the upright picture's size
    mask[20:36, 8:24] = 255
    Image.fromarray(mask).save(path)
    return path


def _check_kept(path: Path, params: dict, size: tuple[int, int] = (32, 48)) -> None:
    with Image.open(path) as out:
        assert out.size == size, "the picture is upright"
        assert np.asarray(out.convert("RGB"))[0, 16, 0] > 180, "its red side is on top"
        assert out.info.get("icc_profile") == SRGB
        exif = out.getexif()
        assert exif.get(ORIENTATION) == 1 and exif.get(MAKE) == "TestCam" and exif.get(MODEL) == "Model 7"
    assert read_params(path) == params


def test_api_result_keeps_icc_and_exif(editor, tmp_path):
    photo, mask = _photo(tmp_path / "photo.jpg"), _mask(tmp_path / "photo.mask.png")
    result = editor.inpaint(str(photo), str(mask), EditOptions(seed=3))
    path = save_png(result.images[0], tmp_path / "out.png", result.params)
    _check_kept(path, result.params)
    plain = editor.inpaint(np.asarray(Image.open(photo)), np.asarray(Image.open(mask)).T > 0, EditOptions(seed=3))
    assert not {"icc_profile", "exif"} & set(plain.images[0].info), "an array has neither to keep"


def test_a_request_sent_as_json_keeps_them(editor, tmp_path):
    """In-memory pictures travel as PNG data URLs (Ray jobs, the studio's model workers); a long
    out-paint is drawn in windows."""
    upright = load_image(_photo(tmp_path / "photo.jpg"))
    request = EditRequest("outpaint", upright, right=48, options=EditOptions(seed=2))
    sent = EditRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    result = editor.run([sent])[0]
    _check_kept(save_png(result.images[0], tmp_path / "out.png", result.params), result.params, (80, 48))


def test_cli_output_keeps_icc_and_exif(tmp_path):
    photo, mask = _photo(tmp_path / "photo.jpg"), _mask(tmp_path / "photo.mask.png")
    out = tmp_path / "out"
    assert main([str(photo), "--mask", str(mask), "--out-dir", str(out), "--seed", "5"]) == 0
    params = read_params(out / "photo.inpaint.png")
    assert params["seed"] == 5 and params["name"] == "photo"
    _check_kept(out / "photo.inpaint.png", params)


def test_a_profile_of_other_colours_is_not_put_on_rgb_pixels(editor, tmp_path):
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.new("L", (32, 32), 128).save(tmp_path / "grey.png", icc_profile=lab)
    result = editor.inpaint(str(tmp_path / "grey.png"), np.eye(32, dtype=bool), EditOptions(seed=1))
    assert "icc_profile" not in result.images[0].info


class _Unwritable:
    """An image whose PNG encoding fails after part of the file is out (as a full disk does)."""

    def __init__(self, image: Image.Image) -> None:
        self.image, self.info = image, image.info

    def save(self, file: io.BufferedWriter, **kwargs: object) -> None:
        self.image.save(file, **kwargs)
        file.flush()
        raise OSError(28, "No space left on device")


def test_a_failed_write_leaves_nothing(tmp_path):
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    with pytest.raises(OSError, match="No space"):
        save_png(_Unwritable(picture), tmp_path / "out.png", {"seed": 1})
    assert list(tmp_path.iterdir()) == [], "neither the final name nor a temporary file"
    save_png(picture, tmp_path / "out.png", {"seed": 1})
    with pytest.raises(OSError, match="No space"):
        save_png(_Unwritable(picture), tmp_path / "out.png", {"seed": 2}, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"] and read_params(tmp_path / "out.png") == {"seed": 1}
    with pytest.raises(FileExistsError, match="--overwrite"):
        save_png(picture, tmp_path / "out.png", {"seed": 3})


def test_the_studio_never_rewrites_a_cached_picture_under_a_reader(tmp_path, monkeypatch):
    """Gradio caches each picture a handler returns under a hash of its bytes; the studio's cache
    writes a new one whole and leaves one already there alone, so a page fetching it while the same
    picture is returned again (the last preview as the result) always gets the whole file."""
    from gradio import image_utils, processing_utils

    from studio import gradio_files

    monkeypatch.setattr(processing_utils, "save_pil_to_cache", processing_utils.save_pil_to_cache)  # restored after
    gradio_files.install()
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    path = Path(image_utils.save_image(picture, str(tmp_path), "png"))  # what gr.Image does with a PIL picture
    whole = path.read_bytes()
    stop = threading.Event()

    def show_again() -> None:
        while not stop.is_set():
            assert image_utils.save_image(picture, str(tmp_path), "png") == str(path)

    again = threading.Thread(target=show_again)
    again.start()
    try:
        reads = [path.read_bytes() == whole for _ in range(500)]
    finally:
        stop.set()
        again.join()
    assert all(reads), f"{reads.count(False)} of {len(reads)} reads got a partial file"
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left"
