"""Where the bundled files are: the demo model and the ImageNet class names.

An installed package carries the demo model as the package `var_edit_assets`; a checkout that
is not installed finds it in its own assets/ folder.
"""

from __future__ import annotations

from importlib import resources
from importlib.util import find_spec
from pathlib import Path


def demo_dir() -> Path:
    """The folder holding the demo model files (vae/var safetensors, classes.json, defaults.json)."""
    if find_spec("var_edit_assets") is not None:
        return Path(str(resources.files("var_edit_assets"))) / "demo"
    return Path(__file__).resolve().parent.parent / "assets" / "demo"


def imagenet_classes_file() -> Path:
    """var_core's ImageNet class list (JSON)."""
    return Path(str(resources.files("var_core"))) / "imagenet_classes.json"
