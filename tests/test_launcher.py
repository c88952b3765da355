"""The Quick start's launcher (install.py) picks torch's build by the machine: a fake `nvidia-smi` on
PATH stands for a GPU; --dry-run prints the commands and installs nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dry_run(tmp_path: Path, nvidia_smi: str | None, *extra: str) -> str:
    """install.py --dry-run with PATH holding only a fake nvidia-smi (printing `nvidia_smi`) or none."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvidia_smi is not None:
        tool = bin_dir / "nvidia-smi"
        tool.write_text(f"#!/bin/sh\necho '{nvidia_smi}'\n")
        tool.chmod(0o755)
    env = {**os.environ, "PATH": str(bin_dir)}
    venv = tmp_path / "venv"
    args = [sys.executable, str(ROOT / "install.py"), "--dry-run", "--venv", str(venv), *extra]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert not venv.exists(), "--dry-run must not create anything"
    return out.stdout


def test_without_a_gpu_the_cpu_build_is_installed(tmp_path: Path) -> None:
    out = dry_run(tmp_path, None)
    assert "No NVIDIA GPU found: torch CPU build." in out
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in out
    assert "-m venv" in out and "requirements.txt" in out and out.rstrip().endswith("app.py")


def test_with_a_gpu_the_cuda_build_is_installed(tmp_path: Path) -> None:
    out = dry_run(tmp_path, "GPU 0: NVIDIA H200 (UUID: GPU-0)")
    assert "NVIDIA GPU found: torch CUDA build." in out
    torch_line = next(line for line in out.splitlines() if "install torch" in line)
    assert "--index-url" not in torch_line


def test_a_driver_without_a_gpu_and_the_overrides(tmp_path: Path) -> None:
    assert "CPU build" in dry_run(tmp_path, "No devices found.")
    assert "CPU build" in dry_run(tmp_path, "GPU 0: NVIDIA H200", "--cpu")
    assert "CUDA build" in dry_run(tmp_path, None, "--cuda")
    assert "app.py" not in dry_run(tmp_path, None, "--no-start").splitlines()[-1]
