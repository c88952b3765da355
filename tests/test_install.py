"""`pip install .` gives a working package: from any folder the demo model loads from the installed
package data, and the console scripts print their usage."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_install_works_from_any_folder(tmp_path):
    env_dir = tmp_path / "venv"
    # Reuse this environment's torch, gradio ... (its site-packages, after the new one's own, without
    # running its .pth files, so an editable install of the checkout stays out); install the project as a wheel.
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    inner = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    (Path(inner) / "outer-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT],
        check=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("var_edit-*.whl")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, env=env, timeout=300)
    # The outer environment may hold an editable install of the checkout: the wheel must win.
    code = (
        "import editing, var_edit_assets; from editing import Editor; "
        "e = Editor.from_pretrained('demo', device='cpu'); print(e.resolution, editing.__file__, sep='|')"
    )
    out = subprocess.run([python, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    resolution, where = out.stdout.strip().split("|")
    assert resolution == "64"
    assert Path(where).resolve().is_relative_to(env_dir.resolve()), where
    for script in ("var-edit", "var-edit-studio"):
        run = subprocess.run(
            [env_dir / "bin" / script, "--help"], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]
