"""What audiocraft imports but cannot load beside CPU torch 2.13, supplied in torch alone.

audiocraft 1.4 imports `xformers.ops` at module level (MusicGen's `memory_efficient` layers
use it only as a marker; attention itself runs on torch's SDPA) and `torchaudio` at module level
(text-to-music needs none of it; chroma needs a spectrogram). PyPI's torchaudio is built for
another torch and its C++ ops fail to load. `install()` registers small replacements, only for
the packages that fail to import: a real installation (the GPU image) is always preferred.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from typing import Any

import torch

from composer.spectrogram import Spectrogram


class _LowerTriangularMask:
    """xformers' causal-mask marker; audiocraft passes it on to torch's SDPA as `is_causal`."""


def _memory_efficient_attention(*_: Any, **__: Any) -> torch.Tensor:
    raise NotImplementedError("xformers attention is not available; audiocraft uses torch SDPA")


class _Unavailable:
    def __init__(self, *_: Any, **__: Any) -> None:
        raise ImportError("this torchaudio feature is not available beside CPU torch 2.13")


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    module.__dict__.update(attributes)

    def missing(attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Unavailable

    module.__getattr__ = missing  # type: ignore[method-assign]
    return module


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except (ImportError, OSError, RuntimeError):
        sys.modules.pop(name, None)
        return False
    return True


def install() -> None:
    """Register the replacements for whichever of xformers and torchaudio cannot be imported."""
    if not _importable("xformers.ops"):
        ops = _module(
            "xformers.ops",
            LowerTriangularMask=_LowerTriangularMask,
            unbind=torch.unbind,
            memory_efficient_attention=_memory_efficient_attention,
        )
        sys.modules["xformers"] = _module("xformers", ops=ops)
        sys.modules["xformers.ops"] = ops
    if not _importable("torchaudio"):
        transforms = _module("torchaudio.transforms", Spectrogram=Spectrogram)
        filtering = _module("torchaudio.functional.filtering")  # training losses only
        functional = _module("torchaudio.functional", filtering=filtering)
        functional.__path__ = []  # a package: `torchaudio.functional.filtering` imports
        sys.modules["torchaudio"] = _module(
            "torchaudio", transforms=transforms, functional=functional
        )
        sys.modules["torchaudio.transforms"] = transforms
        sys.modules["torchaudio.functional"] = functional
        sys.modules["torchaudio.functional.filtering"] = filtering
