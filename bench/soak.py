"""A bounded load test of a running studio: several clients, valid edits mixed with hostile ones.

    python bench/soak.py --start --clients 8 --large 2 --seconds 150   # starts `app.py` itself
    python bench/soak.py --url http://127.0.0.1:7860/ --clients 8 --seconds 300

Each small client loops over: a small valid in-paint through the /inpaint endpoint (64 px picture,
seeded) and, in turn, one hostile request: an 8000x8000 picture, a decompression-bomb mask, 64
candidates, malformed options (unknown key, text for a number, NaN, a 5 MB text for a number, a 5 MB
key). `--large N` of the clients loop over large valid edits instead, in turn: a 64x64 picture
out-painted to 16384 px wide (a panorama) and a 7000x7000 in-paint (49 MP). It reports requests
served, p50/p95 latency of the small valid edits, large edits finished per minute (those still running
at the end are not counted), errors by kind, the server's peak RSS (itself and its children), its idle RSS
at the start and once every edit has ended (the large ones still running are waited for), the size
of its temp dir (peak, sampled every 5 s, and at the end; its console log apart) and of its console log
at the end.
`--json PATH` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ("huge-picture", "bomb-mask", "many-candidates", "unknown-option", "text-number", "nan-option",
           "huge-value", "huge-key")  # fmt: skip
HUGE = 5 * 1024 * 1024  # characters of a hostile value or key


def make_files(folder: Path) -> dict[str, Path]:
    """The pictures the clients send."""
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(folder / "small.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 20:44] = 255
    Image.fromarray(mask).save(folder / "small-mask.png")
    Image.new("RGB", (8000, 8000), (200, 30, 30)).save(folder / "huge.png")  # ~60 KB, 64 megapixels
    Image.new("1", (20000, 20000)).save(folder / "bomb-mask.png")  # ~400 KB, 400 megapixels
    return {p.stem: p for p in folder.iterdir()}


def make_large_files(folder: Path) -> dict[str, Path]:
    """A smooth 7000x7000 picture (49 MP) and a mask over its middle half."""
    side = 7000
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    picture = np.empty((side, side, 3), np.uint8)
    picture[..., 0], picture[..., 1], picture[..., 2] = ramp[None, :], ramp[:, None], 128
    Image.fromarray(picture).save(folder / "large.png", compress_level=1)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 255
    Image.fromarray(mask).save(folder / "large-mask.png", compress_level=1)
    return {"large": folder / "large.png", "large-mask": folder / "large-mask.png"}


def large_loop(url: str, files: dict[str, Path], until: float, index: int, out: dict[str, Any]) -> None:
    """Large valid edits, a panorama and a 49 MP in-paint in turn, until the time is up."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    turn = index
    while time.monotonic() < until:
        started = time.monotonic()
        kind = "panorama" if turn % 2 == 0 else "49mp-inpaint"
        try:
            if kind == "panorama":
                client.predict(handle_file(str(files["small"])), right=16384 - 64, options={"seed": turn},
                               api_name="/outpaint")  # fmt: skip
            else:
                client.predict(image=handle_file(str(files["large"])), mask=handle_file(str(files["large-mask"])),
                               options={"seed": turn}, api_name="/inpaint")  # fmt: skip
            outcome = "served"
        except Exception as e:
            outcome = f"FAILED {type(e).__name__}: {str(e)[:80]}"
        with out["lock"]:
            if time.monotonic() <= until:
                out["large"].append(time.monotonic() - started)
            out["kinds"][f"large {kind}: {outcome}"] += 1
        turn += 1


def hostile_call(kind: str, files: dict[str, Path]) -> tuple[Path, Path, dict[str, Any]]:
    if kind == "huge-picture":
        return files["huge"], files["small-mask"], {"seed": 1}
    if kind == "bomb-mask":
        return files["small"], files["bomb-mask"], {"seed": 1}
    if kind == "many-candidates":
        return files["small"], files["small-mask"], {"num_samples": 64}
    if kind == "unknown-option":
        return files["small"], files["small-mask"], {"sed": 1}
    if kind == "text-number":
        return files["small"], files["small-mask"], {"cfg": "high"}
    if kind == "huge-value":
        return files["small"], files["small-mask"], {"cfg": "h" * HUGE}
    if kind == "huge-key":
        return files["small"], files["small-mask"], {"k" * HUGE: 1}
    return files["small"], files["small-mask"], {"top_p": math.nan}


