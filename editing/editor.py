"""`Editor`: a loaded model (of any family) and the pipeline every entry point shares.

    requests -> plan (geometry, region, per-scale regenerate maps, encoding) -> sample (one batched
    pass over all requests) -> compose (paste-back, parameters) -> results

The editor talks to its model only through the family seam (editing/families.py): the family's
conditioning, geometry, encoding and sampler; nothing here knows what a VAR is.

`Editor.run` is the one way in; `inpaint`, `outpaint`, `edit_class` and `generate` are one-line
helpers around it, and `submit` runs it in the background behind an `EditJob` handle.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from var_core.zoo import Progress

from .compose import EditResult, Naming, compose
from .device import default_device
from .edit_job import EditJob
from .errors import EditError
from .families import (
    Conditioning,
    FamilyModel,
    ModelFamily,
    ModelGeometry,
    check_request,
    family_defaults,
    family_fields,
    family_options,
    not_run,
    runs,
)
from .interface import ModelInfo
from .limits import Limits
from .memory import give_back_memory
from .modes import get_mode, registered
from .options import EditOptions
from .panorama import panorama_passes, run_panorama
from .plan import EncodingCache, Plan, choose_geometry, load_inputs, plan, resolve
from .request import EditRequest, Picture
from .sample import sample
from .turns import Turns

MAX_BATCH_ROWS = 64  # candidates sampled in one pass; longer lists are split into several passes


class Editor:
    """Zero-shot editing with a next-scale model: in-painting, out-painting, conditional editing and generation.

    model: a loaded model of a family (`var_family.VarModel(vqvae, var)` for a VAR pair); its labels are
    the class names (a text model has none)."""

    def __init__(
        self,
        model: FamilyModel,
        device: str | None = None,
        name: str = "custom",
        defaults: EditOptions | None = None,
        limits: Limits | None = None,
    ):
        self.device = device or default_device()
        self.model = model.to(self.device)
        self.name = name
        self.defaults = defaults or family_defaults(model.family)
        self.limits = limits or Limits()
        self._cache = EncodingCache()
        self._turns = Turns()

    @property
    def family(self) -> ModelFamily:
        """How it was loaded, what it is conditioned on, the modes it runs."""
        return self.model.family

    @property
    def geometry(self) -> ModelGeometry:
        """The model's default scale grids and picture size."""
        return self.model.geometries[0]

    @property
    def class_names(self) -> list[str]:
        """The model's class names (empty for a text model)."""
        return self.model.labels

    # ---- loading (editing.models does it) ------------------------------------------------
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
        from .models import load_files

        return load_files(vae_path, var_path, device, dtype, class_names, name, defaults)

    @classmethod
    def from_pretrained(
        cls,
        name_or_folder: str | Path = "demo",
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        download: bool = False,
        offline: bool | None = None,
        progress: Progress | None = None,
    ) -> Editor:
        """'demo' (bundled), a published name ('d16' ... 'd36', 'infinity-2b', 'infinity-125m'), a folder of the models
        folder by name, or the path of a model folder (VAR: vae*/var* checkpoints and optionally classes.json,
        defaults.json, model.json; Infinity: docs/text-editing.md).

        download: fetch a published model's missing files through huggingface_hub (its cache, resume,
        HF_ENDPOINT), saying the size first and checking each file's sha256; offline (or HF_HUB_OFFLINE=1)
        never touches the network. progress(filename, done, total) follows a download (default: a bar on stderr)."""
        from .models import load_model

        return load_model(name_or_folder, None, device, dtype, download, offline, progress)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            image_size=self.resolution,
            family=self.family.name,
            class_names=list(self.class_names),
            fields=family_fields(self.family),
            options=sorted(family_options(self.family)),
            device=self.device,
            dtype=self.model.dtype,
            parameters=self.model.parameters,
        )

    @property
    def resolution(self) -> int:
        return self.geometry.resolution

    @property
    def num_scales(self) -> int:
        return self.geometry.num_scales

    @property
    def modes(self) -> list[str]:
        """The edit modes this model's family runs."""
        return sorted(mode.name for mode in registered() if runs(self.family, mode.name))

    @property
    def naming(self) -> Naming:
        """What its results record of it."""
        return Naming(self.name, self.class_names, family_options(self.family))

    def conditioning(self, request: EditRequest) -> Conditioning:
        """What to sample a request with, checked against the model; one sentence for a field or an option
        its family does not use."""
        check_request(self.family, self.name, request.mode, request.fields, request.options)
        conditioning = self.family.conditioning(request.fields)
        conditioning.check(self.class_names)
        return conditioning

    # ---- the pipeline -----------------------------------------------------------------------
    def run(
        self, requests: Sequence[EditRequest], job: EditJob | None = None, return_errors: bool = False
    ) -> list[EditResult | EditError]:
        """Run requests -> one EditResult per request, in order, sampled in as few passes as possible.

        job: reports progress and previews, and stops the run when cancelled (EditCancelled).
        return_errors: a request that cannot run (bad picture, empty mask, ...) gets its EditError in
        its place and the others still run; otherwise the first such error is raised.
        """
        out: list[EditResult | EditError | None] = [None] * len(requests)
        plans: list[tuple[int, Plan]] = []
        panoramas = []
        for i, request in enumerate(requests):
            try:
                if not isinstance(request, EditRequest):
                    raise EditError(f"Request {i} is a {type(request).__name__}, not an EditRequest.")
                if not runs(self.family, request.mode):
                    raise not_run(self.name, request.mode, self.modes)
                conditioning = self.conditioning(request)
                options = resolve(request, self.geometry)
                inputs = load_inputs(request, self.limits)
                geometry, region = choose_geometry(self.model.geometries, request, inputs)
                if region is None and get_mode(request.mode).windowed(inputs):
                    panoramas.append((i, request, inputs, options, conditioning))
                else:
                    plans.append((i, plan(request, geometry, inputs, options, conditioning, region=region)))
            except EditError as e:
                if not return_errors:
                    raise
                out[i] = e
        names = self.naming
        chunks = list(_chunks(plans, MAX_BATCH_ROWS))
        if job is not None:
            job.expect(len(chunks) + sum(panorama_passes(inputs, o) for _, _, inputs, o, _ in panoramas))
        for chunk in chunks:
            try:
                arrays = self._sample([p for _, p in chunk], job, [i for i, _ in chunk])
            except EditError as e:
                if not return_errors:
                    raise
                for i, _ in chunk:
                    out[i] = e
                continue
            for (i, p), generated in zip(chunk, arrays, strict=True):
                out[i] = compose(p, generated, names)
        for i, request, inputs, options, conditioning in panoramas:
            try:

                def sample_plans(ps: list[Plan], window: int, windows: int, i: int = i) -> list[np.ndarray]:
                    return self._sample(ps, job, [i], window, windows)

                out[i] = run_panorama(request, inputs, options, conditioning, self.geometry, sample_plans, names)
            except EditError as e:
                if not return_errors:
                    raise
                out[i] = e
        return out  # type: ignore[return-value]

    def preview_cells(self, request: EditRequest) -> EditResult:
        """What an edit would redraw, without running it: the result's mask, `regenerated` (the finest
        scale's cells) and `region`, and no images."""
        return preview_cells(request, self.model.geometries, self.limits, self.naming, self.family)

    def submit(
        self,
        requests: Sequence[EditRequest],
        previews: bool = False,
        time_limit: float | None = None,
        visitor: Hashable | None = None,
    ) -> EditJob:
        """Start `run` in the background; follow, stop and collect it through the returned job.
        time_limit: seconds, after which the run ends at its next scale with an EditError; visitor: who
        asks (a page, an API caller): visitors take turns on the device step by step (editing.turns)."""
        job = EditJob(previews=previews, time_limit=time_limit, visitor=visitor)

        def work() -> None:
            try:
                results, error = self.run(requests, job), None
            except BaseException as e:  # handed to whoever calls job.result()
                results, error = None, e
            # What the run freed goes back before the job ends (a studio's idle memory does not grow edit by edit),
            # so nothing of the run is left working once its caller has the results.
            give_back_memory()
            job.finish(results, error)

        threading.Thread(target=work, name="var-edit", daemon=True).start()
        return job

    def _sample(
        self, plans: list[Plan], job: EditJob | None, slots: list[int], window: int = 0, windows: int = 0
    ) -> list[np.ndarray]:
        """Encode (cached) and sample plans on the device, one pass (a panorama's window `window` of `windows`).
        Passes running at the same time (several visitors of a studio) take turns on the device step by step,
        visitors round-robin."""
        if job is not None:
            job.check()
            job.next_pass(window, windows)
        with self._turn(job):
            for p in plans:
                if p.x is not None and p.source is None:
                    p.source = self._cache.encode(self.model, p.x, self.device)
        return sample(plans, self.model, self.device, job, slots, lambda: self._turn(job))

    @contextlib.contextmanager
    def _turn(self, job: EditJob | None) -> Iterator[None]:
        """The device for one step (a scale, a decode, an encoding) in the job's visitor's turn; out of
        memory becomes an EditError."""
        with self._turns(*((None, None) if job is None else (job.visitor, job.waiting))):
            try:
                yield
            except torch.OutOfMemoryError as e:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise EditError(
                    f"Out of memory on {self.device}: ask for fewer candidates or a smaller region, "
                    "or use --dtype bfloat16."
                ) from e

    # ---- one-request helpers ------------------------------------------------------------
    def _one(self, request: EditRequest) -> EditResult:
        result = self.run([request])[0]
        assert isinstance(result, EditResult)
        return result

    def generate(self, class_id: int | None = None, options: EditOptions | None = None, **fields: Any) -> EditResult:
        """A new picture of class `class_id` at the model's resolution (None: unconditional); fields: the
        conditioning of another family (a text model's prompt=...)."""
        return self._one(EditRequest("generate", class_id=class_id, options=options or self.defaults, **fields))

    def inpaint(self, image: Picture, mask: Picture, options: EditOptions | None = None, **fields: Any) -> EditResult:
        """Regenerate the painted part of `mask` so that it fits the rest of `image` (no class; fields: the
        conditioning of a family that takes some, e.g. prompt=...)."""
        return self._one(EditRequest("inpaint", image, mask, options=options or self.defaults, **fields))

    def edit_class(
        self, image: Picture, mask: Picture, class_id: int, options: EditOptions | None = None
    ) -> EditResult:
        """Regenerate the painted part of `mask` as class `class_id`."""
        return self._one(EditRequest("edit_class", image, mask, class_id=class_id, options=options or self.defaults))

    def outpaint(
        self,
        image: Picture,
        left: int = 0,
        right: int = 0,
        top: int = 0,
        bottom: int = 0,
        zoom_out: float | None = None,
        options: EditOptions | None = None,
    ) -> EditResult:
        """Grow the canvas by pixels per side (or zoom out by a factor > 1) and fill what is new."""
        request = EditRequest(
            "outpaint", image, left=left, right=right, top=top, bottom=bottom, zoom_out=zoom_out,
            options=options or self.defaults,
        )  # fmt: skip
        return self._one(request)


def preview_cells(
    request: EditRequest,
    geometries: ModelGeometry | tuple[ModelGeometry, ...],
    limits: Limits,
    naming: Naming,
    family: ModelFamily,
) -> EditResult:
    """`Editor.preview_cells` from the model's geometries (the default first; one: the model draws only that)
    and family alone (no weights): what a worker-less studio computes."""
    geometries = (geometries,) if isinstance(geometries, ModelGeometry) else geometries
    options = resolve(request, geometries[0])
    conditioning = family.conditioning(request.fields)
    inputs = load_inputs(request, limits)
    geometry, region = choose_geometry(geometries, request, inputs)
    planned = plan(request, geometry, inputs, options, conditioning, region=region)
    empty = np.zeros((0, *geometry.size, 3), np.uint8)
    return compose(planned, empty, naming)


def _chunks(plans: list[tuple[int, Plan]], max_rows: int) -> Iterator[list[tuple[int, Plan]]]:
    chunk: list[tuple[int, Plan]] = []
    rows = 0
    for item in plans:
        n = item[1].options.num_samples
        if chunk and rows + n > max_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.append(item)
        rows += n
    if chunk:
        yield chunk
