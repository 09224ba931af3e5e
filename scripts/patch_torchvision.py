"""Let PyPI's CUDA torchvision import beside CPU torch (idempotent).

Its `_meta_registrations.py` registers fake kernels for `torchvision::nms` / `qnms` without
checking that the C ops library loaded; with CPU torch it did not, so the import fails with
"operator torchvision::nms does not exist". Guarding the two decorators keeps every pure-Python
part (the transforms Qwen's image and video processors use) working.
"""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

TARGET = Path(sysconfig.get_paths()["purelib"]) / "torchvision" / "_meta_registrations.py"
PATTERN = re.compile(r'^@torch\.library\.register_fake\("torchvision::(q?nms)"\)', re.MULTILINE)
GUARDED = (
    r'@(torch.library.register_fake("torchvision::\1") '
    r"if torchvision.extension._has_ops() else (lambda f: f))"
)


def main() -> None:
    if not TARGET.exists():
        return
    source = TARGET.read_text()
    patched = PATTERN.sub(GUARDED, source)
    if patched != source:
        TARGET.write_text(patched)


if __name__ == "__main__":
    main()
