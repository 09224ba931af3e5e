#!/usr/bin/env bash
# Create or refresh one service's virtual environment under .venv/<service> from its lock file.
#
#   scripts/install-env.sh captioner
#
# Installs with uv (bootstrapped into .venv/tools by the Makefile). CPU torch is taken from a
# local wheel folder when this machine has one (WEAVEWAVE_WHEELS, default /opt/wheels), otherwise
# from PyTorch's own CPU wheel index. Everything stays inside the checkout, uv's cache included.
set -euo pipefail

service=${1:?usage: install-env.sh SERVICE}
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/$service"
uv="$root/.venv/tools/bin/uv"
src="$root/services/$service"
[ -d "$src" ] || src="$root/$service"          # the gateway lives at the top level
lock="$src/requirements-cpu.lock"
export UV_CACHE_DIR="${UV_CACHE_DIR:-$root/.cache/uv}"

wheels=${WEAVEWAVE_WHEELS:-/opt/wheels}
if compgen -G "$wheels/torch-*+cpu-*.whl" >/dev/null; then
  torch_source=(--find-links "$wheels")
else
  torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu)
fi

"$uv" venv --quiet --allow-existing --python 3.11 "$venv"
"$uv" pip install --quiet --python "$venv/bin/python" --compile-bytecode \
  --index-strategy unsafe-best-match "${torch_source[@]}" -r "$lock"
"$uv" pip install --quiet --python "$venv/bin/python" --no-deps \
  -e "$root" -e "$src"

if [ -x "$src/post-install.sh" ]; then
  "$src/post-install.sh" "$venv"
fi
touch "$venv/.installed"
