"""Serving on Ray: model workers behind one studio, as Ray Serve replicas.

`RemoteEditor` implements the editor interface (interface.EditorProtocol) as `Editor` does, but
runs every edit on a replica of `EditWorkerDeployment`, each holding the model once (one per GPU
where there are GPUs). Ray Serve queues the requests, spreads them over the replicas and replaces a
replica that dies. Previews stream back scale by scale; Stop cancels the stream, which cancels the
edit on the worker at its next scale. What an edit would redraw (`preview_cells`, asked on every
stroke) needs only the model's geometry, so it is answered here without waiting for a worker.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
import threading
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .canvas import Region
from .compose import EditResult, Naming
from .edit_job import EditJob, Progress
from .editor import Editor, preview_cells
from .errors import EditCancelled, EditError
from .families import FAMILIES, ModelGeometry
from .interface import ModelInfo
from .limits import Limits
from .metadata import carried
from .options import EditOptions
from .request import EditRequest

APP_NAME = "var-edit-workers"
PASS_FIELDS = ("window", "windows", "done", "work")  # where a progress report stands in the whole edit


def _png(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1, **carried(image))
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _image(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


class EditWorkerDeployment:
    """One model worker (a Ray Serve replica): runs edits and streams their progress as JSON-able dicts."""

    def __init__(self, model: str, device: str | None, dtype: str | None, limits: dict[str, int]) -> None:
        self.editor = Editor.from_pretrained(model, device=device, dtype=dtype)
        self.editor.limits = Limits(**limits)

    def describe(self) -> dict[str, Any]:
        """What the studio shows of the model."""
        return {"info": asdict(self.editor.info), "defaults": self.editor.defaults.to_dict(),
                "geometries": [g.to_dict() for g in self.editor.model.geometries],
                "modes": self.editor.modes}  # fmt: skip

    def edit(self, request_json: str, time_limit: float | None = None) -> Iterator[dict[str, Any]]:
        """Run one request: {"step", "total", "previews"} per scale, then {"result": ...} or {"error": ...}."""
        try:
            request = EditRequest.from_dict(json.loads(request_json))
        except EditError as e:
            yield {"error": str(e), "kind": "user"}
            return
        job = self.editor.submit([request], previews=True, time_limit=time_limit)
        try:
            for progress in job.updates():
                previews = [_png(im) for im in progress.previews.get(0, [])]
                where = {k: getattr(progress, k) for k in PASS_FIELDS}
                yield {"step": progress.step, "total": progress.total, "previews": previews, **where}
            result = job.result()[0]
        except EditCancelled:
            yield {"error": "Stopped.", "kind": "cancelled"}
            return
        except EditError as e:
            yield {"error": str(e), "kind": "user"}
            return
        finally:
            if not job.done:  # the caller went away (Stop): end the edit at its next scale
                job.cancel()
        region = None if result.region is None else asdict(result.region)
        yield {
            "result": {
                "images": [_png(im) for im in result.images],
                "seed": result.seed,
                "params": result.params,
                "mask": _png(result.mask.convert("RGB")),
                "regenerated": None if result.regenerated is None else result.regenerated.tolist(),
                "region": region,
            }
        }


def _result(data: dict[str, Any]) -> EditResult:
    regenerated = None if data["regenerated"] is None else np.asarray(data["regenerated"], bool)
    region = None if data["region"] is None else Region(**data["region"])
    return EditResult([_image(im) for im in data["images"]], data["seed"], data["params"],
                      _image(data["mask"]).convert("L"), regenerated, region)  # fmt: skip


class RemoteEditor:
    """The studio's view of N model workers on Ray Serve (see the module doc)."""

    def __init__(
        self,
        model: str = "demo",
        workers: int = 2,
        address: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        gpus_per_worker: float = 0.0,
        cpus_per_worker: float = 1.0,
        limits: Limits | None = None,
    ) -> None:
        import ray
        from ray import serve

        self._ray_folder: Path | None = None  # a Ray of this editor's own: its session files, removed by close
        if not ray.is_initialized():
            if address is None:
                self._ray_folder = Path(tempfile.mkdtemp(prefix="var-edit-ray-"))
            temp = {"_temp_dir": str(self._ray_folder)} if self._ray_folder else {}  # Ray's root for its files
            ray.init(address=address, log_to_driver=False, include_dashboard=False, **temp)
        self.limits = limits or Limits()
        deployment = serve.deployment(
            EditWorkerDeployment,
            name="EditWorker",
            num_replicas=workers,
            max_ongoing_requests=1,  # one edit at a time per worker; Serve queues the rest
            ray_actor_options={"num_cpus": cpus_per_worker, "num_gpus": gpus_per_worker},
        )
        self._handle = serve.run(
            deployment.bind(model, device, dtype, asdict(self.limits)), name=APP_NAME, route_prefix=None
        )
        described = self._handle.describe.remote().result()
        self._info = ModelInfo(**described["info"])
        self.defaults = EditOptions.from_dict(described["defaults"])
        self.geometries = tuple(ModelGeometry.from_dict(g) for g in described["geometries"])
        self.geometry = self.geometries[0]
        self._modes: list[str] = described["modes"]
        self.name = self._info.name
        self.workers = workers

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def resolution(self) -> int:
        return self._info.image_size

    @property
    def num_scales(self) -> int:
        return self.geometry.num_scales

    @property
    def modes(self) -> list[str]:
        return list(self._modes)

    def preview_cells(self, request: EditRequest) -> EditResult:
        """What an edit would redraw, from the model's geometry (no worker is asked)."""
        naming = Naming(self.name, self._info.class_names, frozenset(self._info.options))
        return preview_cells(request, self.geometries, self.limits, naming, FAMILIES[self._info.family])

    def submit(
        self,
        requests: Sequence[EditRequest],
        previews: bool = False,
        time_limit: float | None = None,
        visitor: Hashable | None = None,
    ) -> EditJob:
        """Run one request on a worker; the job streams its previews and stops the worker's edit on cancel.
        visitor: unused (each worker runs one edit at a time; Ray Serve queues the rest)."""
        if len(requests) != 1:
            raise EditError("The studio's workers take one request at a time.")
        job = EditJob(previews=previews)
        payload = json.dumps(requests[0].to_dict())
        stream = self._handle.options(method_name="edit", stream=True).remote(payload, time_limit)

        def follow() -> None:
            try:
                for message in stream:
                    if job.cancelled:
                        stream.cancel()
                        raise EditCancelled("Stopped.")
                    if "error" in message:
                        error = EditCancelled if message["kind"] == "cancelled" else EditError
                        raise error(message["error"])
                    if "result" in message:
                        job.finish([_result(message["result"])])
                        return
                    if previews:
                        images = [_image(p) for p in message["previews"]]
                        where = {k: int(message.get(k, 0)) for k in PASS_FIELDS}
                        job.report(Progress(message["step"], message["total"], {0: images}, **where))
                raise EditError("The worker ended the edit without a result; try again.")
            except (EditError, EditCancelled) as e:
                job.finish(error=e)
            except Exception as e:  # a worker that died: Ray Serve replaces it; this edit is lost
                job.finish(
                    error=EditError(f"The model worker running this edit stopped ({type(e).__name__}); run it again.")
                )

        threading.Thread(target=follow, name="var-edit-remote", daemon=True).start()
        return job

    def run(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        """Run requests one by one on the workers (synchronously)."""
        return [self.submit([r]).result()[0] for r in requests]

    def close(self) -> None:
        """Remove the workers; a Ray this editor started is stopped and its files (logs, sockets) removed."""
        import ray
        from ray import serve

        serve.delete(APP_NAME)
        if self._ray_folder is not None:
            serve.shutdown()
            ray.shutdown()
            shutil.rmtree(self._ray_folder, ignore_errors=True)
