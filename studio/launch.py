"""`python app.py` / `var-edit-studio`: load a model and serve the studio."""

from __future__ import annotations

import argparse
import atexit
import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from editing import Limits, default_device
from editing.turns import EDITS_AT_ONCE

from . import results
from .bounds import SMALL_BODY_MB, body_limit, cap_log_lines, picture_body_mb
from .uploads import FILE_MB, TOTAL_MB, UPLOAD_ROUTE, VISITOR_MB, Uploads
from .workdir import Workdir, compile_cache

MB = 1024 * 1024


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    limits = Limits()
    p = argparse.ArgumentParser(prog="var-edit-studio", description="VAR editing studio (Gradio).")
    p.add_argument(
        "--model",
        default="demo",
        help="'demo', a published name (d16..d36, infinity-2b, infinity-125m; downloaded on first use), a folder "
        "name in --models-dir, "
        "or the path of a folder with vae/var files",
    )
    p.add_argument(
        "--models-dir",
        help="folder of model folders the Model panel lists, and where published files may lie "
        "(default: $VAR_MODELS_DIR, else ./models)",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="never touch the network (as HF_HUB_OFFLINE=1 does): a missing published file is an error "
        "saying where to put it",
    )
    switching = p.add_mutually_exclusive_group()
    switching.add_argument(
        "--no-model-switch",
        dest="model_switch",
        action="store_false",
        default=None,
        help="the page cannot change the model (the default when listening on anything but loopback, or with --share)",
    )
    switching.add_argument(
        "--model-switch",
        dest="model_switch",
        action="store_true",
        help="let the page load listed models even when the studio is reachable from other machines",
    )
    p.add_argument("--vae", help="VQVAE checkpoint file (use with --var instead of --model)")
    p.add_argument("--var", help="VAR transformer checkpoint file (use with --vae)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps … (default: cuda, then mps, then cpu)")
    p.add_argument("--dtype", help="float32, float16 or bfloat16 (default: bfloat16 on CUDA, else float32)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 = any free port)")
    p.add_argument("--share", action="store_true", help="create a public Gradio share link (off by default)")
    p.add_argument("--auth", help="require a login, given as user:password")
    p.add_argument(
        "--max-upload-mb", type=float, default=FILE_MB, help=f"largest accepted upload in MB (default {FILE_MB:g})"
    )
    p.add_argument(
        "--max-uploads-mb",
        type=float,
        default=TOTAL_MB,
        help=f"uploads the studio holds at once, in all, in MB (default {TOTAL_MB:g}); "
        "each is removed once its edit has read it",
    )
    p.add_argument(
        "--max-uploads-per-visitor-mb",
        type=float,
        default=VISITOR_MB,
        help=f"uploads one visitor (a client address) holds at once, in MB (default {VISITOR_MB:g})",
    )
    p.add_argument(
        "--max-results-mb",
        type=float,
        default=results.TOTAL_MB,
        help=f"result files kept at once, the studio's and the copies Gradio serves together, in MB "
        f"(default {results.TOTAL_MB:g}); the oldest go first",
    )
    p.add_argument(
        "--max-results-per-visitor-mb",
        type=float,
        default=results.VISITOR_MB,
        help=f"result files one visitor (a page, an API session) keeps at once, in MB (default {results.VISITOR_MB:g})",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=EDITS_AT_ONCE,
        help=f"edits accepted at once (default {EDITS_AT_ONCE}); the rest wait in the queue and see their position. "
        "Accepted edits take turns on the device one scale at a time, visitor by visitor, so a small edit "
        "never waits for the whole of a big one.",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="model workers on Ray Serve (pip install .[ray]); 1 (default) runs the model in this process",
    )
    p.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster for the workers (default: start Ray here)")
    p.add_argument("--gpus-per-worker", type=float, default=None, help="GPUs per worker (default 1 if CUDA, else 0)")
    p.add_argument("--mcp", action="store_true", help="also serve the four edit endpoints as MCP tools (gradio[mcp])")
    p.add_argument("--max-edit-seconds", type=float, default=300.0, help="an edit ends after this long (default 300)")
    p.add_argument("--keep-files-minutes", type=float, default=60.0,
                   help="served result files are deleted after this long (default 60)")  # fmt: skip
    p.add_argument("--max-picture-mp", type=float, default=limits.picture_pixels / 1e6,
                   help="largest picture or mask file read, in megapixels")  # fmt: skip
    p.add_argument("--max-canvas-mp", type=float, default=limits.canvas_pixels / 1e6,
                   help="largest result (out-painting grows it), in megapixels")  # fmt: skip
    p.add_argument("--max-canvas-side", type=int, default=limits.canvas_side, help="longest side of a result, px")
    p.add_argument("--max-candidates", type=int, default=limits.candidates, help="most candidates per edit")
    p.add_argument("--max-candidate-mp", type=float, default=limits.candidate_pixels / 1e6,
                   help="candidates x result pixels per edit, in megapixels")  # fmt: skip
    args = p.parse_args(argv)
    if bool(args.vae) != bool(args.var):
        p.error("--vae and --var must be given together")
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth must look like user:password")
    for flag in ("max_upload_mb", "max_uploads_mb", "max_uploads_per_visitor_mb", "max_results_mb",
                 "max_results_per_visitor_mb"):
        if getattr(args, flag) <= 0:
            p.error(f"--{flag.replace('_', '-')} must be more than 0")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.workers > 1 and args.vae:
        p.error("--workers loads the model by --model (a name or a folder), not --vae/--var")
    return args


