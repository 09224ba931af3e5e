"""The batch path: models that generate a whole batch at once (audiocraft's MusicGen, the
diffusion composers), run by the static `BatchScheduler`; and the factory that loads one. The
transformers MusicGen is served by the engine instead (`composer.engine`); the two paths share
only the vocabulary (`composer.generation`) and the codec helpers (`composer.codec`).
"""

from __future__ import annotations

from composer.generation import BackendOptions, MusicBackend


def load_backend(options: BackendOptions) -> MusicBackend:
    """Instantiate a batch backend (audiocraft or diffusers; imported lazily: they pull in
    torch). The transformers model is served by the engine instead
    (`composer.engine.loader`)."""
    backend: MusicBackend
    if options.kind == "audiocraft":
        from composer.backends.audiocraft import AudiocraftBackend

        backend = AudiocraftBackend.load(options)
        return backend
    if options.kind == "diffusers":
        from composer.backends.diffusion import load_pipeline_backend

        backend = load_pipeline_backend(options)
        return backend
    raise ValueError(f"unknown batch backend {options.kind!r}: expected audiocraft or diffusers")
