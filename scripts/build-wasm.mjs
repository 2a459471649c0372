#!/usr/bin/env node
/**
 * @file Builds the WebAssembly backend into `bindings/wasm/` (gitignored):
 *   1. `cargo build --release` in `crates/wasm` with Debian's rustc-web and `-Zbuild-std` (see the crate's
 *      `.cargo/config.toml`; target wasm32-unknown-unknown, `+simd128`, panic=abort);
 *   2. `wasm-opt -O3 -g` (Debian binaryen, features spelled out) when `wasm-opt` is installed, on rustc's output
 *      (binaryen 108 breaks wasm-bindgen's output, see below);
 *   3. `wasm-bindgen --target nodejs --experimental-reset-state-function`: CommonJS glue, renamed to
 *      `ac_wasm.cjs` so that `bindings/wasm.ts` can load it *synchronously* with `createRequire` from ESM
 *      (an ES-module glue could only be loaded with a static import, which would fail when nothing is built);
 *      the glue reads `ac_wasm_bg.wasm` with `readFileSync` and instantiates it with `new WebAssembly.Module`;
 *      `__wbg_reset_state()` re-instantiates it after a trap;
 *   4. a smoke test in a child Node (load + one tiny pdist); an optimised module that fails it is replaced,
 *      with a warning, by the unoptimised one.
 * Skips everything when the outputs are newer than every source under `crates/kernels` and `crates/wasm`
 * (and this script). `--force` rebuilds anyway.
 *
 * Usage: node scripts/build-wasm.mjs [--force]
 * Env: `AC_WASM_CARGO` (cargo binary; default /usr/bin/cargo from cargo-web, else `cargo`),
 *      `AC_WASM_BINDGEN` (default `wasm-bindgen` on PATH or ~/.cargo/bin), `AC_WASM_OPT` (`0` to skip wasm-opt).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const crateDir = join(root, 'crates', 'wasm');
const kernelsDir = join(root, 'crates', 'kernels');
const outDir = join(root, 'bindings', 'wasm');
const GLUE = 'ac_wasm.cjs';
const TYPES = 'ac_wasm.d.cts';
const BINARY = 'ac_wasm_bg.wasm';
const RUSTC = '/usr/bin/rustc';
const STD_SRC = '/usr/lib/rustlib/src/rust/library';
const WASM_OPT_FEATURES = [
  '--enable-simd', '--enable-bulk-memory', '--enable-sign-ext', '--enable-nontrapping-float-to-int',
  '--enable-mutable-globals', '--enable-multivalue', '--enable-reference-types',
];
const force = process.argv.includes('--force');
const t0 = performance.now();

function log(msg) {
  process.stderr.write(`build-wasm: ${msg}\n`);
}
function fail(msg) {
  process.stderr.write(`build-wasm: error: ${msg}\n`);
  process.exit(1);
}
const secs = (t) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

/** Newest mtime (ms) of the files under `dir`, skipping build folders. */
function newestMtime(dir) {
  let newest = 0;
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (ent.name === 'target' || ent.name === 'node_modules' || ent.name.startsWith('.git')) continue;
    const p = join(dir, ent.name);
    if (ent.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (ent.isFile()) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function upToDate() {
  const outs = [GLUE, TYPES, BINARY].map((f) => join(outDir, f));
  if (!outs.every((p) => existsSync(p))) return false;
  const oldestOut = Math.min(...outs.map((p) => statSync(p).mtimeMs));
  const newestSrc = Math.max(newestMtime(kernelsDir), newestMtime(crateDir), statSync(fileURLToPath(import.meta.url)).mtimeMs);
  return oldestOut > newestSrc;
}

/** Absolute path of `name` on PATH (plus ~/.cargo/bin), or undefined. */
function which(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), join(process.env.CARGO_HOME ?? join(homedir(), '.cargo'), 'bin')];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function run(cmd, args, opts = {}) {
  log(`$ ${[cmd, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) fail(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} exited with ${r.status ?? r.signal}`);
}

if (!force && upToDate()) {
  log(`up to date (${relative(root, outDir)}/ newer than crates/kernels and crates/wasm); --force to rebuild`);
  process.exit(0);
}

// ---- tools (each missing one is named with the package that provides it; scripts/ensure-toolchain.sh installs them)
const hint = 'run `bash scripts/ensure-toolchain.sh` (as root) to install it';
if (!existsSync(RUSTC)) fail(`${RUSTC} (Debian package rustc-web) is missing; ${hint}`);
if (!existsSync(join(STD_SRC, 'Cargo.lock'))) fail(`std sources ${STD_SRC} (package rust-web-src) are missing; ${hint}`);
try {
  const lld = readlinkSync('/usr/bin/rust-lld');
  if (!existsSync(resolve('/usr/bin', lld))) {
    fail(`/usr/bin/rust-lld points to ${lld}, which is not installed (package ${lld.match(/lld-\d+/)?.[0] ?? 'lld-<N>'}); ${hint}`);
  }
} catch (e) {
  if (e.code === 'ENOENT') fail(`/usr/bin/rust-lld (package rust-web-llvm) is missing; ${hint}`);
  if (e.code !== 'EINVAL') throw e; // EINVAL: a real file, not a link
}
const cargo = process.env.AC_WASM_CARGO ?? (existsSync('/usr/bin/cargo') ? '/usr/bin/cargo' : which('cargo'));
if (!cargo) fail(`cargo is missing (package cargo-web provides /usr/bin/cargo); ${hint}`);

const pin = readFileSync(join(crateDir, 'Cargo.toml'), 'utf8').match(/^wasm-bindgen\s*=\s*"=([0-9.]+)"/m)?.[1];
if (!pin) fail('crates/wasm/Cargo.toml must pin wasm-bindgen exactly (wasm-bindgen = "=X.Y.Z")');
const bindgen = process.env.AC_WASM_BINDGEN ?? which('wasm-bindgen');
if (!bindgen) fail(`wasm-bindgen ${pin} is missing (cargo install wasm-bindgen-cli --version ${pin} --locked); ${hint}`);
const bindgenRun = spawnSync(bindgen, ['--version'], { encoding: 'utf8' });
if (bindgenRun.error) fail(`cannot run ${bindgen}: ${bindgenRun.error.message} (cargo install wasm-bindgen-cli --version ${pin} --locked); ${hint}`);
const bindgenVersion = bindgenRun.stdout.trim().split(/\s+/)[1];
if (bindgenVersion !== pin) {
  fail(`${bindgen} is version ${bindgenVersion ?? '?'}, the crate uses wasm-bindgen =${pin}; they must match exactly (cargo install wasm-bindgen-cli --version ${pin} --locked --force)`);
}
const wasmOpt = process.env.AC_WASM_OPT === '0' ? undefined : which('wasm-opt');

// ---- 1. cargo (own workspace, own target folder; keep the caller's overrides out of it)
let t = performance.now();
const env = { ...process.env, RUSTC_BOOTSTRAP: '1' };
// These would override .cargo/config.toml: RUSTFLAGS replaces `+simd128`, RUSTC replaces rustc-web, and a shared
// CARGO_TARGET_DIR would mix the artifacts of two compilers.
for (const k of ['RUSTFLAGS', 'CARGO_ENCODED_RUSTFLAGS', 'RUSTC', 'RUSTC_WRAPPER', 'CARGO_BUILD_TARGET', 'CARGO_TARGET_DIR', 'CARGO_BUILD_TARGET_DIR']) delete env[k];
run(cargo, ['build', '--release'], { cwd: crateDir, env });
const built = join(crateDir, 'target', 'wasm32-unknown-unknown', 'release', 'ac_wasm.wasm');
if (!existsSync(built)) fail(`cargo succeeded but ${built} is missing`);
log(`cargo build: ${secs(t)}`);

// ---- 2. wasm-opt (optional) on rustc's module, *before* wasm-bindgen: Debian's binaryen 108 rewrites the export of
// wasm-bindgen's second (externref) table to table 0, and the glue then fails with "WebAssembly.Table.set():
// Argument 1 is invalid for table". Before wasm-bindgen there is only the one funcref table. `-g` keeps the
// name section, so that a trap's stack names Rust functions.
// Staged inside the crate's (gitignored) target folder, so an interrupted build leaves nothing in the tree.
const stage = join(crateDir, 'target', `bindgen-stage-${process.pid}`);
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
let optimised = false;
try {
  const bindgenInto = (input, dir) => {
    const t1 = performance.now();
    mkdirSync(dir, { recursive: true });
    run(bindgen, ['--target', 'nodejs', '--experimental-reset-state-function', '--out-name', 'ac_wasm', '--out-dir', dir, input]);
    renameSync(join(dir, 'ac_wasm.js'), join(dir, GLUE));
    renameSync(join(dir, 'ac_wasm.d.ts'), join(dir, TYPES));
    const glue = readFileSync(join(dir, GLUE), 'utf8');
    if (!glue.includes(`/${BINARY}\``) || !glue.includes('__wbg_reset_state')) {
      fail(`unexpected wasm-bindgen output: ${GLUE} should load ${BINARY} and export __wbg_reset_state`);
    }
    log(`wasm-bindgen: ${secs(t1)}`);
  };
  let outStage = join(stage, 'plain');
  if (wasmOpt) {
    t = performance.now();
    const opt = join(stage, 'ac_wasm.wasm');
    run(wasmOpt, ['-O3', '-g', ...WASM_OPT_FEATURES, built, '-o', opt]);
    log(`wasm-opt: ${secs(t)}`);
    bindgenInto(opt, join(stage, 'opt'));
    const why = smokeTest(join(stage, 'opt'));
    if (why === undefined) {
      outStage = join(stage, 'opt');
      optimised = true;
    } else {
      log(`warning: the wasm-opt output does not work (${why}); using the unoptimised module`);
    }
  } else {
    log('wasm-opt not found (Debian package binaryen): the module is not optimised further');
  }
  if (!optimised) {
    bindgenInto(built, outStage);
    const why = smokeTest(outStage);
    if (why !== undefined) fail(`the built module does not load: ${why}`);
  }

  mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync(outStage)) renameSync(join(outStage, f), join(outDir, f));
  // Names used by older layouts of this folder.
  rmSync(join(outDir, 'ac_wasm.js'), { force: true });
  rmSync(join(outDir, 'ac_wasm.d.ts'), { force: true });
} finally {
  rmSync(stage, { recursive: true, force: true });
}

/** Loads a staged build in a child Node and runs one tiny kernel; returns why it failed, or undefined. */
function smokeTest(dir) {
  const code = `const w = require(${JSON.stringify(join(dir, GLUE))});
const d = w.hc_pdist(new Float32Array([0, 0, 3, 4]), 2, 2, false);
if (w.hc_abi_version() < 1 || d.length !== 1) throw new Error('unexpected result ' + d);`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr.split('\n').find((l) => /Error/.test(l)) ?? r.stderr.trim()) || `exit ${r.status}`;
}
writeFileSync(
  join(outDir, 'BUILD_INFO.json'),
  JSON.stringify({ rustc: spawnSync(RUSTC, ['--version'], { encoding: 'utf8' }).stdout.trim(), wasmBindgen: pin, wasmOpt: optimised }, null, 2) + '\n',
);
log(`${relative(root, join(outDir, BINARY))}: ${statSync(join(outDir, BINARY)).size} bytes; total ${secs(t0)}`);
