"""Diffusion composers through diffusers pipelines: a whole clip per denoising, a batch at once.

A diffusion model denoises every row of a batch over the same steps and the same latent length,
so a batch forms at the start (the static `BatchScheduler`), and only requests that cannot change
each other's audio share one: the same duration and steps, the same song metadata (the pipeline
takes bpm, key and time signature once per call) and, for ACE-Step and AudioLDM 2, the same token
lengths (they pad to the batch's longest text, and the padding leaks into a row's audio; Stable
Audio Open and 3 pad every prompt to a fixed length, so any prompts share a batch). The audio
decoder runs in float32 whatever the denoiser's dtype. Each row has its own generator, so a seed
gives the same audio alone or batched. Progress is reported per denoising step; when every row
of a batch is cancelled the callback stops the pipeline at the next step. The audio exists only
once the last step is decoded; it is then streamed in chunks.

Served: ACE-Step (`AceStepPipeline`: songs with lyrics, 48 kHz stereo, up to 10 minutes),
Stable Audio Open (`StableAudioPipeline`: 44.1 kHz stereo, up to 47 s), AudioLDM 2
(`AudioLDM2Pipeline`: 16 kHz mono) and Stable Audio 3 (`StableAudio3Pipeline`: 44.1 kHz stereo,
up to 380 s, decoded in windows).
"""

from __future__ import annotations

from composer.backends.diffusion.ace_step import AceStepBackend
from composer.backends.diffusion.audioldm2 import AudioLDM2Backend
from composer.backends.diffusion.pipeline import PipelineBackend, pipeline_class
from composer.backends.diffusion.stable_audio import StableAudioBackend
from composer.backends.diffusion.stable_audio_3 import StableAudio3Backend
from composer.generation import BackendOptions, MusicBackend

BACKENDS: dict[str, type[PipelineBackend]] = {
    backend.pipeline_class: backend
    for backend in (AceStepBackend, StableAudioBackend, AudioLDM2Backend, StableAudio3Backend)
}


def load_pipeline_backend(options: BackendOptions) -> MusicBackend:
    """The backend for whichever pipeline `options.model` holds."""
    kind = pipeline_class(options.model)
    if kind not in BACKENDS:
        served = ", ".join(sorted(BACKENDS))
        raise ValueError(f"{options.model}: a {kind} is not served (diffusers serves {served}).")
    return BACKENDS[kind].load(options)