def port_free(host: str, port: int) -> bool:
    """Whether `port` can be listened on at `host` right now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str) -> int:
    """A TCP port that is free right now on `host`."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.1, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def switch_allowed(args: argparse.Namespace) -> bool:
    """Whether the page may switch the model: --model-switch / --no-model-switch, else only on loopback
    without a share link (anyone who can reach the page could otherwise load models on this server)."""
    if args.model_switch is not None:
        return bool(args.model_switch)
    return is_loopback(args.host) and not args.share


def not_found_handlers() -> dict[Any, Any]:
    """Exception handlers that answer a call to a handler the server never registered (a locked studio's
    load_model, an unknown fn_index) with 404 and one sentence, where Gradio would answer 500."""
    from fastapi.responses import JSONResponse, PlainTextResponse
    from gradio.route_utils import FnIndexInferError

    def missing(request: Any, exc: Exception) -> Any:
        if isinstance(exc, KeyError) and not request.url.path.endswith("/queue/join"):
            logging.getLogger("var-edit-studio").error("request failed", exc_info=exc)
            return PlainTextResponse("Internal Server Error", status_code=500)
        return JSONResponse({"error": "This studio has no such handler."}, status_code=404)

    return {FnIndexInferError: missing, KeyError: missing}


def start_workers(args: argparse.Namespace, limits: Limits) -> Any:
    """`--workers N` / `--ray ADDRESS`: the model on N Ray Serve replicas (one GPU each where there are GPUs)."""
    try:
        from editing.serving import RemoteEditor
    except ImportError as e:
        raise OSError("--workers needs Ray: pip install .[ray] (or 'ray[serve]')") from e
    gpus = args.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if args.device in (None, "cuda") and default_device() == "cuda" else 0.0
    return RemoteEditor(args.model, args.workers, args.ray, args.device, args.dtype, gpus, limits=limits)


def log_loaded(editor: Any, workers: int = 0) -> None:
    """One log line: which model was loaded, its resolution, on which device in which number format."""
    info = editor.info
    where = f" in {workers} workers" if workers else ""
    logging.getLogger("studio").info(
        "Model %s loaded%s: %d px pictures, %.0fM parameters, on %s in %s.",
        info.name, where, info.image_size, info.parameters / 1e6, info.device, info.dtype,
    )  # fmt: skip


