"""Where the bundled files are: the demo model and the ImageNet class names."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path


def demo_dir() -> Path:
    """The folder holding the demo model (installed package data, or the checkout's assets/demo)."""
    if importlib.util.find_spec("var_edit_assets") is not None:
        return Path(str(resources.files("var_edit_assets") / "demo"))
    return Path(__file__).resolve().parent.parent / "assets" / "demo"


def imagenet_classes_file() -> Path:
    """var_core's ImageNet class list (JSON)."""
    return Path(str(resources.files("var_core") / "imagenet_classes.json"))
