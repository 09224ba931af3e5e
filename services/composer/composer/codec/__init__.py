"""Codec helpers both paths use: MusicGen's delay pattern undone and codes decoded chunk by
chunk (`streaming`), and per-row seeded sampling without host syncs (`sampling`)."""
