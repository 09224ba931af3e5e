"""The judge: what a piece of audio measures (tempo, key, loudness, flaws) and how well that
agrees with what was asked. Pure functions over samples, run off the event loop."""
