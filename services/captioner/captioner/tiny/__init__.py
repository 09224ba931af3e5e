"""Tiny models of the captioner's real architectures, with random weights, built offline and
byte-identically from a seed: what the tests, the benchmarks and `make demo` run on, since no
model hub can be reached. Test tooling, never imported by the service itself.

- `vlm`: Qwen2.5-VL (tiny, or the 3B/7B shapes for benchmarks);
- `omni`: Qwen2.5-Omni's thinker (text, vision and audio in).

Usage::

    python -m captioner.tiny OUT_DIR [--shape tiny|3b|7b] [--seed 0]
    python -m captioner.tiny OUT_DIR --kind omni [--seed 0]
"""
