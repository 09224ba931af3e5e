"""Count what one engine step asks of torch: ATen ops, and the ops that read a value back from
the device (a host sync on a GPU), with a dispatch mode — so the count is exact on the CPU too.

A sync is any op whose result the host must wait for: `item()`/`int()`/`bool()` on a tensor
(`_local_scalar_dense`, `is_nonzero`), ops whose output shape depends on the data (`nonzero`,
`masked_select`, `unique`), `equal`, and `multinomial`, whose kernel checks its input on the
host twice per call. Copies to the host cannot be told apart on the CPU (every tensor is on
it); the engine makes none on its model thread (`PendingAudio` copies without blocking).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

SYNCS = {
    "aten._local_scalar_dense": 1,
    "aten.is_nonzero": 1,
    "aten.item": 1,
    "aten.equal": 1,
    "aten.nonzero": 1,
    "aten.masked_select": 1,
    "aten._unique2": 1,
    "aten.unique_consecutive": 1,
    "aten.multinomial": 2,
}
"""Op name -> the host syncs one call makes on a GPU."""


class DispatchCount(TorchDispatchMode):  # type: ignore[misc]
    """`with DispatchCount() as count: ...`; then `count.ops` (every ATen op by name),
    `count.total` and `count.syncs`."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def syncs(self) -> int:
        return sum(self.ops[name] * cost for name, cost in SYNCS.items())
