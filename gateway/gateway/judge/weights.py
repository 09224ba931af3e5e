"""The judge's default weighting (its own module: the settings read it without loading the
measuring code)."""

DEFAULT_WEIGHTS = {"tempo": 1.0, "key": 1.0, "duration": 0.5, "cleanliness": 1.0}
"""Tempo and key are what listeners notice and models miss most; a length off by a little
matters less; a clipped or looping take is a take to throw away."""
