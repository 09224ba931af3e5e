"""Hub-cache entries written offline: what a library loads by repository id (demucs'
`htdemucs`, MERT, EnCodec, T5) found as if downloaded, at tiny widths with random weights."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

REVISION = "0" * 40

HTDEMUCS_SIGNATURE = "955717e8"
HTDEMUCS_KWARGS: dict[str, Any] = {
    "sources": ["drums", "bass", "other", "vocals"],
    "audio_channels": 2,
    "samplerate": 44100,
    "channels": 4,
    "depth": 4,
    "nfft": 4096,
    "t_layers": 1,
    "t_heads": 2,
    "t_hidden_scale": 1.0,
    "dconv_comp": 2,
}


def hub_snapshot(cache: Path, repo_id: str) -> Path:
    """An empty snapshot folder for `repo_id` in a hub cache, its `main` ref pointing at it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.rmtree(repo, ignore_errors=True)
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return snapshot


def sort_safetensors_header(path: Path) -> None:
    """Rewrite the JSON header with sorted keys: safetensors writes its metadata in hash-map
    order, which changes from run to run (the builds must be byte-identical)."""
    import json
    import struct

    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.dumps(json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":"))
    encoded = header.encode().ljust(-(-len(header) // 8) * 8, b" ")
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + length :])


def write_htdemucs_cache(cache: Path, seed: int) -> None:
    """A tiny random HTDemucs as demucs 4.1's `htdemucs` hub entry (bag yaml + safetensors)."""
    import json

    import torch
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    snapshot = hub_snapshot(cache, "adefossez/HTDemucs")
    torch.manual_seed(seed)
    model = HTDemucs(**HTDEMUCS_KWARGS)
    with torch.no_grad():  # random biases swamp the input: the chroma would ignore the melody
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.zero_()
    segment = {"_type": "fraction", "numerator": 39, "denominator": 5}  # 7.8 s, as released
    metadata = {
        "klass": "demucs.htdemucs.HTDemucs",
        "args": "[]",
        "kwargs": json.dumps({**HTDEMUCS_KWARGS, "segment": segment}, sort_keys=True),
    }
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    path = snapshot / f"{HTDEMUCS_SIGNATURE}.safetensors"
    save_file(weights, str(path), metadata=metadata)
    sort_safetensors_header(path)
    (snapshot / "htdemucs.yaml").write_text(f"models: ['{HTDEMUCS_SIGNATURE}']\n")
