"""`python -m composer.tiny OUT_DIR [--kind KIND] ...`: build one tiny model (see the package)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

DIFFUSION = ["ace-step", "stable-audio", "audioldm2", "stable-audio-3"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a tiny model with random weights.")
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--kind", choices=["musicgen", "audiocraft", *DIFFUSION], default="musicgen"
    )
    parser.add_argument("--preset", default="tiny", help="tiny, small-shape (or medium-shape)")
    parser.add_argument("--stereo", action="store_true", help="the musicgen-stereo layout")
    parser.add_argument("--melody", action="store_true", help="the musicgen-melody layout")
    parser.add_argument("--style", action="store_true", help="audiocraft: musicgen-style")
    parser.add_argument("--hub-cache", type=Path, help="where hub-cache entries go (demucs, T5)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    if args.style and args.kind != "audiocraft":
        parser.error("--style is an audiocraft package: add --kind audiocraft")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.kind in DIFFUSION:
        from composer.tiny.diffusion import BUILDERS

        BUILDERS[args.kind](args.out, args.seed)
    elif args.kind == "audiocraft":
        from composer.tiny import audiocraft

        audiocraft.build(
            args.out, args.seed, args.hub_cache, args.melody, args.preset, args.stereo, args.style
        )
    else:
        from composer.tiny.musicgen import PRESETS, build

        if args.preset not in PRESETS:
            parser.error(f"--preset: one of {', '.join(sorted(PRESETS))}")
        build(args.out, args.preset, args.seed, args.stereo, args.melody, args.hub_cache)


if __name__ == "__main__":
    main()
