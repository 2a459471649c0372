#!/usr/bin/env bash
# Installs, only when missing, the system tools that the wasm build needs (see /work/shared/TOOLCHAIN.md):
#   - Debian's rustc-web 1.96 with its std sources and LLVM tools, and binaryen (wasm-opt):
#       rustc-web cargo-web rust-web-src rust-web-llvm binaryen
#   - the lld-N package that /usr/bin/rust-lld points to (rust-web-llvm ships the link but not its target);
#   - wasm-bindgen-cli, at exactly the version crates/wasm pins (`wasm-bindgen = "=X.Y.Z"`).
# Idempotent and fast when everything is present (no network, well under a second). `apt-get update` runs at
# most once, and only when something must be installed. Needs root (or sudo) only to install apt packages;
# needs rustup's (or any) cargo on PATH only to install wasm-bindgen-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# chromium: the HTML-report test renders in a real headless browser; python3-*: golden-value scripts and peer benchmarks.
APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm binaryen chromium python3-numpy python3-scipy python3-sklearn python3-fastcluster python3-threadpoolctl)

say() { printf 'ensure-toolchain: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

APT_UPDATED=0
apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "must install $* but am not root and sudo is missing"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || die "must install $* but apt-get is missing (Debian 12 expected)"
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$@" >&2
}

# 1. apt packages
missing=()
for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

# 2. the lld that rust-lld points to (e.g. /usr/bin/rust-lld -> lld-22, package lld-22)
if [ -L /usr/bin/rust-lld ] && [ ! -e /usr/bin/rust-lld ]; then
  target=$(readlink /usr/bin/rust-lld)
  lld_pkg=$(grep -oE 'lld-[0-9]+' <<<"$target" | head -n1 || true)
  if [ -z "$lld_pkg" ]; then
    # The link names no version: take it from the LLVM that rustc-web was built with.
    llvm=$(/usr/bin/rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
    [ -n "$llvm" ] || die "/usr/bin/rust-lld -> $target is dangling and rustc -vV names no LLVM version"
    lld_pkg="lld-$llvm"
  fi
  apt_install "$lld_pkg"
  [ -e /usr/bin/rust-lld ] || die "/usr/bin/rust-lld -> $target still dangling after installing $lld_pkg"
elif [ ! -e /usr/bin/rust-lld ]; then
  die "/usr/bin/rust-lld is missing although rust-web-llvm is installed"
fi

# 3. wasm-bindgen-cli, the exact version of the crate
wbg=$(sed -n 's/^wasm-bindgen *= *"=\([0-9.]*\)".*/\1/p' crates/wasm/Cargo.toml)
[ -n "$wbg" ] || die 'crates/wasm/Cargo.toml must pin wasm-bindgen exactly (wasm-bindgen = "=X.Y.Z")'
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$wbg" ]; then
  command -v cargo >/dev/null || die "cargo (rustup) is needed to install wasm-bindgen-cli $wbg"
  say "cargo install wasm-bindgen-cli --version $wbg (was: ${have:-none}; takes minutes, cache \$CARGO_HOME to keep it)"
  cargo install wasm-bindgen-cli --version "$wbg" --force  # not --locked: its lock file pins a crate version the registry no longer serves
  have=$(wasm-bindgen --version | awk '{print $2}')
  [ "$have" = "$wbg" ] || die "wasm-bindgen on PATH is $have after installing $wbg (check PATH order)"
fi

say "ok: $(/usr/bin/rustc --version | cut -d' ' -f1-2), rust-lld -> $(readlink /usr/bin/rust-lld), wasm-bindgen $have, $(wasm-opt --version 2>/dev/null | head -n1 || echo 'no wasm-opt')"
