"""`pip install .` gives a working package: from any folder the demo model loads from the installed
package data, and the console scripts print their usage.

The slow packaging test (about 40 s): marked `slow`, and it runs in the normal `python -m pytest -q`.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

# Top-level entries of the checkout the wheel never needs (large, or build output of earlier builds).
NOT_COPIED = {".git", ".venv", "build", "dist", "tests", "data", "runs", ".cache", "test-artifacts"}


def _not_copied(folder: str, names: list[str]) -> set[str]:
    top = Path(folder).resolve() == ROOT
    return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in NOT_COPIED)}


class Installed(NamedTuple):
    env_dir: Path  # a new virtual environment holding the project installed from its wheel
    env: dict[str, str]  # the environment variables to run it with
    source: Path  # the copy of the checkout the wheel was built from


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The project built as a wheel and installed into a new virtual environment."""
    tmp = tmp_path_factory.mktemp("install")
    # Built from a copy, so the checkout gets no build/ or egg-info and stale build output cannot enter the wheel.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_not_copied)
    env_dir = tmp / "venv"
    # Reuse this environment's torch, gradio ... (its site-packages, after the new one's own, without
    # running its .pth files, so an editable install of the checkout stays out); install the project as a wheel.
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    inner = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                           text=True, check=True, timeout=120).stdout.strip()  # fmt: skip
    (Path(inner) / "outer-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, source],
        check=True, env=env, cwd=tmp, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("var_edit-*.whl")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, env=env, cwd=tmp,
                   timeout=300)  # fmt: skip
    return Installed(env_dir, env, source)


def _help(env_dir: Path, env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([env_dir / "bin" / script, "--help"], env=env, cwd=env_dir.parent, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_wheel_install_works_from_any_folder(installed: Installed) -> None:
    env_dir, env, source = installed
    # The outer environment may hold an editable install of the checkout: the wheel must win.
    code = (
        "import editing; from editing import Editor; from editing.resources import demo_dir; "
        "e = Editor.from_pretrained('demo', device='cpu'); print(e.resolution, editing.__file__, demo_dir(), sep='|')"
    )
    out = subprocess.run([env_dir / "bin" / "python", "-c", code], env=env, cwd=env_dir.parent, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    resolution, module, demo = out.stdout.strip().splitlines()[-1].split("|")
    assert resolution == "64"
    assert Path(module).resolve().is_relative_to(env_dir.resolve()), module
    assert Path(demo).resolve().is_relative_to(env_dir.resolve()), demo
    shipped = {p.name for p in Path(demo).iterdir()}
    assert {"vae.safetensors", "var.safetensors", "classes.json", "defaults.json"} <= shipped
    assert not any(name.endswith(".png") for name in shipped), shipped  # the sample grids stay in the checkout
    # Every module of the packages ships (a new subpackage must be added to pyproject.toml's package list).
    site_dir = Path(module).parent.parent
    for package in ("var_core", "editing", "studio", "training"):
        for path in (source / package).rglob("*.py"):
            assert (site_dir / path.relative_to(source)).is_file(), f"{path.relative_to(source)} is not in the wheel"
    assert (site_dir / "var_core" / "imagenet_classes.json").is_file()
    run = _help(env_dir, env, "var-edit")
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]


def test_studio_script(installed: Installed) -> None:
    run = _help(installed.env_dir, installed.env, "var-edit-studio")
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]


def test_train_script(installed: Installed) -> None:
    run = _help(installed.env_dir, installed.env, "var-edit-train")
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]
