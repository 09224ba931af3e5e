"""How many slots the engine gets when `COMPOSER_MAX_BATCH_SIZE=auto`.

On CUDA, from the memory free once the model is loaded:

    slots = min(64, floor((0.85 * free - 2 GiB) / bytes_per_slot))
    bytes_per_slot = layers * 2 (K, V) * heads * head_dim * dtype bytes
                     * (2 rows * cache positions + text tokens)

The 15 % and 2 GiB leave room for the step's activations, the captured graphs' pool, the codec's
decodes and the text encoder. musicgen-medium in float16 at a 30 s window takes about 1.04 GB a
slot (0.89 GB self K/V, 0.15 GB text): an H200 holds the 64-slot cap. Elsewhere (the CPU) it is
`CPU_SLOTS`, the engine's old default.
"""

from __future__ import annotations

import torch

from composer.engine.musicgen import MusicgenStepModel
from composer.engine.slots import SlotCache

CPU_SLOTS = 4
MAX_AUTO_SLOTS = 64
MEMORY_FRACTION = 0.85
HEADROOM_BYTES = 2 * 2**30


def auto_slots(bytes_per_slot: int, device: torch.device) -> int:
    """The slot count `auto` stands for on `device`."""
    if device.type != "cuda":
        return CPU_SLOTS
    free, _ = torch.cuda.mem_get_info(device)
    return slots_for(free, bytes_per_slot)


def slots_for(free_bytes: int, bytes_per_slot: int) -> int:
    """The documented formula (at least one slot: too little memory fails at allocation)."""
    budget = MEMORY_FRACTION * free_bytes - HEADROOM_BYTES
    return max(1, min(MAX_AUTO_SLOTS, int(budget // bytes_per_slot)))


def slot_bytes(model: MusicgenStepModel, positions: int) -> int:
    """`SlotCache.bytes_per_slot` for `model` at `positions` cache positions."""
    text = 0 if model.melody else model.max_text_tokens
    return SlotCache.bytes_per_slot(
        model.layers, model.heads, model.head_dim, positions, text, model.dtype
    )
