"""Pixel-side work around the model: reading photos, the edit region, paste-back, out-paint canvases.

Images are PIL RGB; masks are bool numpy arrays (H, W), True = regenerate (`masks.Mask` carries them).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import EditError, quoted
from .limits import Limits

BAND_PIXELS = 1 << 18  # pixels of a full-size picture blended at once (paste-back): a few MB of floats
MAX_PIXELS = Limits().picture_pixels  # larger files are refused before decoding (decompression-bomb guard)
NOT_AN_IMAGE = "The {what} file is not an image this app can read; use a PNG, JPEG, WebP or similar."
ImageSource = str | Path | IO[bytes] | bytes | Image.Image | np.ndarray


def open_guarded(
    source: ImageSource, what: str = "image", max_pixels: int = MAX_PIXELS, decode: bool = True
) -> Image.Image:
    """Open any picture PIL reads (path, file, bytes, array or image), refusing decompression bombs
    before decoding them. decode=False: read only the header (size, mode, EXIF), so that sizes can be
    checked before the pixels cost memory; `load_image` / `load_mask` decode it later."""
    if isinstance(source, Image.Image):
        return _decoded(source, what) if decode else source
    if isinstance(source, np.ndarray):
        return Image.fromarray(source)
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if isinstance(source, str | Path) and not Path(source).exists():
        raise EditError(f"The {what} file {quoted(str(source))} does not exist; check the path.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _too_large(what) from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise _unreadable(what) from e
    if image.width * image.height > max_pixels:
        raise EditError(
            f"The {what} is {image.width}x{image.height} pixels, more than the "
            f"{max_pixels / 1_000_000:g} megapixels allowed (--max-picture-mp); downscale it first."
        )
    return _decoded(image, what) if decode else image


def _decoded(image: Image.Image, what: str) -> Image.Image:
    """The image with its pixels read (nothing to do for one made in memory)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _too_large(what) from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise _unreadable(what) from e
    return image


def _too_large(what: str) -> EditError:
    return EditError(f"The {what} is too large to open safely (decompression bomb guard); downscale it first.")


def _unreadable(what: str) -> EditError:
    return EditError(NOT_AN_IMAGE.format(what=what))


def upright(image: Image.Image) -> Image.Image:
    """The image with its EXIF orientation applied; itself (no copy) where it is already upright."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(image)
    return image


def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Any image PIL reads -> RGB, EXIF orientation applied; transparency composited on white. Its `info`
    holds only what the results keep of it (`kept_info`)."""
    opened = open_guarded(source, "image", max_pixels)
    image = to_rgb(upright(opened))
    image.info = kept_info(opened)
    return image


def kept_info(image: Image.Image) -> dict[str, bytes]:
    """What a result keeps of its input, as PIL's `info`: the ICC profile (an RGB one: the pixels are
    RGB now) and the EXIF with its orientation reset to 1 (the pixels are upright now) and no thumbnail."""
    kept = {}
    icc = image.info.get("icc_profile")
    if isinstance(icc, bytes) and icc[16:20] == b"RGB ":  # the profile's colour space, in its header
        kept["icc_profile"] = icc
    exif = image.getexif()
    if exif:
        if ExifTags.Base.Orientation in exif:
            exif[ExifTags.Base.Orientation] = 1
        kept["exif"] = exif.tobytes()
    return kept


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, I;16, I, F, CMYK, ...) -> RGB. Wide modes are scaled to 8 bits and
    transparency composited on white a band of rows at a time: no full-size temporaries beyond the result."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = _to_8bit(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return _on_white(image)
    return image if image.mode == "RGB" else image.convert("RGB")  # no copy of a big RGB picture


