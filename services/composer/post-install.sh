#!/usr/bin/env bash
# audiocraft 1.3.0 pins torch 2.1, xformers and av 11 (no wheel for Python 3.11): install it
# without its pins; its runtime dependencies come from the lock file.
set -euo pipefail
venv=${1:?usage: post-install.sh VENV}
uv="$(dirname "$0")/../../.venv/tools/bin/uv"
"$uv" pip install --quiet --python "$venv/bin/python" --no-deps audiocraft==1.3.0
"$venv/bin/python" -c "from composer.backends.audiocraft_compat import install; install(); import audiocraft.models"
