"""`python -m var_core`: inspect a checkpoint, list the published models, fetch one.

python -m var_core inspect FILE          what a checkpoint is, as JSON
python -m var_core models [--hub]        the published models, their sizes, which are here
python -m var_core fetch d16 [--offline] download what d16 lacks (progress bar), print the paths (a published
                                         Infinity: the model folder made of links to them)
"""

from __future__ import annotations

import argparse
import json
import sys

from .loading import CheckpointError, describe, read_checkpoint
from .zoo import ZOO, catalog, fetch, format_size, model_folder


def _inspect(path: str) -> int:
    state, meta, name = read_checkpoint(path)
    info = {"file": name, **describe(state)}
    if meta.get("patch_nums"):
        info["patch_nums"] = meta["patch_nums"]
    print(json.dumps(info, indent=2))
    return 0


def _models(ask_hub: bool) -> int:
    width = max(len(name) for name in ZOO)
    print(f"{'name':{width}s} {'image':>5s} {'params':>7s} {'download':>9s}  files")
    for card in catalog(ask_hub=ask_hub):
        files = ", ".join(f"{f.filename} ({'here' if f.present else format_size(f.size)})" for f in card.files)
        need = format_size(card.download_bytes) if card.download_bytes else "-"
        print(f"{card.name:{width}s} {card.resolution:5d} {card.parameters / 1e9:6.2f}B {need:>9s}  {files}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m var_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="print kind, depth, width, classes, schedule and parameters")
    inspect.add_argument("file")
    models = sub.add_parser("models", help="list the published models, their sizes and which files are here")
    models.add_argument("--hub", action="store_true", help="ask the hub for the sizes of missing files")
    get = sub.add_parser("fetch", help="download a published model's missing files into the Hugging Face cache")
    get.add_argument("name", choices=list(ZOO))
    get.add_argument("--offline", action="store_true", help="never touch the network (as HF_HUB_OFFLINE=1)")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            return _inspect(args.file)
        if args.command == "models":
            return _models(args.hub)
        offline = True if args.offline else None
        paths = [model_folder(args.name, True, offline)] if ZOO[args.name].in_folder else fetch(args.name, offline)
        for path in paths:
            print(path)
        return 0
    except CheckpointError as e:
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
