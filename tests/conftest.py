"""Suite-wide settings: no model hub, one thread for tiny models, vLLM's light CPU mode; and the
rule that marks every test which starts a model or a process (`make test-fast` runs the rest).

The marks follow from what a test uses, so none can be forgotten: a test that takes a fixture
building a tiny model or starting a service is `engine`; a test in a module that starts
processes itself (`subprocess`, `run_service`, `serve_composer`) is `process`. Tests may also
carry `engine` or `slow` by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

SERVICE_FIXTURES = {"captioner", "composer", "stack", "models", "postgres"}
"""Fixtures that start a service (or build every tiny model); `tiny_*` ones build a model."""

PROCESS_WORDS = ("subprocess", "run_service", "serve_composer", "Popen")


def starts_a_model(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return any(name in SERVICE_FIXTURES or name.startswith("tiny_") for name in names)


def starts_a_process(item: pytest.Item, sources: dict[Path, str]) -> bool:
    path = Path(str(item.path))
    if path not in sources:
        sources[path] = path.read_text() if path.suffix == ".py" else ""
    return any(word in sources[path] for word in PROCESS_WORDS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    sources: dict[Path, str] = {}
    for item in items:
        if starts_a_model(item):
            item.add_marker(pytest.mark.engine)
        if starts_a_process(item, sources):
            item.add_marker(pytest.mark.process)
