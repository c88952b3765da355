"""Set up the studio on this machine and start it: a virtual environment in .venv with the torch build
that fits the machine, then the project itself (editable, with its requirements and the MCP extra),
then `python app.py`.

- an NVIDIA GPU (`nvidia-smi` runs and lists one): torch from PyPI, its CUDA build (about 2.5 GB to
  download, about 6 GB installed with its CUDA libraries);
- otherwise: torch's CPU build from download.pytorch.org/whl/cpu (about 200 MB to download, about
  0.8 GB installed); where that index cannot be reached, torch from the regular package index.

Each index is probed once, with a short timeout, before pip is given it, so an index that cannot be
reached costs one line instead of pip's retries. A torch already in .venv is kept. Only the standard
library is used, so any Python 3.10+ runs it.

    python3 install.py             # set up and start the studio on http://127.0.0.1:7860
    python3 install.py --dry-run   # print the commands it would run, run nothing
    python3 install.py --cpu       # the CPU build even where there is a GPU (--cuda: the other way)
    python3 install.py --no-start  # set up only
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PACKAGE_INDEX = "https://pypi.org/simple"  # pip's own default; PIP_INDEX_URL overrides it, as for pip
PROBE_SECONDS = 8.0


def has_nvidia_gpu() -> bool:
    """Whether `nvidia-smi -L` runs and lists at least one GPU."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return False
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def reachable(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether a server answers at `url` (any HTTP answer counts; a refused connection, a name that does not
    resolve or no answer within `timeout` seconds does not)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def commands(
    venv: Path, gpu: bool, has_venv: bool, has_torch: bool, start: bool, torch_index: str | None = CPU_INDEX
) -> list[list[str]]:
    """The commands that set up `venv` (and start the studio): torch's CUDA build where `gpu`, else its CPU build
    from `torch_index` (None: from the regular package index); then the project, editable, with the MCP extra."""
    python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
    steps: list[list[str]] = []
    if not has_venv:
        steps.append([sys.executable, "-m", "venv", str(venv)])
    if not has_torch:
        torch = [python, "-m", "pip", "install", "torch"]
        steps.append(torch if gpu or torch_index is None else [*torch, "--index-url", torch_index])
    # Editable: `editing`, `studio` and `training` import from any folder; [mcp]: the MCP server and client.
    steps.append([python, "-m", "pip", "install", "-e", f"{ROOT}[mcp]"])
    if start:
        steps.append([python, str(ROOT / "app.py")])
    return steps


def torch_installed(venv: Path) -> bool:
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode == 0


class Unreachable(Exception):
    """An index set-up needs cannot be reached; the message says what to do."""


def torch_index(cpu_index: str | None, package_index: str) -> str | None:
    """Where torch comes from: `cpu_index` (None: the CPU build is not wanted) where it can be reached, else the
    regular package index (None, with one line saying so). Raises Unreachable when the package index, which the
    project's requirements need, cannot be reached."""
    cpu_ok = cpu_index is not None and reachable(cpu_index)
    if not reachable(package_index):
        which = f"the package index ({package_index})"
        if cpu_index is not None and not cpu_ok:
            which = f"neither the CPU wheel index ({cpu_index}) nor {which}"
        raise Unreachable(
            f"{which[0].upper()}{which[1:]} can be reached: connect this machine to the internet, or set "
            "PIP_INDEX_URL to a package index it can reach, then run install.py again."
        )
    if cpu_index is not None and not cpu_ok:
        print(f"The CPU wheel index {cpu_index} cannot be reached; torch comes from the regular package index.")
    return cpu_index if cpu_ok else None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Set up .venv with the torch build that fits this machine, then start.")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--cpu", action="store_true", help="torch's CPU build even where there is an NVIDIA GPU")
    which.add_argument("--cuda", action="store_true", help="torch's CUDA build even where no GPU is found")
    p.add_argument("--no-start", action="store_true", help="set up only; do not start the studio")
    p.add_argument("--venv", default=str(ROOT / ".venv"), help="where the virtual environment goes (.venv)")
    p.add_argument("--torch-index", default=CPU_INDEX, help=f"where torch's CPU build comes from ({CPU_INDEX})")
    args = p.parse_args(argv)

    venv = Path(args.venv)
    gpu = args.cuda or (not args.cpu and has_nvidia_gpu())
    has_torch = torch_installed(venv)
    package_index = os.environ.get("PIP_INDEX_URL") or PACKAGE_INDEX
    try:
        index = torch_index(None if gpu or has_torch else args.torch_index, package_index)
    except Unreachable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    build = "kept (already installed)" if has_torch else ("CUDA build" if gpu else "CPU build")
    build = build if has_torch or gpu or index else "from the regular package index"
    print(f"{'NVIDIA GPU found' if gpu else 'No NVIDIA GPU found'}: torch {build}.", flush=True)
    for step in commands(venv, gpu, venv.exists(), has_torch, not args.no_start, index):
        print("+ " + " ".join(step), flush=True)
        if not args.dry_run and subprocess.run(step).returncode != 0:
            print("error: that step failed; see pip's message above, then run install.py again.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
