"""The editing entry point: `Editor` turns a picture and a painted mask into edited candidates.

image + mask -> edit region (crop with context) -> model resolution -> tokens (cached)
-> teacher-forced edit loop -> decode -> back to the region's size -> feathered paste-back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

import var_core
from var_core import CheckpointError, SamplingOptions
from var_core.zoo import ZOO, available, zoo_files

from . import canvas
from .canvas import ImageSource, Region
from .errors import EditCancelled, EditError
from .masks import POLICIES, scale_masks
from .teacher_forcing import EncodedImage, encode_source, run_edit

DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"
IMAGENET_CLASSES = Path(var_core.__file__).resolve().parent / "imagenet_classes.json"
PreviewCallback = Callable[[int, int, list[Image.Image]], None]


@dataclass(frozen=True)
class EditOptions:
    """Everything that shapes an edit. seed None = random (the seed used is reported)."""

    seed: int | None = None
    cfg: float = 3.0
    top_k: int = 900
    top_p: float = 0.95
    more_smooth: bool = False
    num_samples: int = 1
    policy: str = "touch"
    strength: int = 0
    dilation: int = 0
    feather: int = 8
    fill: str = "original"
    replay: bool = False
    context: float = 0.5
    paste_back: bool = True


@dataclass(frozen=True)
class ModelInfo:
    name: str
    image_size: int
    num_classes: int
    class_names: list[str]
    device: str
    dtype: str
    parameters: int


@dataclass
class EditResult:
    """images: full-resolution RGB candidates; cells: the regenerated token cells over the first one."""

    images: list[Image.Image]
    seed: int
    params: dict[str, Any]
    mask: Image.Image
    cells: Image.Image
    previews: list[Image.Image] = field(default_factory=list)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(name: str | torch.dtype | None, device: str) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if name not in table:
        raise EditError(f"Unknown precision {name!r}; use float32, bfloat16 or float16.")
    return table[name]


def _find_pair(folder: Path) -> tuple[Path, Path]:
    def pick(prefix: str) -> Path:
        found = sorted(
            p for p in folder.iterdir() if p.name.startswith(prefix) and p.suffix in (".safetensors", ".pth")
        )
        if not found:
            raise CheckpointError(
                f"No {prefix}*.safetensors or {prefix}*.pth in {folder}; put the checkpoint pair there."
            )
        return found[0]

    return pick("vae"), pick("var")


def available_models() -> list[str]:
    """'demo' first, then the published models whose files are on this machine."""
    return ["demo", *[name for name in ZOO if available(name)]]


class Editor:
    """Zero-shot VAR editing: in-painting, out-painting, class-conditional editing and generation."""

    def __init__(
        self,
        vqvae: var_core.VQVAE,
        var: var_core.VAR,
        device: str | None = None,
        class_names: list[str] | None = None,
        name: str = "custom",
        defaults: EditOptions | None = None,
    ):
        self.device = device or default_device()
        self.vqvae, self.var = vqvae.to(self.device), var.to(self.device)
        self.name = name
        self.class_names = class_names or [f"class {i}" for i in range(var.num_classes)]
        self.defaults = defaults or EditOptions()
        self.resolution = vqvae.image_size
        self._encoded: OrderedDict[str, EncodedImage] = OrderedDict()
        self._lock = threading.Lock()

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def from_files(
        cls,
        vae_path: str | Path,
        var_path: str | Path,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        class_names: list[str] | None = None,
        name: str | None = None,
        defaults: EditOptions | None = None,
    ) -> Editor:
        """Load a checkpoint pair (.pth or .safetensors)."""
        device = device or default_device()
        precision = _dtype(dtype, device)
        vqvae = var_core.load_vqvae(vae_path, device=device)
        var = var_core.load_var(var_path, vqvae, device=device, dtype=precision)
        if class_names is None and var.num_classes == 1000:
            class_names = [c["names"].split(",")[0] for c in json.loads(IMAGENET_CLASSES.read_text())]
        return cls(vqvae, var, device, class_names, name or Path(var_path).stem, defaults)

    @classmethod
    def from_pretrained(
        cls,
        name_or_folder: str | Path = "demo",
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        download: bool = False,
    ) -> Editor:
        """'demo' (bundled), a published name ('d16' ... 'd36'), or a folder with vae*/var* checkpoints."""
        key = str(name_or_folder)
        if key in ZOO:
            vae_path, var_path = zoo_files(key, download)
            return cls.from_files(vae_path, var_path, device, dtype, name=f"VAR-{key}")
        folder = DEMO_DIR if key == "demo" else Path(key)
        if not folder.is_dir():
            raise CheckpointError(
                f"No model named {key!r}: use demo, {', '.join(ZOO)}, or a folder with a checkpoint pair."
            )
        vae_path, var_path = _find_pair(folder)
        classes = folder / "classes.json"
        class_names = json.loads(classes.read_text()) if classes.is_file() else None
        defaults_file = folder / "defaults.json"
        defaults = EditOptions(**json.loads(defaults_file.read_text())) if defaults_file.is_file() else None
        return cls.from_files(
            vae_path, var_path, device, dtype, class_names, "demo" if key == "demo" else folder.name, defaults
        )

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            image_size=self.resolution,
            num_classes=self.var.num_classes,
            class_names=list(self.class_names),
            device=self.device,
            dtype=str(self.var.compute_dtype).replace("torch.", ""),
            parameters=sum(p.numel() for p in self.var.parameters()) + sum(p.numel() for p in self.vqvae.parameters()),
        )

    @property
    def num_scales(self) -> int:
        return self.var.num_scales

    def default_options(self) -> EditOptions:
        return self.defaults

    # ---- public edits ----------------------------------------------------------------------
    def generate(
        self,
        class_id: int,
        options: EditOptions | None = None,
        on_preview: PreviewCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """Class-conditional generation at the model's resolution (class_id = num_classes: unconditional)."""
        options = self._check(options, class_id)
        R = self.resolution
        with self._guard():
            images, seed, previews = self._sample(None, None, class_id, options, on_preview, cancel)
        full = np.ones((R, R), np.float32)
        return self._result(images, seed, options, "generate", class_id, full, Region(0, 0, R), previews)

    def inpaint(
        self,
        image: ImageSource,
        mask: ImageSource | np.ndarray,
        options: EditOptions | None = None,
        on_preview: PreviewCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """Regenerate the white part of `mask` so that it fits the rest of `image` (no class)."""
        return self._edit_image(image, mask, self.var.num_classes, "inpaint", options, on_preview, cancel)

    def edit_class(
        self,
        image: ImageSource,
        mask: ImageSource | np.ndarray,
        class_id: int,
        options: EditOptions | None = None,
        on_preview: PreviewCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """Regenerate the white part of `mask` as class `class_id`."""
        return self._edit_image(image, mask, class_id, "edit_class", options, on_preview, cancel)

    def outpaint(
        self,
        image: ImageSource,
        left: int = 0,
        right: int = 0,
        top: int = 0,
        bottom: int = 0,
        zoom_out: float | None = None,
        options: EditOptions | None = None,
        on_preview: PreviewCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """Grow the canvas by pixels per side (or zoom out by a factor > 1) and fill what is new.

        Canvases much wider or taller than square are planned at a coarse scale as a whole, then
        refined in overlapping square windows.
        """
        picture = canvas.load_image(image)
        grown, mask_image = canvas.outpaint_canvas(picture, left, right, top, bottom, zoom_out)
        mask = np.asarray(mask_image, np.float32) / 255.0
        options = self._check(options, self.var.num_classes)
        W, H = grown.size
        if max(W, H) <= 1.5 * min(W, H):
            result = self._edit_image(grown, mask, self.var.num_classes, "outpaint", options, on_preview, cancel)
        else:
            result = self._panorama(grown, mask, options, on_preview, cancel)
        result.params.update(left=left, right=right, top=top, bottom=bottom, zoom_out=zoom_out)
        return result

    # ---- internals -------------------------------------------------------------------------
    def _check(self, options: EditOptions | None, class_id: int) -> EditOptions:
        options = options or self.defaults
        if not 0 <= class_id <= self.var.num_classes:
            raise EditError(
                f"Class {class_id} does not exist: this model has classes 0 to {self.var.num_classes - 1} "
                f"({self.var.num_classes} for none)."
            )
        if options.policy not in POLICIES:
            raise EditError(f"Unknown mask policy {options.policy!r}; use one of {', '.join(POLICIES)}.")
        if options.fill not in ("original", "neutral"):
            raise EditError(f"Unknown fill {options.fill!r}; use original or neutral.")
        if not 1 <= options.num_samples <= 64:
            raise EditError("Ask for between 1 and 64 candidates.")
        if not 0 <= options.strength < self.num_scales:
            raise EditError(f"Strength is the first regenerated scale: 0 to {self.num_scales - 1}.")
        return options

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """One edit at a time on this editor's device; running out of memory becomes an EditError."""
        with self._lock:
            try:
                yield
            except torch.OutOfMemoryError as e:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise EditError(
                    f"Out of memory on {self.device}: ask for fewer candidates or a smaller region, "
                    "or use --dtype bfloat16."
                ) from e

    def _edit_image(
        self,
        image: ImageSource | Image.Image,
        mask_source: ImageSource | np.ndarray,
        class_id: int,
        mode: str,
        options: EditOptions | None,
        on_preview: PreviewCallback | None,
        cancel: threading.Event | None,
        allow_full: bool = False,
    ) -> EditResult:
        options = self._check(options, class_id)
        picture = canvas.load_image(image)
        mask = canvas.load_mask(mask_source, picture.size)
        coverage = float((mask >= 0.5).mean())
        if coverage == 0:
            raise EditError("The mask is empty: paint over the area to regenerate.")
        if coverage == 1 and not (allow_full and options.policy == "strength" and options.strength > 0):
            raise EditError(
                "The mask covers the whole picture, so nothing is left to keep: leave part of it unpainted, "
                "or generate a new picture instead."
            )
        original = np.asarray(picture)
        region = canvas.edit_region(mask, options.context, min_side=self.resolution // 2)
        # Beyond the picture's border the model may draw freely; that part is cropped away later.
        region_mask = np.maximum(canvas.crop(mask, region), region.outside(picture.width, picture.height))
        region_image = canvas.crop(original, region)
        if options.fill == "neutral":
            region_image = canvas.neutral_fill(region_image, region_mask)
        R = self.resolution
        x = self._to_model(region_image)
        mask_R = cv2.resize(region_mask, (R, R), interpolation=cv2.INTER_AREA if region.side > R else cv2.INTER_LINEAR)
        regenerate = scale_masks(
            torch.from_numpy(mask_R), self.var.patch_nums, options.policy, options.dilation, options.strength
        )
        with self._guard():
            source = self._encode(x)
            images, seed, previews = self._sample(source, regenerate, class_id, options, on_preview, cancel)
        results = [self._compose(original, mask, region, img, options) for img in images]
        return self._result(results, seed, options, mode, class_id, mask, region, previews, regenerate[-1])

    def _to_model(self, region_image: np.ndarray) -> torch.Tensor:
        """uint8 (s, s, 3) -> (1, 3, R, R) in [-1, 1] on the device."""
        R = self.resolution
        side = region_image.shape[0]
        resized = (
            region_image
            if side == R
            else cv2.resize(region_image, (R, R), interpolation=cv2.INTER_AREA if side > R else cv2.INTER_CUBIC)
        )
        x = torch.from_numpy(np.array(resized)).permute(2, 0, 1)[None].float().div(127.5).sub(1)
        return x.to(self.device)

    def _encode(self, x: torch.Tensor) -> EncodedImage:
        """Encode once per distinct model-resolution picture; candidates and repeated edits reuse it."""
        key = hashlib.sha1(x.cpu().numpy().tobytes()).hexdigest()
        if key in self._encoded:
            self._encoded.move_to_end(key)
            return self._encoded[key]
        encoded = encode_source(self.vqvae, x)
        self._encoded[key] = encoded
        while len(self._encoded) > 8:
            self._encoded.popitem(last=False)
        return encoded

    def _sample(
        self,
        source: EncodedImage | None,
        regenerate: list[torch.Tensor] | None,
        class_id: int,
        options: EditOptions,
        on_preview: PreviewCallback | None,
        cancel: threading.Event | None,
    ) -> tuple[list[np.ndarray], int, list[Image.Image]]:
        """Run the edit loop (regenerate: per-scale masks, None to generate); returns uint8 (R, R, 3)
        candidates, the seed, and the last previews."""
        seed = options.seed if options.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        generator = torch.Generator(self.device).manual_seed(seed)
        labels = torch.full((options.num_samples,), class_id, device=self.device)
        sampling = SamplingOptions(options.cfg, options.top_k, options.top_p, options.more_smooth)
        previews: list[Image.Image] = []

        def on_scale(k: int, f_hat: torch.Tensor, _tokens: torch.Tensor) -> None:
            if cancel is not None and cancel.is_set():
                raise EditCancelled("Stopped.")
            if on_preview is not None and k < self.num_scales - 1:
                previews[:] = self._preview(f_hat, k)
                on_preview(k + 1, self.num_scales, previews)

        f_hat, _ = run_edit(
            self.var, self.vqvae, labels, sampling, source, regenerate, options.replay, generator, on_scale
        )
        images = self._to_uint8(self.vqvae.decode_fhat(f_hat))
        if on_preview is not None:
            previews[:] = [Image.fromarray(a) for a in images]
            on_preview(self.num_scales, self.num_scales, previews)
        return images, seed, previews

    @torch.no_grad()
    def _preview(self, f_hat: torch.Tensor, k: int) -> list[Image.Image]:
        """Decode the picture so far at scale k's own resolution (cheap), shown at model size."""
        pn = self.var.patch_nums[k]
        small = self._to_uint8(self.vqvae.decode_fhat(self.vqvae.quantize.downsample(f_hat, k)))
        R = self.resolution
        return [Image.fromarray(a).resize((R, R), Image.NEAREST if pn <= 4 else Image.BICUBIC) for a in small]

    @staticmethod
    def _to_uint8(x: torch.Tensor) -> list[np.ndarray]:
        arr = x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return list(arr)

    def _compose(
        self, original: np.ndarray, mask: np.ndarray, region: Region, generated_R: np.ndarray, options: EditOptions
    ) -> Image.Image:
        """Bring a model-resolution result back into the full picture."""
        H, W = mask.shape
        side = region.side
        generated = (
            generated_R
            if side == self.resolution
            else cv2.resize(
                generated_R, (side, side), interpolation=cv2.INTER_CUBIC if side > self.resolution else cv2.INTER_AREA
            )
        )
        full = original.copy()
        inside, local = region.overlap(W, H)
        full[inside] = generated[local]
        if not options.paste_back:
            return Image.fromarray(full)
        return Image.fromarray(canvas.paste_back(original, full, canvas.feather_alpha(mask, options.feather)))

    def _result(
        self,
        images: list[Image.Image | np.ndarray],
        seed: int,
        options: EditOptions,
        mode: str,
        class_id: int,
        mask: np.ndarray,
        region: Region,
        previews: list[Image.Image],
        finest: torch.Tensor | None = None,
    ) -> EditResult:
        pictures = [im if isinstance(im, Image.Image) else Image.fromarray(im) for im in images]
        params = {
            "mode": mode,
            "model": self.name,
            "class_id": class_id,
            "class_name": self.class_names[class_id] if class_id < len(self.class_names) else "none",
            **asdict(replace(options, seed=seed)),
        }
        mask_image = Image.fromarray((mask >= 0.5).astype(np.uint8) * 255, "L")
        cells = self._cells_overlay(pictures[0], finest, region)
        return EditResult(pictures, seed, params, mask_image, cells, previews)

    def _cells_overlay(self, picture: Image.Image, finest: torch.Tensor | None, region: Region) -> Image.Image:
        """Tint the finest-scale token cells that were sampled (finest: (P^2,) bool), grid drawn in the region."""
        base = np.asarray(picture).astype(np.float32)
        if finest is None:
            return picture.copy()
        P = self.var.patch_nums[-1]
        regen = finest.view(P, P).numpy().astype(np.uint8)
        side = region.side
        cell = cv2.resize(regen, (side, side), interpolation=cv2.INTER_NEAREST)
        grid = np.zeros((side, side), bool)
        ticks = (np.arange(1, P) * side / P).astype(int)
        grid[ticks, :] = True
        grid[:, ticks] = True
        inside, local = region.overlap(base.shape[1], base.shape[0])
        view = base[inside]
        tint = cell[local].astype(bool)
        view[tint] = view[tint] * 0.55 + np.array([255, 64, 160], np.float32) * 0.45
        view[grid[local] & tint] = (255, 255, 255)
        return Image.fromarray(base.clip(0, 255).astype(np.uint8))

    def _panorama(
        self,
        grown: Image.Image,
        mask: np.ndarray,
        options: EditOptions,
        on_preview: PreviewCallback | None,
        cancel: threading.Event | None,
    ) -> EditResult:
        """Out-paint a long canvas: plan the whole at coarse scale, then refine square windows in order."""
        W, H = grown.size
        plan = self._edit_image(
            grown, mask, self.var.num_classes, "outpaint", replace(options, feather=0), on_preview, cancel
        )
        side = min(W, H)
        stride = max(1, side // 2)
        long = max(W, H)
        starts = list(range(0, long - side, stride)) + [long - side]
        # Windows keep the plan's coarse tokens (layout, colour) and redraw the finer ones.
        windows = replace(
            options, policy="strength", strength=max(options.strength, self.num_scales // 3), num_samples=1, context=0.0
        )
        finals, seed = [], plan.seed
        for i, planned in enumerate(plan.images):
            work = np.asarray(planned).copy()
            todo = mask >= 0.5
            for j, start in enumerate(starts):
                box = (slice(0, H), slice(start, start + side)) if W >= H else (slice(start, start + side), slice(0, W))
                window_mask = np.zeros_like(mask)
                window_mask[box] = todo[box]
                if not window_mask.any():
                    continue
                window_opts = replace(windows, seed=seed + 1 + 1000 * i + j)
                sub = self._edit_image(
                    Image.fromarray(work[box]),
                    window_mask[box],
                    self.var.num_classes,
                    "outpaint",
                    replace(window_opts, feather=0),
                    on_preview,
                    cancel,
                    allow_full=True,
                )
                work[box] = np.where(window_mask[box][..., None] >= 0.5, np.asarray(sub.images[0]), work[box])
                todo &= window_mask < 0.5
            finals.append(np.asarray(canvas.paste_back(np.asarray(grown), work, canvas.feather_alpha(mask, 0))))
        return self._result(
            finals, seed, options, "outpaint", self.var.num_classes, mask, Region(0, 0, max(W, H)), plan.previews
        )