def _to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit, integer or float grey picture as 'L': its range (16 bits, or 8 where its values fit) to 0-255."""
    a = np.asarray(image)  # the picture's own dtype: 2 or 4 bytes a pixel
    top = 65535.0 if image.mode.startswith("I;16") or a.max() > 255 else 255.0
    out = np.empty(a.shape, np.uint8)
    rows = _band_rows(a.shape[1])
    for y in range(0, a.shape[0], rows):
        out[y : y + rows] = np.clip(a[y : y + rows].astype(np.float64) / top * 255 + 0.5, 0, 255)
    return Image.fromarray(out, "L")


def _on_white(image: Image.Image) -> Image.Image:
    """A picture with transparency composited on white, as RGB, a band of rows at a time."""
    W, H = image.size
    out = Image.new("RGB", (W, H))
    rows = _band_rows(W)
    for y in range(0, H, rows):
        band = image.crop((0, y, W, min(y + rows, H))).convert("RGBA")
        white = Image.new("RGBA", band.size, (255, 255, 255, 255))
        out.paste(Image.alpha_composite(white, band).convert("RGB"), (0, y))
    return out


def open_mask(source: ImageSource, size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> ImageSource:
    """The mask source with its size checked against the picture's `size` from its header alone (an image
    file is opened, not decoded; arrays and PIL images are passed on): give the result to `load_mask`."""
    if isinstance(source, np.ndarray):
        return source
    image = open_guarded(source, "mask", max_pixels, decode=False)
    _check_header_size(image, size)
    return image


def _check_header_size(mask: Image.Image, size: tuple[int, int]) -> None:
    """Refuse a mask whose stored size fits the picture's neither way round. Only this, from the headers: an EXIF
    orientation (a quarter turn swaps the sides) may be known only once the file is read (PNG)."""
    if mask.size not in (size, size[::-1]):
        _check_mask_size(mask.size, size)


def load_mask(source: ImageSource, size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A mask as people save it -> bool (H, W), True = regenerate: the one place a mask is thresholded.

    The rule: where the mask has transparency, opaque (alpha at least half) = regenerate; otherwise
    any painted colour = regenerate (a pixel whose brightest channel is at least half of the
    range), black = keep. Grey, 16-bit and float masks are thresholded at half of their range
    (0-1 floats at 0.5). bool arrays are taken as they are. A mask that fits the picture neither way round is
    refused before its pixels are read.
    """
    if isinstance(source, np.ndarray):
        mask = source if source.dtype == bool else _threshold(source, _full_range(source))
    else:
        opened = open_guarded(source, "mask", max_pixels, decode=False)
        _check_header_size(opened, size)
        mask = _image_mask(upright(_decoded(opened, "mask")))
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    if mask.ndim != 2:
        raise EditError(f"The mask is an array of {mask.ndim} dimensions; give one of height x width (x channels).")
    _check_mask_size((mask.shape[1], mask.shape[0]), size)
    return mask.astype(bool, copy=False)


def _check_mask_size(mask_size: tuple[int, int], size: tuple[int, int]) -> None:
    if mask_size != size:
        raise EditError(
            f"The mask is {mask_size[0]}x{mask_size[1]} but the image is {size[0]}x{size[1]}; "
            "paint the mask on this image or resize it to match."
        )


def _full_range(array: np.ndarray) -> float:
    if array.dtype == np.uint8:
        return 255.0
    if array.dtype == np.uint16:
        return 65535.0
    return 1.0 if float(np.nanmax(array, initial=0)) <= 1 else 255.0


def _threshold(array: np.ndarray, full: float) -> np.ndarray:
    """At least half of `full`; NaN is not (the comparison runs in the array's own dtype: no float64 copy)."""
    return array >= full / 2


def _image_mask(image: Image.Image) -> np.ndarray:
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
        if alpha.min() < alpha.max() or alpha.max() == 0:
            return alpha >= 128
        image = image.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L"):
        return _threshold(np.asarray(image), 65535.0)
    if image.mode in ("I", "F"):
        array = np.asarray(image)
        full = 1.0 if image.mode == "F" and float(np.nanmax(array, initial=0)) <= 1 else _int_range(array)
        return _threshold(array, full)
    if image.mode in ("1", "L"):
        return np.asarray(image.convert("L")) >= 128
    return np.asarray(image.convert("RGB")).max(axis=2) >= 128


def _int_range(array: np.ndarray) -> float:
    top = float(np.nanmax(array, initial=0))
    return 255.0 if top <= 255 else 65535.0 if top <= 65535 else top


