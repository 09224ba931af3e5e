"""MusicGen through audiocraft (the reference implementation; production on GPUs).

audiocraft has no streaming API, so the backend hooks its token loop: the language model's
`_sample_next_token` is wrapped for the duration of a batch, which shows every step's input
columns (the delayed code sequence) and lets finished chunks be decoded and emitted while the
rest is generated. Sampling is per row with per-row generators (same audio alone or batched),
by standing in for audiocraft's top-k sampler during the batch. Audio longer than the model's
30 s is continued window by window from the previous window's last codes, as audiocraft's own
extension does, melody included: each window hears the melody from its own start, looped when
the clip is shorter (`MusicGen._generate_tokens`). Runs on CPU torch 2.13 with
`audiocraft_compat` (see there).

MusicGen-Style (`facebook/musicgen-style`) is served here too: its conditioner hears an excerpt
of the clip (`SourceAudio` with `use="style"`: the window `start_s`..`end_s`, cut here, so the
conditioner's own random excerpt has nothing to choose from) and the text, with double
classifier-free guidance when `text_guidance` is set (`cfg_coef_beta`: how much more the text
counts than the style). The excerpt's length is the conditioner's setting: a batch's rows share
it (the composer groups them so).
"""

from __future__ import annotations

import random
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from composer.backends.windowed import RowState, Window, WindowedBackend
from composer.codec.sampling import module_device, sample
from composer.codec.streaming import undelay
from composer.generation import BackendOptions, BatchSink, Melody, Song, SourceAudio


