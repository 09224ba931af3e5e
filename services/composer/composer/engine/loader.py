"""MusicGen through transformers (`MusicgenForConditionalGeneration`), served by the engine.

The checkpoint is loaded and checked here (`composer.engine.musicgen` refuses what it would serve
wrongly: codebooks that do not fit the codec); generation is the continuous-batching engine's
(`composer.engine`), which steps every request on its own. Melody checkpoints
(`musicgen_melody`) get their chroma extractor from the checkpoint's settings and, with
`melody_stems`, demucs' stem separator (loaded from the model hub like the checkpoint).
"""

from __future__ import annotations

from composer.chroma import ChromaExtractor, ChromaSettings, StemSeparator
from composer.engine.conditions import Conditioner
from composer.engine.core import EngineCore
from composer.engine.musicgen import MusicgenStepModel
from composer.engine.rows import Geometry
from composer.engine.sizing import auto_slots, slot_bytes
from composer.generation import BackendOptions, PlainModel, Song


class TransformersBackend(PlainModel):
    """`ModelInfo` of a transformers MusicGen, and the factory of its engine."""

    def __init__(self, model: MusicgenStepModel, options: BackendOptions) -> None:
        self.model = model
        self.geometry = Geometry(
            codebooks=model.codebooks,
            delays=tuple(model.delays),
            pad=model.pad,
            hop=model.hop,
            sample_rate=model.sample_rate,
            window_s=options.window_s,
            extend_stride_s=options.extend_stride_s,
            chunk_s=options.chunk_s,
            decode_context_s=options.decode_context_s,
        )
        chroma = stems = None
        if model.melody:
            chroma = ChromaExtractor(ChromaSettings.of_checkpoint(options.model))
            if options.melody_stems:
                stems = StemSeparator.load(model.device)
        self.condition = Conditioner(model, self.geometry, chroma, stems)
        """`condition(request)`: what the request conditions on (run it off the step loop)."""

    @classmethod
    def load(cls, options: BackendOptions, max_text_tokens: int = 512) -> TransformersBackend:
        return cls(
            MusicgenStepModel.load(options.model, options.device, options.dtype, max_text_tokens),
            options,
        )

    def engine(
        self,
        slots: int,
        fixed_shapes: bool = False,
        cuda_graphs: bool = False,
        threaded_delivery: bool = False,
    ) -> EngineCore:
        return EngineCore(
            self.model, self.geometry, slots, fixed_shapes, cuda_graphs, threaded_delivery
        )

    def slots(self, setting: int | str) -> int:
        """The engine's slots: `setting`, or for `auto` what the device's memory holds."""
        if setting != "auto":
            return int(setting)
        positions = self.model.prefix_capacity + self.geometry.positions
        return auto_slots(slot_bytes(self.model, positions), self.model.device)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def channels(self) -> int:
        return self.model.channels

    @property
    def supports_melody(self) -> bool:
        return self.model.melody

    @property
    def follows_sections(self) -> bool:
        """A text-conditioned checkpoint swaps a slot's cross-attention text at a section's
        first frame; a melody checkpoint's text is inside its per-window prefix, which the
        engine does not re-cut at section times."""
        return not self.model.melody

    def samples_for(self, seconds: float) -> int:
        return self.geometry.frames(seconds) * self.geometry.hop

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        return None
