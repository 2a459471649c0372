#!/usr/bin/env bash
# The whole test suite: Rust kernels (cargo test) then TypeScript (vitest, every backend).
# In CI (CI=true) every backend must load: a missing backend fails the run instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
echo "== cargo test (ac-kernels)" >&2
cargo test -p ac-kernels --features parallel --release
echo "== vitest" >&2
npx vitest run