class AudiocraftBackend(WindowedBackend):
    """`MusicBackend` over `audiocraft.models.MusicGen` (hub id or local folder)."""

    def __init__(self, model: Any, options: BackendOptions) -> None:
        super().__init__(
            options,
            sample_rate=int(model.sample_rate),
            hop=int(model.sample_rate // model.frame_rate),
            codebooks=int(model.lm.num_codebooks),
        )
        self._model = model
        # Each codebook's delay, from the model's own pattern (stereo: [0, 0, 1, 1, 2, 2, 3, 3]).
        self._delays = [int(d) for d in model.lm.pattern_provider.delays]

    @classmethod
    def load(cls, options: BackendOptions) -> AudiocraftBackend:
        from composer.backends.audiocraft_compat import install

        install()
        from audiocraft.models import MusicGen

        with torch.serialization.safe_globals(omegaconf_globals()):
            model = MusicGen.get_pretrained(options.model, device=options.device)
        return cls(model, options)

    @property
    def channels(self) -> int:
        return int(self._model.audio_channels)

    @property
    def _audio_conditioner(self) -> str | None:
        """The class of the model's audio conditioner (chroma or style), or None."""
        conditioners = self._model.lm.condition_provider.conditioners
        return type(conditioners["self_wav"]).__name__ if "self_wav" in conditioners else None

    @property
    def supports_melody(self) -> bool:
        return self._audio_conditioner not in (None, "StyleConditioner")

    @property
    def audio_uses(self) -> tuple[str, ...]:
        return ("style",) if self._audio_conditioner == "StyleConditioner" else ()

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        """The description's length in T5 tokens. audiocraft pads a batch's texts to the longest
        and its attention does not mask the padding (as in training), so a shorter text would
        sound different batched than alone; texts of one length never pad each other."""
        conditioner = self._model.lm.condition_provider.conditioners["description"]
        return len(conditioner.t5_tokenizer(description)["input_ids"])

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self._model.compression_model.decode(codes[None], None)[0]

    def _run(self, window: Window, sink: BatchSink) -> None:
        rows = window.rows
        melodies = [self._melody_for(window, row) for row in rows]
        attributes, _ = self._model._prepare_tokens_and_attributes(
            [r.request.description for r in rows],
            None,
            melodies if any(m is not None for m in melodies) else None,
        )
        columns: list[torch.Tensor] = []
        total = window.prompt_frames + window.new_frames

        def on_step(sequence: torch.Tensor) -> None:
            columns.append(sequence)
            sink.progress(len(columns), total + 1 + max(self._delays))
            window.step(sink, undelay(torch.cat(columns, dim=-1), self._delays))

        params = [r.request.params for r in rows]
        excerpt = next(
            (m for r, m in zip(rows, melodies, strict=True) if r.request.source and m is not None),
            None,
        )
        if excerpt is not None:  # the conditioner cuts this many samples (the whole excerpt)
            length = (int(excerpt.shape[-1]) + 0.5) / self.sample_rate
            eval_q = self._model.lm.condition_provider.conditioners["self_wav"].eval_q
            self._model.set_style_conditioner_params(eval_q=eval_q, excerpt_length=length)
        with self._hooked(on_step, params), self._model.autocast:  # fp16 on GPU, as audiocraft
            codes = self._model.lm.generate(
                window.prompt,
                attributes,
                max_gen_len=total,
                use_sampling=True,
                temp=1.0,
                top_k=1,
                top_p=0.0,
                cfg_coef=params[0].guidance,
                cfg_coef_beta=params[0].text_guidance,
            )
        window.finish(sink, codes, self.keep_frames)

    def _melody_for(self, window: Window, row: RowState) -> torch.Tensor | None:
        """The row's melody for this window [C, T] at the model's rate, as audiocraft would
        condition it: the whole clip when one window holds the row, otherwise one window's
        length of it from the window's start time, the clip looped. A style row's excerpt is
        the same in every window."""
        if row.request.source is not None:
            return self._excerpt(row.request.source)
        melody: Melody | None = row.request.melody
        if melody is None:
            return None
        from audiocraft.data.audio_utils import convert_audio

        wav = torch.from_numpy(melody.samples)[None].to(self._model.device)
        wav = convert_audio(wav, melody.sample_rate, self.sample_rate, self.channels)
        if row.total_frames <= self.frames(self._options.window_s):
            return wav
        start = round((row.done_frames - window.prompt_frames) * self._hop)
        positions = torch.arange(start, start + self.samples_for(self._options.window_s))
        return wav[..., positions.to(wav.device) % wav.shape[-1]]

    def _excerpt(self, source: SourceAudio) -> torch.Tensor:
        """The style excerpt [C, T]: the clip (at the model's rate) from `start_s` to `end_s`,
        its length in samples from the window's length alone (so equal windows cut equally)."""
        start, length = source.span_samples(self.sample_rate)
        return torch.from_numpy(source.samples[:, start : start + length]).to(self._model.device)

    @contextmanager
    def _hooked(self, on_step: Callable[[torch.Tensor], None], params: list[Any]) -> Iterator[None]:
        """Watch the token loop's inputs and sample per row, for one `lm.generate` call."""
        from audiocraft.models import lm as lm_module

        lm = self._model.lm
        original_step = lm._sample_next_token
        original_utils = lm_module.utils
        generators = [torch.Generator(device=module_device(lm)) for _ in params]
        for generator, p in zip(generators, params, strict=True):
            generator.manual_seed(p.seed)

        def sample_rows(probs: torch.Tensor, k: int) -> torch.Tensor:  # probs [B, K, card]
            logits = probs.clamp_min(1e-30).log()
            tokens = [sample(logits[b], params[b], generators[b]) for b in range(len(params))]
            return torch.stack(tokens)[..., None]

        def step(sequence: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            on_step(sequence)
            return original_step(sequence, *args, **kwargs)

        lm._sample_next_token = step
        lm_module.utils = types.SimpleNamespace(
            **{**vars(original_utils), "sample_top_k": sample_rows}
        )
        try:
            with _fixed_stem_shift():
                yield
        finally:
            del lm._sample_next_token
            lm_module.utils = original_utils


def omegaconf_globals() -> list[Any]:
    """What the hub's audiocraft packages pickle besides tensors: their config, an OmegaConf
    `DictConfig`. torch >= 2.6 loads with `weights_only=True`, which refuses any class not
    allowed; these (OmegaConf's containers and nodes, and the builtins they hold) are allowed for
    the load, and nothing else is."""
    import collections

    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    return [
        DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, Any,
        dict, list, int, collections.defaultdict,
    ]  # fmt: skip


@contextmanager
def _fixed_stem_shift() -> Iterator[None]:
    """Make the melody's stem separation repeatable, so a seed gives the same music.

    demucs' `apply_model` shifts the clip by a random offset drawn from the global `random`
    module (a test-time augmentation); the chroma, and so the music, would change from call to
    call. The draw comes from a generator seeded the same way for every batch instead.
    """
    try:
        from demucs import apply as demucs_apply
    except ImportError:  # no melody checkpoint can load without demucs; nothing to fix
        yield
        return
    original = demucs_apply.random
    demucs_apply.random = random.Random(0)
    try:
        yield
    finally:
        demucs_apply.random = original
