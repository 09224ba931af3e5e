"""The sentencepiece tokenizer every tiny T5 uses, trained in process on fixed descriptions
(T5's pad/eos/unk convention): the real one cannot be fetched."""

from __future__ import annotations

import io
from pathlib import Path

DESCRIPTIONS = [
    "lofi hip hop beat with dusty drums and mellow piano",
    "epic orchestral soundtrack with soaring strings and brass",
    "calm ambient pads with soft synth textures",
    "upbeat pop song with bright guitars and claps",
    "dark techno with driving kick and acid bass",
    "acoustic folk with fingerpicked guitar and harmonica",
    "smooth jazz with saxophone, upright bass and brushed drums",
    "cinematic piano ballad, slow and emotional",
    "energetic rock with distorted guitars and pounding drums",
    "dreamy synthwave with retro arpeggios, 100 bpm",
    "chill house with warm chords and a steady groove",
    "sad cello solo in a minor key",
    "happy ukulele tune with whistling",
    "tense thriller score with pulsing synths",
    "reggae with offbeat guitar skank and deep bass",
    "classical string quartet, gentle and bright",
    "hip hop instrumental with hard drums and a vinyl sample",
    "relaxing meditation music with bells and drones",
    "funky disco with slap bass and strings, 120 bpm",
    "world music with hand percussion and flute",
]


def train_tokenizer(out: Path) -> list[tuple[str, float]]:
    """A sentencepiece unigram model on fixed descriptions (T5's pad/eos/unk convention)."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(DESCRIPTIONS * 5),
        model_writer=model,
        vocab_size=200,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    (out / "spiece.model").write_bytes(model.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(len(processor))]
