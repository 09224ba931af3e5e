#!/usr/bin/env bash
# audiocraft pins torch 2.1, xformers and av 11 (no wheel for Python 3.11): install it without
# its pins; its runtime dependencies come from the lock file. PyPI's `audiocraft` stops at 1.3.0
# (2024), before MusicGen-Style; `tts-webui-audiocraft` 1.4.0a2 publishes audiocraft's main
# branch (the same `audiocraft` package, 1.4.0a2) with it.
set -euo pipefail
venv=${1:?usage: post-install.sh VENV}
uv="$(dirname "$0")/../../.venv/tools/bin/uv"
"$uv" pip install --quiet --python "$venv/bin/python" --no-deps tts-webui-audiocraft==1.4.0a2
"$venv/bin/python" -c "from composer.backends.audiocraft_compat import install; install(); import audiocraft.models"
