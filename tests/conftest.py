"""Suite-wide settings: no model hub, one thread for tiny models, vLLM's light CPU mode."""

from __future__ import annotations

import os
from pathlib import Path

# the `postgres` fixture (a real server; its driver only in the gateway's environment)
pytest_plugins = ["tests.postgres"]

# Set before anything imports huggingface_hub (it reads this once): the tiny audiocraft model's
# T5 text encoder is written here as a hub-cache entry.
os.environ.setdefault(
    "HF_HUB_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "hf-hub")
)

for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_CPU_KVCACHE_SPACE": "1",
}.items():
    os.environ.setdefault(_name, _value)
