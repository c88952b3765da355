"""What the page's script sends about the canvas (studio.canvas_io), read on the server, without a
browser: the mask and fingerprint of a run, a dropped picture, and every way that can go wrong
ending in one sentence. The browser tests (test_app.py) run the script itself."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from editing import EditError
from studio import canvas_io
from studio.history import plain_copy
from studio.pictures import grid_columns, tile


def photo(width: int = 910, height: int = 512, shift: int = 0) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    arr = np.stack([(xx * 255) // width, (yy * 255) // height, ((xx + yy + shift) * 3) % 256], -1)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def mask_payload(picture: Image.Image, mask: Image.Image | None, **extra: object) -> str:
    """What READ_MASK_JS puts in the hidden box for `picture` on the canvas with `mask` painted."""
    print_ = np.round(canvas_io.fingerprint(picture)).astype(int).ravel().tolist()
    data = {"width": picture.width, "height": picture.height, "fingerprint": print_, "layers": 1}
    data["mask"] = data_url(mask.convert("RGBA")) if mask is not None else None
    data.update(extra)
    return canvas_io.PREFIX + json.dumps(data)


def stroke(size: tuple[int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((100, 200, 300, 260), fill=255)
    return mask


def test_a_run_gets_the_mask_at_the_full_resolution_of_the_picture_on_the_canvas():
    original = photo(1820, 1024)
    shown = original.resize((910, 512), Image.Resampling.LANCZOS)
    image, display, mask = canvas_io.read_canvas(mask_payload(shown, stroke(shown.size)), original, shown)
    assert image is original and display is shown
    assert mask.mode == "L" and mask.size == (1820, 1024)
    m = np.asarray(mask) > 0
    assert m[400:520, 200:600].all() and not m[:380].any() and not m[540:].any()


def test_nothing_painted_is_an_empty_mask():
    shown = photo()
    _, _, mask = canvas_io.read_canvas(mask_payload(shown, None), shown, shown)
    assert mask.getbbox() is None


def test_another_picture_on_the_canvas_is_refused_until_the_server_has_it():
    shown = photo()
    dropped = photo(shift=40)  # same size, another picture: its PNG is still on its way
    with pytest.raises(EditError, match="has not reached the server yet"):
        canvas_io.read_canvas(mask_payload(dropped, stroke(dropped.size)), shown, shown)
    with pytest.raises(EditError, match="has not reached the server yet"):  # another size
        canvas_io.read_canvas(mask_payload(photo(640, 480), None), shown, shown)
    with pytest.raises(EditError, match="has not reached the server yet"):  # nothing on the server yet
        canvas_io.read_canvas(mask_payload(shown, None), None, None)


def test_an_empty_canvas_asks_for_a_picture():
    empty = canvas_io.PREFIX + json.dumps({"empty": True})
    for original in (None, photo()):
        with pytest.raises(EditError, match="Upload or paste a picture first"):
            canvas_io.read_canvas(empty, original, original)


BAD_MASK = {"width": 4, "height": 4, "fingerprint": [0] * 768, "mask": "data:,!!"}


@pytest.mark.parametrize(
    "value, words",
    [
        (None, "did not send"),
        (canvas_io.PREFIX, "did not send"),
        (canvas_io.PREFIX + "{not json", "could not be read"),
        (canvas_io.PREFIX + "[1, 2]", "could not be read"),
        (canvas_io.PREFIX + json.dumps({"error": "the canvas's PixiJS application was not found"}), "PixiJS"),
        (canvas_io.PREFIX + json.dumps({"width": 10, "height": 10, "fingerprint": [1, 2]}), "could not be read"),
        (canvas_io.PREFIX + json.dumps(BAD_MASK), "could not be read"),
    ],
)
def test_what_the_page_could_not_send_is_one_sentence(value: object, words: str):
    with pytest.raises(EditError, match=words) as caught:
        canvas_io.parse_mask(value)
    text = str(caught.value)
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text


def test_a_mask_of_another_size_than_the_canvas_is_refused():
    shown = photo()
    value = mask_payload(shown, stroke((300, 300)))
    with pytest.raises(EditError, match="could not be read"):
        canvas_io.parse_mask(value)


def test_the_fingerprint_is_the_mean_colour_of_its_cells():
    picture = Image.new("RGB", (32, 16), (10, 20, 30))
    picture.paste((200, 100, 0), (16, 0, 32, 16))  # the right half
    fp = canvas_io.fingerprint(picture)
    assert fp.shape == (canvas_io.GRID, canvas_io.GRID, 3)
    assert (fp[:, :8] == (10, 20, 30)).all() and (fp[:, 8:] == (200, 100, 0)).all()
    tiny = canvas_io.fingerprint(Image.new("RGB", (3, 5), (1, 2, 3)))  # fewer pixels than cells
    assert (tiny == (1, 2, 3)).all()


def test_a_picture_the_server_put_there_is_not_sent_back():
    assert canvas_io.parse_picture(canvas_io.PREFIX + json.dumps({"same": True})) is None
    assert canvas_io.parse_picture(canvas_io.PREFIX + json.dumps({"empty": True})) is None
    dropped = photo(64, 48)
    png = canvas_io.parse_picture(canvas_io.PREFIX + json.dumps({"picture": data_url(dropped)}))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), np.asarray(dropped))
    with pytest.raises(EditError, match="could not be read"):
        canvas_io.parse_picture(canvas_io.PREFIX + json.dumps({"picture": "data:image/png;base64,@@"}))
    known = json.loads(canvas_io.known_picture(dropped))
    assert (known["width"], known["height"]) == (64, 48) and len(known["fingerprint"]) == 3 * canvas_io.GRID**2


def test_the_canvas_gets_the_picture_without_its_colour_profile():
    picture = photo(64, 48)
    picture.info["icc_profile"] = b"not really a profile"
    plain = plain_copy(picture)
    assert "icc_profile" not in plain.info and "icc_profile" in picture.info
    assert np.array_equal(np.asarray(plain), np.asarray(picture))
    assert plain_copy(plain) is plain


def test_candidates_are_tiled_in_even_rows():
    assert [grid_columns(n) for n in range(1, 9)] == [1, 2, 3, 4, 3, 3, 4, 4]
    small = [Image.new("RGB", (64, 64), "red")] * 8
    sheet = tile(small)  # 4 x 2, each 64 px cell enlarged 4x with the gaps
    assert sheet.size == (4 * 64 * 4 + 3 * 16, 2 * 64 * 4 + 16)
    assert tile([photo(910, 512)]).size == (910, 512)


def test_a_mask_for_the_canvas_is_a_small_black_and_white_png():
    mask = np.zeros((48, 64), bool)
    mask[10:20, 5:30] = True
    url = canvas_io.mask_data_url(mask)
    assert url.startswith("data:image/png;base64,") and len(url) < 2000
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert im.mode == "L" and im.size == (64, 48)
        assert ((np.asarray(im) >= 128) == mask).all()


def test_an_uploaded_mask_is_scaled_when_it_has_the_pictures_shape_and_refused_otherwise(tmp_path, monkeypatch):
    """Upload mask…: same size as it is; twice the size scaled (with a notice); another shape refused
    in one sentence. Returned: the mask at the canvas's size, for the page's script to draw."""
    from types import SimpleNamespace

    import gradio as gr

    from editing import Limits
    from studio.mask_panel import MaskPanel

    notices: list[str] = []
    monkeypatch.setattr(gr, "Info", lambda text, *a, **k: notices.append(text))
    panel = MaskPanel(SimpleNamespace(editor=SimpleNamespace(limits=Limits())))
    original = photo(100, 50)
    shown = original.resize((200, 100))
    box = np.zeros((50, 100), bool)
    box[10:30, 20:60] = True

    def drawn(url: str) -> np.ndarray:
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
            assert im.size == shown.size
            return np.asarray(im.resize(original.size, Image.Resampling.BILINEAR)) >= 128

    Image.fromarray(box.astype(np.uint8) * 255).save(tmp_path / "same.png")
    assert (drawn(panel.uploaded(str(tmp_path / "same.png"), original, shown)) == box).all() and not notices
    Image.fromarray(box.astype(np.uint8) * 255).resize((200, 100), Image.NEAREST).save(tmp_path / "twice.png")
    assert (drawn(panel.uploaded(str(tmp_path / "twice.png"), original, shown)) == box).all()
    assert notices == ["The mask was 200×100 px; it was scaled to the picture's 100×50 px."]
    Image.new("L", (100, 100), 255).save(tmp_path / "square.png")
    with pytest.raises(gr.Error, match="another shape") as caught:
        panel.uploaded(str(tmp_path / "square.png"), original, shown)
    assert "100×100 px" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(gr.Error, match="Open a picture first"):
        panel.uploaded(str(tmp_path / "same.png"), None, None)
