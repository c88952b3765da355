"""`python -m var_core inspect FILE`: print what a checkpoint is, as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from .loading import CheckpointError, describe, read_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m var_core")
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="print kind, depth, width, classes, schedule and parameters")
    inspect.add_argument("file")
    args = parser.parse_args(argv)
    try:
        state, meta, name = read_checkpoint(args.file)
    except CheckpointError as e:
        print(e, file=sys.stderr)
        return 1
    info = {"file": name, **describe(state)}
    if meta.get("patch_nums"):
        info["patch_nums"] = meta["patch_nums"]
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
