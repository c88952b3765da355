"""Shared pieces of the speed benchmarks: worker subprocesses, memory probes, statistics, tables.

Each side (ours, the original) runs in its own long-lived worker subprocess (`bench/worker.py`), so
its peak memory is its own; the driver sends the two workers one task at a time, alternating, so
both see the same background load. Timings are wall-clock with CUDA synchronised.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARK = "@@BENCH@@ "


def module_from_file(name: str, path: Path) -> Any:
    """The Python file `path` loaded as the module `name` (for code that is not an installed package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path) if path.is_file() else None
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path} is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def original_helpers(original: str | Path) -> Any:
    """`<original>/tools/orig_bench.py` (the original code's model builders), loaded from its file."""
    path = Path(original) / "tools" / "orig_bench.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; see bench/README.md for how to set up the original.")
    return module_from_file("orig_bench", path)


# ---- memory and timing probes (used inside the workers) --------------------------------------
def _status_kb(field_name: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def rss_mb() -> float:
    """Current resident set size of this process in MiB (NaN where /proc is missing)."""
    return _status_kb("VmRSS") / 1024


def reset_peak(device: str) -> bool:
    """Restart peak-memory tracking; False when the CPU peak cannot be reset (it is then process-wide)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return True
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb(device: str) -> float:
    """Peak memory since the last `reset_peak`: CUDA allocated bytes, or RSS high-water mark on CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    hwm = _status_kb("VmHWM")
    if math.isnan(hwm):  # NaN: no /proc, fall back to getrusage (process-wide, never reset)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return hwm / 1024


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---- driver side ---------------------------------------------------------------------------------
class Worker:
    """A benchmark worker subprocess for one side; `run(task, **kw)` returns its JSON reply."""

    def __init__(
        self,
        side: str,
        device: str,
        threads: int | None,
        original: str | None = None,
        dtype: str = "float32",
        seed: int = 0,
    ):
        cmd = [
            sys.executable,
            str(ROOT / "bench" / "worker.py"),
            "--side",
            side,
            "--device",
            device,
            "--dtype",
            dtype,
            "--seed",
            str(seed),
        ]
        if threads:
            cmd += ["--threads", str(threads)]
        if original:
            cmd += ["--original", original]
        self.side = side
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                reply = json.loads(line[len(MARK) :])
                if "error" in reply:
                    raise RuntimeError(f"{self.side} worker: {reply['error']}")
                return reply
        raise RuntimeError(f"{self.side} worker exited with code {self.proc.wait()}")

    def run(self, task: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"task": task, **kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Series:
    """Repeated measurements of one row: seconds (per image) and peak memory."""

    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    delta_mb: list[float] = field(default_factory=list)

    def add(self, reply: dict[str, Any], per: int = 1) -> None:
        self.seconds.append(reply["seconds"] / per)
        self.peak_mb.append(reply["peak_mb"])
        self.delta_mb.append(reply["peak_mb"] - reply["base_mb"])

    def summary(self) -> dict[str, Any]:
        return {
            "seconds_median": median(self.seconds),
            "seconds": self.seconds,
            "peak_mb_median": median(self.peak_mb),
            "delta_mb_median": median(self.delta_mb),
        }


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median of per-repeat ratios a_i / b_i (pairs measured back to back, so drift in load cancels)."""
    return median([x / y for x, y in zip(a, b, strict=True) if y > 0])


def fmt(x: float, digits: int = 2) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def machine_info(device: str, threads: int) -> dict[str, Any]:
    """CPU model, thread count, load, date, versions: the context every result table needs."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], check=False, capture_output=True, text=True, timeout=10).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), cpu)
    except (OSError, subprocess.SubprocessError):
        pass
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "device": device,
        "python": platform.python_version(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_avg() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))


def figures_from_child(command: list[str], json_path: str | None, extra: dict[str, Any] | None = None) -> int:
    """Runs a measuring child (a fresh process, so its memory starts clean), prints the figures it printed last
    as JSON (with `extra` in front) and writes them to `json_path`; returns the exit status for `sys.exit`."""
    child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if child.returncode != 0:
        sys.stderr.write(child.stderr)
        return child.returncode
    figures = {**(extra or {}), **json.loads(child.stdout.strip().splitlines()[-1])}
    print(json.dumps(figures, indent=2))
    write_json(json_path, figures)
    return 0


def flop_mapping() -> dict:
    """FLOP formulas for the operators torch's FlopCounterMode does not know: the CPU attention kernel and the
    prepacked (oneDNN) linear layers; for `FlopCounterMode(custom_mapping=...)`."""
    import torch

    def linear(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * math.prod(x_shape) * out_shape[-1]

    def attention(q_shape, k_shape, *args, out_shape=None, **kwargs) -> int:  # q @ k^T and p @ v
        return 4 * math.prod(q_shape) * k_shape[-2]

    aten, mapping = torch.ops.aten, {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = attention
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        mapping[torch.ops.mkldnn._linear_pointwise] = linear
    return mapping
