"""`python -m captioner.tiny OUT_DIR [--kind vl|omni] ...`: build one tiny model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from captioner.tiny.vlm import SHAPES

    parser = argparse.ArgumentParser(description="Build a tiny captioner model, random weights.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--kind", choices=["vl", "omni"], default="vl")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="vl only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.kind == "omni":
        from captioner.tiny import omni

        omni.build(args.out, args.seed)
    else:
        from captioner.tiny import vlm

        vlm.build(args.out, args.shape, args.seed)


if __name__ == "__main__":
    main()
