"""Pure pieces of the composer: sampling, the delay pattern, encoders, the limiter."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import torch

from composer.codec.sampling import sample
from composer.codec.streaming import undelay
from composer.encode import open_encoder
from composer.generation import GenerationParams, GenerationRequest, Melody
from composer.scheduler import compatible
from weavewave_common.protocol import AudioFormat


def test_undelay_reads_each_codebook_at_its_offset() -> None:
    # ids[b, k, t]: codebook k of frame f sits at column 1 + f + k.
    frames = torch.arange(12).reshape(4, 3)  # [K=4, F=3]
    ids = torch.full((1, 4, 1 + 3 + 3), -1)
    for k in range(4):
        ids[0, k, 1 + k : 1 + k + 3] = frames[k]
    assert torch.equal(undelay(ids, [0, 1, 2, 3])[0], frames)
    assert undelay(ids[:, :, :3], [0, 1, 2, 3]).shape == (1, 4, 0)


def test_sampling_is_reproducible_and_respects_top_k() -> None:
    logits = torch.randn(8, 50, generator=torch.Generator().manual_seed(0))
    params = GenerationParams(duration_s=1, seed=3, top_k=5)
    first = sample(logits, params, torch.Generator().manual_seed(3))
    again = sample(logits, params, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    top5 = torch.topk(logits, 5).indices
    assert all(first[i] in top5[i] for i in range(8))
    greedy = sample(
        logits, GenerationParams(duration_s=1, seed=3, temperature=0), torch.Generator()
    )
    assert torch.equal(greedy, logits.argmax(-1))
    nucleus = GenerationParams(duration_s=1, seed=3, top_k=0, top_p=1e-6)
    assert torch.equal(sample(logits, nucleus, torch.Generator().manual_seed(1)), logits.argmax(-1))


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_encoders_stream_bytes_that_decode_to_the_full_length(fmt: AudioFormat) -> None:
    rate, total = 32000, 3 * 32000
    encoder = open_encoder(fmt, rate, 1, total)
    tone = (0.3 * np.sin(np.arange(total) * 2 * np.pi * 440 / rate)).astype(np.float32)[None]
    parts = [encoder.encode(tone[:, i : i + 16000]) for i in range(0, total, 16000)]
    parts.append(encoder.close())
    assert sum(1 for p in parts[:-1] if p) >= 3  # bytes flow while audio is still coming
    with av.open(io.BytesIO(b"".join(parts)), mode="r") as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
        assert container.streams.audio[0].rate == encoder.sample_rate
    seconds = decoded / encoder.sample_rate
    slack = 0.08 if fmt is AudioFormat.MP3 else 0.02  # MP3: the encoder's priming and padding
    assert abs(seconds - 3.0) <= slack


def test_wav_header_announces_the_exact_length() -> None:
    encoder = open_encoder(AudioFormat.WAV, 32000, 1, 32000)
    data = encoder.encode(np.zeros((1, 32000), np.float32)) + encoder.close()
    assert len(data) == 44 + 64000
    assert int.from_bytes(data[40:44], "little") == 64000


def test_batches_share_guidance_batch_group_and_melody_presence() -> None:
    def row(
        guidance: float = 3.0, group: int | None = 5, melody: bool = False
    ) -> GenerationRequest:
        clip = Melody(np.zeros(100, dtype=np.float32), 32000) if melody else None
        params = GenerationParams(duration_s=1.0, seed=1, guidance=guidance)
        return GenerationRequest("x", params, clip, group)

    assert compatible(row(), row())
    assert not compatible(row(), row(guidance=4.0))
    assert not compatible(row(), row(group=6))
    assert not compatible(row(), row(melody=True))
    assert compatible(row(group=None, melody=True), row(group=None, melody=True))


def test_undelay_reads_stereo_pairs_at_their_shared_delay() -> None:
    """musicgen-stereo: codebooks 2c and 2c+1 (left, right) both wait c steps."""
    delays = [0, 0, 1, 1, 2, 2, 3, 3]
    frames = torch.arange(24).reshape(8, 3)
    ids = torch.full((1, 8, 1 + 3 + 3), -1)
    for k, d in enumerate(delays):
        ids[0, k, 1 + d : 1 + d + 3] = frames[k]
    assert torch.equal(undelay(ids, delays)[0], frames)


def test_a_vanishing_temperature_is_greedy_not_an_overflow() -> None:
    """6e-207 is 0 in float32: dividing by it gave inf logits and NaN probabilities, and the
    stream broke (found by the contract fuzzer)."""
    logits = torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
    tiny = GenerationParams(duration_s=1, seed=1, temperature=6.0047409720021954e-207)
    assert torch.equal(sample(logits, tiny, torch.Generator().manual_seed(1)), logits.argmax(-1))
