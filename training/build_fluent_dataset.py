"""Build a class folder from Microsoft's Fluent Emoji (flat), a style the demo model never saw.

    npm install --prefix /tmp/fluent @iconify-json/fluent-emoji-flat      # MIT, (c) Microsoft Corporation
    pip install resvg-py                                                   # the SVG rasteriser
    python -m training.build_fluent_dataset \
        --package /tmp/fluent/node_modules/@iconify-json/fluent-emoji-flat --out data/fluent

Writes `<out>/train/<category>/*.png` and `<out>/heldout/<category>/*.png` (every fifth emoji of a category, by
name, is held out) at 64 px on white, with a `classes.json` of display names in each. The categories are the
package's own (metadata.json); People & Body (mostly skin-tone variants) and Flags (8 emoji) are left out.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

from PIL import Image

from training.image_folder import to_rgb_on_white

CATEGORIES = ("Animals & Nature", "Food & Drink", "Objects", "Smileys & Emotion", "Symbols", "Travel & Places")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def rasterise(body: str, width: int, height: int, size: int) -> Image.Image:
    """An Iconify icon body -> RGB picture (size x size) on white."""
    try:
        from resvg_py import svg_to_bytes
    except ImportError as e:
        raise SystemExit("Rasterising the SVGs needs resvg-py: pip install resvg-py") from e
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{size}" height="{size}">{body}</svg>'
    )
    with Image.open(io.BytesIO(bytes(svg_to_bytes(svg_string=svg)))) as img:
        return to_rgb_on_white(img)


def build(package: Path, out: Path, size: int, every: int) -> dict[str, dict[str, int]]:
    """Write the train and held-out folders; returns the picture counts per split and class."""
    icons = json.loads((package / "icons.json").read_text())
    categories = json.loads((package / "metadata.json").read_text())["categories"]
    counts: dict[str, dict[str, int]] = {"train": {}, "heldout": {}}
    for split in counts:
        (out / split).mkdir(parents=True, exist_ok=True)
        names = {slug(c): c for c in CATEGORIES}
        (out / split / "classes.json").write_text(json.dumps(names, indent=2) + "\n")
    for category in CATEGORIES:
        members = sorted(n for n in categories[category] if n in icons["icons"])
        for i, name in enumerate(members):
            icon = icons["icons"][name]
            w, h = icon.get("width", icons.get("width", 16)), icon.get("height", icons.get("height", 16))
            split = "heldout" if i % every == every - 1 else "train"
            folder = out / split / slug(category)
            folder.mkdir(exist_ok=True)
            rasterise(icon["body"], w, h, size).save(folder / f"{name}.png")
            counts[split][category] = counts[split].get(category, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--package", required=True, help="the installed @iconify-json/fluent-emoji-flat folder")
    p.add_argument("--out", default="data/fluent")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--every", type=int, default=5, help="hold out every n-th emoji of a category")
    args = p.parse_args(argv)
    counts = build(Path(args.package), Path(args.out), args.size, args.every)
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