@dataclass(frozen=True)
class Region:
    """A window in image pixels: top-left (x0, y0), `side` pixels wide and `height` tall (None: a square of
    `side`); it may reach past the image's border."""

    x0: int
    y0: int
    side: int
    height: int | None = None

    @property
    def rows(self) -> int:
        """Its height in pixels."""
        return self.side if self.height is None else self.height

    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x0 + self.side, self.y0 + self.rows

    def overlap(self, width: int, height: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """(rows, cols) of the part inside a width x height image: in image and in region coordinates."""
        x0, y0 = max(self.x0, 0), max(self.y0, 0)
        x1, y1 = min(self.x0 + self.side, width), min(self.y0 + self.rows, height)
        inside = (slice(y0, y1), slice(x0, x1))
        local = (slice(y0 - self.y0, y1 - self.y0), slice(x0 - self.x0, x1 - self.x0))
        return inside, local

    def within(self, width: int, height: int) -> bool:
        """Whether the region lies wholly inside a width x height image."""
        return self.x0 >= 0 and self.y0 >= 0 and self.x0 + self.side <= width and self.y0 + self.rows <= height

    def outside(self, width: int, height: int) -> np.ndarray:
        """float32 (rows, side): 1 where the region reaches past the image, else 0."""
        out = np.ones((self.rows, self.side), np.float32)
        out[self.overlap(width, height)[1]] = 0
        return out


def fitted_region(width: int, height: int, size: tuple[int, int]) -> Region:
    """The smallest window of the aspect of `size` ((H, W) px) that holds a whole width x height canvas,
    centred on it (it reaches past the canvas on two sides unless the aspects agree)."""
    H, W = size
    if height * W >= width * H:  # the canvas is taller than the window's aspect: as tall as the canvas
        side = max(width, round(height * W / H))
        return Region((width - side) // 2, 0, side, height)
    rows = max(height, round(width * H / W))
    return Region(0, (height - rows) // 2, width, rows)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the bounding box of a bool (H, W) mask's True pixels; None for an empty mask.
    No index arrays: a 49 MP mask's np.nonzero would take 800 MB."""
    H, W = mask.shape
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    if not rows.any():
        return None
    return int(cols.argmax()), int(rows.argmax()), W - int(cols[::-1].argmax()), H - int(rows[::-1].argmax())


def _band_rows(width: int, at_least: int = 1) -> int:
    return max(BAND_PIXELS // max(width, 1), at_least)


def edit_region(mask: np.ndarray, context: float = 0.5, min_side: int = 0) -> Region:
    """The square around the mask's bounding box grown by `context` of its size on each side,
    kept inside the image where it fits."""
    H, W = mask.shape
    box = mask_box(mask)
    assert box is not None, "the plan refuses empty masks first"
    x0, y0, x1, y1 = box
    side = int(round(max(x1 - x0, y1 - y0) * (1 + 2 * context)))
    side = min(max(side, min_side), max(H, W))
    return Region(_place((x0 + x1) / 2, side, W), _place((y0 + y1) / 2, side, H), side)


def _place(centre: float, length: int, limit: int) -> int:
    """Where a window `length` long centred on `centre` starts, moved inside [0, limit) where it fits, else centred
    on it."""
    start = int(round(centre - length / 2))
    return min(max(start, 0), limit - length) if length <= limit else (limit - length) // 2


def context_box(mask: np.ndarray, context: float = 0.5) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the bounding box of a bool (H, W) mask grown by `context` of its width and height on each
    side, clipped to the picture; None for an empty mask."""
    H, W = mask.shape
    box = mask_box(mask)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * context, (y1 - y0) * context
    grown = round(x0 - dx), round(y0 - dy), round(x1 + dx), round(y1 + dy)
    return max(grown[0], 0), max(grown[1], 0), min(grown[2], W), min(grown[3], H)


def aspect_region(box: tuple[int, int, int, int], width: int, height: int, size: tuple[int, int]) -> Region:
    """The window of the aspect of `size` ((H, W) px) around `box` (x0, y0, x1, y1) in a width x height picture:
    the smallest that holds the box and is at least half of `size`, centred on the box and kept inside the picture
    along each side where it fits; the whole picture's `fitted_region` where that is no larger."""
    H, W = size
    x0, y0, x1, y1 = box
    whole = fitted_region(width, height, size)
    wide = max(x1 - x0, (y1 - y0) * W / H, W / 2)  # both sides rounded from it: no pixel lost to rounding
    side, rows = round(wide), round(wide * H / W)
    if side >= whole.side:
        return whole
    return Region(_place((x0 + x1) / 2, side, width), _place((y0 + y1) / 2, rows, height), side, rows)


def crop(array: np.ndarray, region: Region) -> np.ndarray:
    """Crop (H, W, ...) to the region, replicating the border where the region leaves the image."""
    H, W = array.shape[:2]
    x0, y0, x1, y1 = region.box()
    pads = [(max(0, -y0), max(0, y1 - H)), (max(0, -x0), max(0, x1 - W))] + [(0, 0)] * (array.ndim - 2)
    inner = array[max(0, y0) : min(H, y1), max(0, x0) : min(W, x1)]
    return np.pad(inner, pads, mode="edge") if any(p != (0, 0) for p in pads) else inner


def neutral_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) with the masked area (bool (H, W)) filled from its surroundings (OpenCV Telea in-painting)."""
    binary = mask.astype(np.uint8)
    radius = max(3, int(0.02 * max(image.shape[:2])))
    return cv2.inpaint(np.ascontiguousarray(image), binary, radius, cv2.INPAINT_TELEA)


def feather_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """Blend weight of the generated pixels (H, W) in [0, 1]: 0 outside the mask, rising to 1
    over `feather` pixels inside the mask (bool (H, W)), so every pixel outside it stays the original."""
    binary = mask.astype(np.uint8)
    if feather <= 0:
        return binary.astype(np.float32)
    inside = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    return np.clip(inside / feather, 0, 1).astype(np.float32)


def paste_into(
    picture: np.ndarray, drawn: np.ndarray, at: tuple[int, int], mask: np.ndarray, feather: int
) -> Image.Image:
    """`picture` uint8 (H, W, 3) as a PIL image with `drawn` uint8 (h, w, 3), whose top-left corner lies at
    `at` = (x, y) in picture pixels (it may reach past the border), blended in by `feather_alpha(mask,
    feather)`: every pixel outside the mask stays the original.

    Memory follows the mask, not the picture: only the mask's box is blended, a band of rows at a time,
    each band's feather computed on the band and `feather` + 1 rows around it (a distance no greater than
    `feather` reaches no further, so the weights are the whole picture's, bit for bit)."""
    out = Image.fromarray(picture)
    box = mask_box(mask)
    if box is None:
        return out
    H, W = mask.shape
    x0, y0, x1, y1 = max(box[0] - 1, 0), max(box[1] - 1, 0), min(box[2] + 1, W), min(box[3] + 1, H)
    margin = max(feather, 0) + 1
    step = _band_rows(x1 - x0, 2 * margin)
    for top in range(y0, y1, step):
        bottom = min(top + step, y1)
        lo, hi = max(y0, top - margin), min(y1, bottom + margin)
        alpha = feather_alpha(mask[lo:hi, x0:x1], feather)[top - lo : bottom - lo]
        original = picture[top:bottom, x0:x1]
        generated = original.copy()
        dx, dy = at[0] - x0, at[1] - top
        ys = slice(max(dy, 0), min(dy + drawn.shape[0], bottom - top))
        xs = slice(max(dx, 0), min(dx + drawn.shape[1], x1 - x0))
        if ys.start < ys.stop and xs.start < xs.stop:
            generated[ys, xs] = drawn[ys.start - dy : ys.stop - dy, xs.start - dx : xs.stop - dx]
        out.paste(Image.fromarray(paste_back(original, generated, alpha)), (x0, top))
    return out


def paste_back(original: np.ndarray, generated: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) images blended by alpha (H, W); exact original where alpha is 0."""
    a = alpha[..., None]
    out = original.astype(np.float32) * (1 - a) + generated.astype(np.float32) * a
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    keep = alpha <= 0
    out[keep] = original[keep]
    return out


def outpaint_canvas(
    image: Image.Image, left: int = 0, right: int = 0, top: int = 0, bottom: int = 0, zoom_out: float | None = None
) -> tuple[Image.Image, Image.Image]:
    """Grow the canvas (pixels per side) or zoom out (shrink the picture into the middle by a factor > 1).

    Returns the canvas (new area pre-filled from the picture's edges) and its mask ('L', white = new).
    """
    image = to_rgb(image)
    W, H = image.size
    if zoom_out is not None and zoom_out > 1:
        w, h = max(1, round(W / zoom_out)), max(1, round(H / zoom_out))
        small = image.resize((w, h), Image.LANCZOS)
        left, top = (W - w) // 2, (H - h) // 2
        right, bottom = W - w - left, H - h - top
        image, (W, H) = small, (w, h)
    if min(left, right, top, bottom) < 0:
        raise EditError("Out-paint amounts must be zero or positive numbers of pixels.")
    if left + right + top + bottom == 0:
        raise EditError(
            "Nothing to out-paint: give a number of pixels for at least one side, or a zoom-out factor above 1."
        )
    src = np.asarray(image)
    grown = cv2.copyMakeBorder(src, top, bottom, left, right, cv2.BORDER_REPLICATE)
    mask = np.ones(grown.shape[:2], np.uint8) * 255
    mask[top : top + H, left : left + W] = 0
    return Image.fromarray(grown), Image.fromarray(mask, "L")