def client_loop(url: str, files: dict[str, Path], until: float, index: int, out: dict[str, Any]) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    turn = index
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            client.predict(
                image=handle_file(str(files["small"])),
                mask=handle_file(str(files["small-mask"])),
                options={"seed": turn},
                api_name="/inpaint",
            )
            with out["lock"]:
                out["latency"].append(time.monotonic() - started)
                out["kinds"]["valid: served"] += 1
        except Exception as e:  # a valid edit that failed is what this test looks for
            with out["lock"]:
                out["kinds"][f"valid: FAILED {type(e).__name__}: {str(e)[:80]}"] += 1
        kind = HOSTILE[turn % len(HOSTILE)]
        image, mask, options = hostile_call(kind, files)
        try:
            sent = {"image": handle_file(str(image)), "mask": handle_file(str(mask)), "options": options}
            client.predict(**sent, api_name="/inpaint")
            outcome = "served"
        except Exception as e:
            text = str(e)
            outcome = "refused in one sentence" if text.count(". ") == 0 and "Traceback" not in text else "refused"
        with out["lock"]:
            out["kinds"][f"{kind}: {outcome}"] += 1
        turn += 1


def rss_peak_mb(pid: int) -> float:
    """Peak RSS of a process plus the current RSS of its children, MiB."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += float(line.split()[1]) / 1024
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += float(line.split()[1]) / 1024
    except OSError:
        pass
    return total


def rss_now_mb(pid: int) -> float:
    """Resident memory of a process now (VmRSS), MiB; 0 when it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    return next((float(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")), 0.0)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20 if folder.exists() else 0.0


def log_mb(tmp: Path) -> float:
    """The started studio's console output, MiB."""
    log = tmp / "app.log"
    return log.stat().st_size / 2**20 if log.exists() else 0.0


def start_app(tmp: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_TEMP_DIR": str(tmp / "gradio")}
    log = open(tmp / "app.log", "wb")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *extra], env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:  # its "Ready" line comes after Gradio's own check
        if "Ready: the studio answers on" in (tmp / "app.log").read_text(errors="replace"):
            return proc, url
        time.sleep(0.5)
    raise SystemExit(f"the studio did not start:\n{(tmp / 'app.log').read_text()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running studio (its peak RSS and temp dir are then not measured)")
    p.add_argument("--start", action="store_true", help="start app.py on a free port with its own temp dir")
    p.add_argument("--app-args", default="", help="flags for the started app (default: none, as the README starts it)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--large", type=int, default=0, help="how many of the clients send large valid edits")
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="var-edit-soak-"))
    files = make_files(Path(tempfile.mkdtemp(prefix="var-edit-soak-files-")))
    proc = None
    try:
        idle_start = 0.0
        if args.start:
            proc, url = start_app(tmp, args.app_args.split())
            idle_start = rss_now_mb(proc.pid)
        elif args.url:
            url = args.url
        else:
            p.error("give --url or --start")
        if args.large:
            files.update(make_large_files(files["small"].parent))
        out: dict[str, Any] = {"latency": [], "large": [], "kinds": Counter(), "lock": threading.Lock()}
        until = time.monotonic() + args.seconds
        peak = 0.0
        loops = [large_loop if i < args.large else client_loop for i in range(args.clients)]
        threads = [
            threading.Thread(target=f, args=(url, files, until, i, out), daemon=True) for i, f in enumerate(loops)
        ]
        for t in threads:
            t.start()
        small = threads[args.large :]
        disk_peak, measured = 0.0, 0.0
        while any(t.is_alive() for t in small) or (time.monotonic() < until and any(t.is_alive() for t in threads)):
            if proc is not None:
                peak = max(peak, rss_peak_mb(proc.pid))
                if time.monotonic() - measured > 5:
                    disk_peak, measured = max(disk_peak, folder_mb(tmp) - log_mb(tmp)), time.monotonic()
            time.sleep(0.5)
        for t in threads:  # the large edits still running end before the idle memory is read again
            t.join(timeout=900)
        idle_end = rss_now_mb(proc.pid) if proc is not None else 0.0
        latency = sorted(out["latency"])
        figures = {
            "clients": args.clients,
            "seconds": args.seconds,
            "requests": sum(out["kinds"].values()),
            "valid_served": len(latency),
            "valid_p50_s": round(statistics.median(latency), 3) if latency else None,
            "valid_p95_s": round(latency[int(0.95 * (len(latency) - 1))], 3) if latency else None,
            "large_clients": args.large,
            "large_finished": len(out["large"]),
            "large_per_minute": round(len(out["large"]) * 60 / args.seconds, 2),
            "large_mean_s": round(statistics.mean(out["large"]), 1) if out["large"] else None,
            "peak_server_rss_mb": round(peak, 1) if proc is not None else None,
            "idle_rss_mb_start": round(idle_start, 1) if proc is not None else None,
            "idle_rss_mb_end": round(idle_end, 1) if proc is not None else None,
            "temp_dir_mb_peak": round(disk_peak, 2) if proc is not None else None,
            "temp_dir_mb_at_end": round(folder_mb(tmp) - log_mb(tmp), 2) if proc is not None else None,
            "log_mb_at_end": round(log_mb(tmp), 3) if proc is not None else None,
            "outcomes": dict(sorted(out["kinds"].items())),
        }
        print(json.dumps(figures, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))
        failed = [k for k in out["kinds"] if "FAILED" in k]
        return 1 if failed else 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(files["small"].parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
