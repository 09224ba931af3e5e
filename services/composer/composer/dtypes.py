"""The dtypes a setting may name (`COMPOSER_DTYPE`), shared by both paths."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