def log_disk_caps(args: argparse.Namespace) -> None:
    """One log line: what visitors can make the studio hold on disk, and the largest request it reads."""
    logging.getLogger("studio").info(
        "Disk: results at most %g MB (%g MB a visitor), uploads at most %g MB (%g MB a visitor, %g MB a file); "
        "requests over %g MB (%.1f MB with pictures as data URLs) refused.",
        args.max_results_mb, args.max_results_per_visitor_mb, args.max_uploads_mb, args.max_uploads_per_visitor_mb,
        args.max_upload_mb, SMALL_BODY_MB, picture_body_mb(args.max_upload_mb),
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Load the model and serve the studio until stopped (Ctrl-C or SIGTERM remove its files)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cap_log_lines()
    # No analytics, no telemetry; the network only to fetch a published model (never with --offline).
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.models_dir:
        os.environ["VAR_MODELS_DIR"] = args.models_dir  # published files are looked up there too
    compile_cache_was_there = compile_cache().exists()  # loading the model may make it
    port = args.port or free_port(args.host)
    if not port_free(args.host, port):
        sys.exit(
            f"error: port {port} on {args.host} is taken; pass another with --port N, or --port 0 for any free one."
        )

    from editing import Editor, ModelSwitch
    from editing.models import fetch_files, load_model, resolve

    limits = Limits(
        picture_pixels=int(args.max_picture_mp * 1e6),
        canvas_pixels=int(args.max_canvas_mp * 1e6),
        canvas_side=args.max_canvas_side,
        candidates=args.max_candidates,
        candidate_pixels=int(args.max_candidate_mp * 1e6),
    )

    offline = True if args.offline else None  # None: HF_HUB_OFFLINE decides

    def loader(name: str, progress: Any = None) -> Editor:
        """A listed model by name (the Model panel's choices, and --model NAME)."""
        loaded = load_model(name, args.models_dir, args.device, args.dtype, True, offline, progress, listed_only=True)
        loaded.limits = limits
        return loaded

    def fetch(name: str, progress: Any = None) -> None:
        fetch_files(name, offline, progress)

    def from_command_line() -> Editor:
        """The model given by files or a folder path (not a listed name)."""
        if args.vae:
            loaded = Editor.from_files(args.vae, args.var, args.device, args.dtype)
        else:
            loaded = load_model(args.model, args.models_dir, args.device, args.dtype)
        loaded.limits = limits
        return loaded

    workers = args.workers > 1 or args.ray
    listed = not args.vae
    try:
        resolve(args.model, args.models_dir, listed_only=True)
    except ValueError:  # a folder path, or a name that from_command_line refuses in one sentence
        listed = False
    try:  # before Gradio is imported: a model that cannot load is said at once
        if workers:
            editor = start_workers(args, limits)
            atexit.register(editor.close)  # the workers, and Ray's files where the studio started Ray
        else:
            editor = loader(args.model) if listed else from_command_line()
    except (ValueError, OSError) as e:  # EditError, CheckpointError, missing files
        sys.exit(f"error: {e}")
    log_loaded(editor, args.workers if workers else 0)

    workdir = Workdir(compile_cache_was_there)  # before Gradio is imported: its cache goes inside, and goes with it
    uploads = Uploads(
        args.max_uploads_mb, args.max_uploads_per_visitor_mb, args.max_upload_mb, folder=workdir.gradio_cache
    )
    kept = results.Results(args.max_results_mb, args.max_results_per_visitor_mb)
    log_disk_caps(args)
    os.environ["GRADIO_TEMP_DIR"] = str(workdir.gradio_cache)
    from .gradio_hooks import problem

    if (unfit := problem(args.mcp)) is not None:
        workdir.close()
        sys.exit(f"error: {unfit}")

    from .layout import CSS, HEAD, build_app

    models = ModelSwitch(
        loader,
        args.models_dir,
        args.model if listed else None,
        None if listed else from_command_line,
        allowed=switch_allowed(args) and not workers,  # the workers' model is fixed
        fetch=fetch,
    )
    concurrency = max(args.concurrency, args.workers)  # every worker busy at once, the rest queue
    demo = build_app(
        editor,
        models,
        concurrency,
        time_limit=args.max_edit_seconds,
        keep_files=args.keep_files_minutes * 60,
        workdir=workdir,
        uploads=uploads,
        results=kept,
        mcp=args.mcp,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the files are removed (atexit), as on Ctrl-C
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    demo.launch(
        server_name=args.host,
        server_port=port,
        share=args.share,
        auth=auth,
        max_file_size=int(args.max_upload_mb * MB),
        ssr_mode=False,
        css=CSS,
        head=HEAD,
        footer_links=["api"],
        mcp_server=args.mcp,
        app_kwargs={
            "exception_handlers": not_found_handlers(),
            "middleware": [body_limit(args.max_upload_mb, UPLOAD_ROUTE), uploads.middleware()],
        },
        prevent_thread_lock=True,
    )
    # Gradio prints its URL before its own check that the page answers; this line comes after it, so a
    # client that waits for it never races that check (a busy server failing it ends the studio).
    logging.getLogger("studio").info("Ready: the studio answers on %s", demo.local_url)
    demo.block_thread()


if __name__ == "__main__":
    main()
