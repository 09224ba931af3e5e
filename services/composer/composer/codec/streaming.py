"""Codes to audio, chunk by chunk, with a bounded decode window (cost linear in length).

MusicGen's codec (EnCodec) turns codebook frames into audio. Re-decoding the whole prefix for
every chunk is quadratic; instead each chunk decodes its own frames plus `context` frames before
them (to warm the codec's convolutions and LSTM) and up to `lookahead` frames after them (its
convolutions are not causal), and keeps only the samples of its own frames. The result matches a
whole-clip decode closely (the test bounds the difference); it is not bit-exact, because the
LSTM's memory is truncated to the context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

LOOKAHEAD_FRAMES = 4
"""Frames decoded after a chunk's own: the codec's convolutions look that far ahead."""

Decode = Callable[[torch.Tensor], torch.Tensor]
"""codes [K, F] (long) -> audio [C, F * hop] (float)."""


def undelay(ids: torch.Tensor, delays: Sequence[int]) -> torch.Tensor:
    """Undo MusicGen's delay pattern: ids [B, K, T] (column 0 = start token) -> codes [B, K, F].

    Codebook k of frame f sits at column 1 + f + delays[k] (mono: delay k; stereo: the left and
    right codebooks of a level share one), so F = T - 1 - max(delays) frames are complete.
    """
    frames = ids.shape[-1] - 1 - max(delays)
    if frames <= 0:
        return ids[:, :, :0]
    return torch.stack([ids[:, k, 1 + d : 1 + d + frames] for k, d in enumerate(delays)], dim=1)


@dataclass(frozen=True)
class Cut:
    """What one chunk decodes: codes [K, F] (context, the chunk's own frames, lookahead), and
    which of the decoded samples are the chunk's own."""

    codes: torch.Tensor
    start_sample: int
    stop_sample: int

    def audio(self, decode: Decode) -> torch.Tensor:
        """The chunk's samples, float32 [C, N], on the codec's device."""
        return decode(self.codes)[:, self.start_sample : self.stop_sample].float()


class RowDecoder:
    """Emits the audio of one row's growing code sequence in chunks of `chunk` frames.

    `next_cut`/`last_cut` only decide what a chunk decodes (the engine decodes it on another
    thread); `update`/`finish` also decode it, here and now, and bring it to the host."""

    def __init__(
        self,
        decode: Decode | None,
        hop: int,
        chunk: int,
        context: int,
        lookahead: int,
        start: int = 0,
    ) -> None:
        self._decode = decode
        self._hop = hop
        self._chunk = chunk
        self._context = context
        self._lookahead = lookahead
        self.emitted = start
        """Frames whose audio has been emitted (frames before `start` belong to a prompt)."""

    def next_cut(self, codes: torch.Tensor, limit: int) -> Cut | None:
        """The next whole chunk of newly complete frames, or None if not enough yet.

        Frames from `limit` on are another row's business (a longer neighbour in the batch keeps
        generating): they are cut before anything is decoded, so a row's audio is the same
        alone or batched, to the last frame."""
        codes = codes[:, :limit]
        end = codes.shape[-1] - self._lookahead
        if end - self.emitted < self._chunk:
            return None
        return self._cut(codes, end)

    def last_cut(self, codes: torch.Tensor, limit: int) -> Cut | None:
        """Every frame not yet emitted, up to `limit` frames."""
        codes = codes[:, :limit]
        end = codes.shape[-1]
        if end <= self.emitted:
            return None
        return self._cut(codes, end)

    def update(self, codes: torch.Tensor, limit: int) -> npt.NDArray[np.float32] | None:
        """`next_cut`, decoded and on the host."""
        return self._host(self.next_cut(codes, limit))

    def finish(self, codes: torch.Tensor, limit: int) -> npt.NDArray[np.float32] | None:
        """`last_cut`, decoded and on the host."""
        return self._host(self.last_cut(codes, limit))

    def _host(self, cut: Cut | None) -> npt.NDArray[np.float32] | None:
        if cut is None:
            return None
        assert self._decode is not None, "a decoder without a codec only cuts"
        samples: npt.NDArray[np.float32] = cut.audio(self._decode).cpu().numpy()
        return samples

    def _cut(self, codes: torch.Tensor, end: int) -> Cut:
        first = max(0, self.emitted - self._context)
        last = min(codes.shape[-1], end + self._lookahead)
        cut = Cut(
            codes[:, first:last],
            start_sample=(self.emitted - first) * self._hop,
            stop_sample=(end - first) * self._hop,
        )
        self.emitted = end
        return cut
