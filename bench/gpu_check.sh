#!/usr/bin/env bash
# GPU check, ready to run on a fresh Linux box with one CUDA GPU and python3, from the repository root:
#
#     bash bench/gpu_check.sh [--original PATH_TO_FoundationVision_VAR] [--models DIR] [--json out.json]
#     bash bench/gpu_check.sh --device cpu --small      # a smoke run on the CPU (tests/test_gpu_check.py)
#
# Its models are built in memory on the device (no weight file is written); where torch, numpy, pillow, safetensors,
# huggingface_hub, tqdm and opencv are already importable it needs no network and no pip.
#
# Uses $PYTHON (default python3) as it is when it already imports what the check needs; otherwise makes
# the venv .cache/gpu-check-venv (reusing an installed torch through --system-site-packages, since CUDA wheels are
# large) and pip-installs what is missing. The project itself runs from this folder (PYTHONPATH), so
# nothing is built. Options are those of bench/gpu_check.py (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
NEEDS="import torch, numpy, PIL, safetensors, huggingface_hub, tqdm, cv2"
if ! "$PY" -c "$NEEDS" 2>/dev/null; then
    VENV="${VAR_GPU_VENV:-.cache/gpu-check-venv}"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "gpu_check: making $VENV" >&2
        "$PY" -m venv --system-site-packages "$VENV"
    fi
    PY="$VENV/bin/python"
    if ! "$PY" -c "import torch" 2>/dev/null; then
        echo "gpu_check: installing torch (no torch on this machine)" >&2
        "$PY" -m pip install --quiet torch
    fi
    if ! "$PY" -c "$NEEDS" 2>/dev/null; then
        echo "gpu_check: installing numpy pillow safetensors huggingface_hub tqdm opencv-python-headless" >&2
        "$PY" -m pip install --quiet numpy pillow safetensors huggingface_hub tqdm opencv-python-headless
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" bench/gpu_check.py "$@"
