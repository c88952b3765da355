"""Build the emoji image dataset (Noto Emoji + Twemoji) used to train the demo VAR model.

Usage::

    python -m training.build_emoji_dataset --out data/emoji [--cache .cache/emoji-npm]
        [--size 64] [--val-fraction 0.1] [--seed 0] [--skin-tones | --no-skin-tones]

Writes ``<out>/{train,val}/<class-slug>/<set>_<codepoints>.png`` (RGB on white),
``<out>/classes.json`` and ``<out>/README.txt``. Classes are emoji-datasource top-level
categories; both artworks (and skin-tone variants) of an emoji share one split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from training.image_folder import load_rgb

# Artwork set -> (npm package, pinned version). Bump deliberately: it changes the dataset.
PACKAGES: dict[str, tuple[str, str]] = {
    "google": ("emoji-datasource-google", "16.0.0"),
    "twitter": ("emoji-datasource-twitter", "16.0.0"),
}
ATTRIBUTION = (
    (
        "Noto Emoji artwork: Copyright Google Inc., licensed under the Apache License 2.0 "
        "(https://github.com/googlefonts/noto-emoji)."
    ),
    (
        "Twemoji graphics: Copyright Twitter, Inc and other contributors, licensed under CC-BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/, https://github.com/twitter/twemoji)."
    ),
    (
        "Emoji metadata and 64px PNG exports: iamcal/emoji-data npm packages "
        "(emoji-datasource-google, emoji-datasource-twitter), MIT licence."
    ),
    "Images were composited onto white and possibly resized; otherwise unmodified.",
)
SOURCE_SIZE = 64
SPLITS = ("train", "val")


@dataclass(frozen=True)
class EmojiImage:
    """One artwork image: ``split_key`` is the base emoji's unified code points."""

    artwork: str
    category: str
    split_key: str
    path: Path


def slugify(name: str) -> str:
    """Filesystem-safe slug, e.g. ``"Smileys & Emotion"`` -> ``"smileys_emotion"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def is_val(split_key: str, val_fraction: float, seed: int) -> bool:
    """Deterministic split: hash ``seed:split_key`` to a number in [0, 1)."""
    digest = hashlib.sha256(f"{seed}:{split_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def package_dir(cache: Path, package: str) -> Path:
    """Install location of an npm package inside the cache prefix."""
    return cache / "node_modules" / package


def ensure_packages(cache: Path) -> None:
    """``npm install`` the pinned emoji-datasource packages into ``cache`` unless present."""
    missing = []
    for package, version in PACKAGES.values():
        manifest = package_dir(cache, package) / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text())["version"] != version:
            missing.append(f"{package}@{version}")
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is required to download the emoji packages")
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        npm,
        "install",
        "--prefix",
        str(cache),
        "--no-audit",
        "--no-fund",
        "--save-exact",
        *missing,
    ]
    print("running:", " ".join(cmd))
    subprocess.run(cmd, check=True)


def collect_images(cache: Path, skin_tones: bool) -> list[EmojiImage]:
    """List every available 64px image of every pinned artwork set."""
    images: list[EmojiImage] = []
    for artwork, (package, _) in PACKAGES.items():
        root = package_dir(cache, package)
        img_dir = root / "img" / artwork / str(SOURCE_SIZE)
        has_img = f"has_img_{artwork}"
        for emoji in json.loads((root / "emoji.json").read_text(encoding="utf-8")):
            variants = [emoji]
            if skin_tones:
                variants += list((emoji.get("skin_variations") or {}).values())
            for variant in variants:
                path = img_dir / variant["image"]
                if variant.get(has_img) and path.is_file():
                    images.append(EmojiImage(artwork, emoji["category"], emoji["unified"], path))
    return images


def write_readme(
    out: Path,
    counts: Counter[tuple[str, str]],
    classes: list[dict],
    args: argparse.Namespace,
    dropped: dict[str, int],
) -> str:
    """Write ``out/README.txt`` (attribution + counts) and return the counts table."""
    lines = [f"{'class':<20} {'train':>6} {'val':>6}"]
    for c in classes:
        lines.append(f"{c['slug']:<20} {counts[('train', c['slug'])]:>6} {counts[('val', c['slug'])]:>6}")
    totals = [sum(n for (s, _), n in counts.items() if s == split) for split in SPLITS]
    lines.append(f"{'total':<20} {totals[0]:>6} {totals[1]:>6}")
    table = "\n".join(lines)
    versions = ", ".join(f"{p}@{v}" for p, v in PACKAGES.values())
    dropped_text = ", ".join(f"{name} ({n} images)" for name, n in dropped.items()) or "none"
    readme = "\n".join(
        [
            "Emoji dataset for the VAR demo model.",
            "",
            "Licences / attribution:",
            *(f"- {line}" for line in ATTRIBUTION),
            "",
            f"Source packages: {versions}",
            (
                f"Options: size={args.size} val_fraction={args.val_fraction} seed={args.seed} "
                f"skin_tones={args.skin_tones} min_class_images={args.min_class_images}"
            ),
            f"Dropped categories (< {args.min_class_images} images): {dropped_text}",
            "",
            "Images per class and split:",
            table,
            "",
        ]
    )
    (out / "README.txt").write_text(readme, encoding="utf-8")
    return table


def build(args: argparse.Namespace) -> None:
    """Build the dataset described by the parsed command-line ``args``."""
    cache, out = Path(args.cache), Path(args.out)
    ensure_packages(cache)
    images = collect_images(cache, args.skin_tones)
    per_category = Counter(img.category for img in images)
    dropped = {name: n for name, n in sorted(per_category.items()) if n < args.min_class_images}
    kept = sorted(set(per_category) - set(dropped), key=slugify)
    slugs = {name: slugify(name) for name in kept}
    if len(set(slugs.values())) != len(slugs):
        raise ValueError(f"category slugs collide: {slugs}")
    classes = [{"index": i, "slug": slugs[name], "name": name} for i, name in enumerate(kept)]

    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
        for slug in slugs.values():
            (out / split / slug).mkdir(parents=True)
    counts: Counter[tuple[str, str]] = Counter()
    for img in tqdm([i for i in images if i.category in slugs], desc="images", unit="img"):
        split = "val" if is_val(img.split_key, args.val_fraction, args.seed) else "train"
        slug = slugs[img.category]
        load_rgb(img.path, args.size).save(out / split / slug / f"{img.artwork}_{img.path.name}")
        counts[(split, slug)] += 1

    (out / "classes.json").write_text(json.dumps(classes, indent=2) + "\n", encoding="utf-8")
    table = write_readme(out, counts, classes, args, dropped)
    if dropped:
        print(
            "dropped categories:",
            ", ".join(f"{k} ({v} images)" for k, v in dropped.items()),
        )
    print(table)
    print(f"wrote {out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output dataset folder")
    parser.add_argument("--cache", default=".cache/emoji-npm", help="npm prefix for the emoji packages")
    parser.add_argument("--size", type=int, default=SOURCE_SIZE, help="output image side in pixels")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="fraction of emoji in val/")
    parser.add_argument("--seed", type=int, default=0, help="seed mixed into the split hash")
    parser.add_argument(
        "--skin-tones",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also include skin-tone variants (same split as their base emoji)",
    )
    parser.add_argument(
        "--min-class-images",
        type=int,
        default=100,
        help="drop categories with fewer images than this",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    build(parse_args(argv))


if __name__ == "__main__":
    main()
