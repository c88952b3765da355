"""The Quick start's launcher (install.py) picks torch's build by the machine: a fake `nvidia-smi` on
PATH stands for a GPU; stand-in package indexes on 127.0.0.1 (one that answers, one that refuses
connections) stand for the internet; --dry-run prints the commands and installs nothing, and a fake
`python` in the virtual environment records what a real run would run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class _Index(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 (the name http.server calls)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def index() -> Iterator[str]:
    """A stand-in package index on 127.0.0.1 that answers."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


@pytest.fixture
def refused() -> str:
    """An index address on 127.0.0.1 that refuses connections (a port that was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/whl/cpu"


def launch(
    tmp_path: Path, nvidia_smi: str | None, package_index: str, *extra: str, dry: bool = True
) -> subprocess.CompletedProcess[str]:
    """install.py with PATH holding only a fake nvidia-smi (printing `nvidia_smi`) or none, and pip's index
    at `package_index`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvidia_smi is not None:
        tool = bin_dir / "nvidia-smi"
        tool.write_text(f"#!/bin/sh\necho '{nvidia_smi}'\n")
        tool.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(PATH=str(bin_dir), PIP_INDEX_URL=package_index)
    args = [sys.executable, str(ROOT / "install.py"), "--venv", str(tmp_path / "venv"), *extra]
    return subprocess.run([*args, "--dry-run"] if dry else args, env=env, capture_output=True, text=True, timeout=120)


def dry_run(tmp_path: Path, nvidia_smi: str | None, package_index: str, *extra: str) -> str:
    out = launch(tmp_path, nvidia_smi, package_index, *extra)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "venv").exists(), "--dry-run must not create anything"
    return out.stdout


def fake_python(tmp_path: Path) -> Path:
    """A virtual environment without torch whose python records each command it is given -> its log."""
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    log = tmp_path / "ran.txt"
    python.write_text(f'#!/bin/sh\n[ "$1" = "-c" ] && exit 1\necho "$@" >> {log}\n')
    python.chmod(0o755)
    return log


def test_without_a_gpu_the_cpu_build_is_installed(tmp_path: Path, index: str) -> None:
    out = dry_run(tmp_path, None, index, "--torch-index", index)
    assert "No NVIDIA GPU found: torch CPU build." in out
    assert f"pip install torch --index-url {index}" in out
    assert "cannot be reached" not in out
    assert "-m venv" in out and out.rstrip().endswith("app.py")
    # The project itself, editable (its modules import from any folder), with the MCP extra the docs' example needs.
    assert f"pip install -e {ROOT}[mcp]" in out


def test_with_a_gpu_the_cuda_build_is_installed(tmp_path: Path, index: str, refused: str) -> None:
    out = dry_run(tmp_path, "GPU 0: NVIDIA H200 (UUID: GPU-0)", index, "--torch-index", refused)
    assert "NVIDIA GPU found: torch CUDA build." in out
    torch_line = next(line for line in out.splitlines() if "install torch" in line)
    assert "--index-url" not in torch_line
    assert "cannot be reached" not in out  # the CPU index is not needed, so not asked


def test_a_driver_without_a_gpu_and_the_overrides(tmp_path: Path, index: str) -> None:
    assert CPU_INDEX in launch(tmp_path, None, index, "--help").stdout
    assert "CPU build" in dry_run(tmp_path, "No devices found.", index, "--torch-index", index)
    assert "CPU build" in dry_run(tmp_path, "GPU 0: NVIDIA H200", index, "--cpu", "--torch-index", index)
    assert "CUDA build" in dry_run(tmp_path, None, index, "--cuda")
    assert "app.py" not in dry_run(tmp_path, None, index, "--no-start", "--torch-index", index).splitlines()[-1]


def test_an_unreachable_cpu_index_falls_back_to_the_package_index(tmp_path: Path, index: str, refused: str) -> None:
    out = dry_run(tmp_path, None, index, "--torch-index", refused)
    said = [line for line in out.splitlines() if "cannot be reached" in line]
    assert said == [f"The CPU wheel index {refused} cannot be reached; torch comes from the regular package index."]
    assert "No NVIDIA GPU found: torch from the regular package index." in out
    torch_line = next(line for line in out.splitlines() if "install torch" in line)
    assert torch_line.endswith("pip install torch"), torch_line  # pip is never given the index it cannot reach
    assert refused not in "".join(line for line in out.splitlines() if line.startswith("+ "))


def test_no_index_at_all_is_one_sentence_and_nothing_runs(tmp_path: Path, refused: str) -> None:
    log = fake_python(tmp_path)
    out = launch(tmp_path, None, refused, "--no-start", "--torch-index", refused, dry=False)
    assert out.returncode == 1
    (sentence,) = out.stderr.strip().splitlines()
    assert sentence == (
        f"error: Neither the CPU wheel index ({refused}) nor the package index ({refused}) can be reached: "
        "connect this machine to the internet, or set PIP_INDEX_URL to a package index it can reach, "
        "then run install.py again."
    )
    assert not log.exists(), log.read_text()


def test_a_real_run_installs_the_project_editable(tmp_path: Path, index: str, refused: str) -> None:
    log = fake_python(tmp_path)
    out = launch(tmp_path, None, index, "--no-start", "--torch-index", refused, dry=False)
    assert out.returncode == 0, out.stderr
    assert log.read_text().splitlines() == ["-m pip install torch", f"-m pip install -e {ROOT}[mcp]"]
