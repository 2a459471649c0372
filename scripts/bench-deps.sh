#!/usr/bin/env bash
# Python packages for the end-to-end peer benchmark (benches/e2e_peer.py), from PyPI, into a venv under
# target/bench-venv (git-ignored). For benchmarks only: no test and no CI step needs it.
#   bash scripts/bench-deps.sh            # creates or completes the venv; prints its python path last
# Idempotent: a complete venv is left as it is (a few ms).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${BENCH_VENV:-target/bench-venv}"
PY="$VENV/bin/python"
PKGS=(onnxruntime onnx numpy scipy fastcluster pillow)
if [ -x "$PY" ] && "$PY" -c 'import onnxruntime, onnx, numpy, scipy, fastcluster, PIL' 2>/dev/null; then
  echo "$PY"
  exit 0
fi
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "bench-deps: python3 is required (apt-get install python3 python3-venv)" >&2; exit 1; }
"$PYTHON" -m venv "$VENV" >&2
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$PY" -m pip install --quiet --disable-pip-version-check "${PKGS[@]}" >&2
"$PY" -c 'import onnxruntime, onnx, numpy, scipy, fastcluster, PIL' >&2
echo "$PY"
