#!/usr/bin/env node
/**
 * @file Builds the Node-API addon (`crates/node`) into `bindings/native/anomaly-clustering.<triple>.node`, the
 * file `bindings/native.ts` loads.
 *
 * - Uses `@napi-rs/cli` (`napi build --platform --release`) when it is installed, else plain `cargo build` plus a
 *   copy of the cdylib (same addon, but no typings: `tsc` needs them, `bindings/abi.ts` derives the addon's types
 *   from them, so install the dev dependencies before building the TypeScript).
 * - Fast no-op when the `.node` is newer than every Rust source it is built from (`Cargo.toml`, `Cargo.lock`,
 *   `crates/kernels`, `crates/node`; `crates/wasm` is another artifact). `--force` rebuilds anyway.
 * - Cargo's target folder is the workspace default (`target/`) unless `CARGO_TARGET_DIR` is set.
 *
 * Usage: `node scripts/build-native.mjs [--force] [--debug]`
 * @module scripts/build-native
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const BINARY_NAME = 'anomaly-clustering';
const CRATE = 'ac-node';
const MANIFEST = 'crates/node/Cargo.toml';
const OUT_DIR = join(ROOT, 'bindings', 'native');
/** What the addon is built from. */
const SOURCES = ['Cargo.toml', 'Cargo.lock', 'crates/kernels', 'crates/node'];

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--force', '--debug', '--help', '-h'].includes(a)) fail(`unknown option ${a} (expected --force, --debug)`);
}
if (args.has('--help') || args.has('-h')) {
  console.log('node scripts/build-native.mjs [--force] [--debug]');
  process.exit(0);
}
const release = !args.has('--debug');

function fail(message) {
  console.error(`build-native: ${message}`);
  process.exit(1);
}

/** napi-rs' platform suffix: linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc, … */
function tripleSuffix() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
    return `${platform}-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `${platform}-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** Newest mtime (ms) of the files under `p`, skipping build folders. */
function newestMtime(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a deleted file bumps its folder's mtime
  for (const e of readdirSync(p, { withFileTypes: true })) {
    if (e.name === 'target' || e.name === 'node_modules' || e.name.startsWith('.')) continue;
    newest = Math.max(newest, newestMtime(join(p, e.name)));
  }
  return newest;
}

const out = join(OUT_DIR, `${BINARY_NAME}.${tripleSuffix()}.node`);
const outRel = relative(ROOT, out);
const newestSource = Math.max(...SOURCES.map((s) => newestMtime(join(ROOT, s))));
if (!args.has('--force') && existsSync(out) && statSync(out).mtimeMs > newestSource) {
  console.log(`build-native: ${outRel} is up to date`);
  process.exit(0);
}

const cargo = process.env.CARGO ?? 'cargo';
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  fail(
    `cannot run \`${cargo} --version\` (${probe.error?.message ?? probe.stderr.trim()}).\n` +
      '  The native addon needs a Rust toolchain: install rustup (https://rustup.rs) and make sure `cargo` is on PATH.\n' +
      '  Without it the library still works on the wasm or pure-JS backend (ANOMALY_CLUSTERING_BACKEND=wasm|js).',
  );
}

mkdirSync(OUT_DIR, { recursive: true });
const started = Date.now();

/** The `@napi-rs/cli` entry point, or undefined when the dev dependency is not installed. */
function napiCli() {
  try {
    const require = createRequire(import.meta.url);
    const pkgPath = require.resolve('@napi-rs/cli/package.json');
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
    const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.napi;
    return bin ? join(dirname(pkgPath), bin) : undefined;
  } catch {
    return undefined;
  }
}

function run(cmd, argv, env = process.env) {
  console.log(`build-native: ${[cmd, ...argv].join(' ')}`);
  const r = spawnSync(cmd, argv, { cwd: ROOT, stdio: 'inherit', env });
  if (r.error) fail(`${cmd} failed to start: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} exited with ${r.status ?? r.signal}`);
}

const cli = napiCli();
if (cli) {
  // The binary name comes from package.json's "napi" field when it has one; else from a throw-away napi config
  // (the CLI has no --binary-name flag, and its default name is "index").
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  let configPath;
  if (pkg.napi?.binaryName !== BINARY_NAME) {
    configPath = join(tmpdir(), `${BINARY_NAME}-napi-${process.pid}.json`);
    writeFileSync(configPath, JSON.stringify({ binaryName: BINARY_NAME }));
  }
  try {
    run(process.execPath, [
      cli,
      'build',
      '--platform',
      ...(release ? ['--release'] : []),
      '--manifest-path',
      MANIFEST,
      '--output-dir',
      relative(ROOT, OUT_DIR),
      '--no-js', // bindings/native.ts loads the .node itself
      '--dts',
      `${BINARY_NAME}.d.ts`, // generated typings, gitignored: bindings/abi.ts derives NativeExports from them
      ...(configPath ? ['--config-path', configPath] : []),
    ]);
  } finally {
    if (configPath) rmSync(configPath, { force: true });
  }
} else {
  console.log('build-native: @napi-rs/cli not installed, building with cargo directly');
  run(cargo, ['build', '-p', CRATE, ...(release ? ['--release'] : [])]);
  const meta = spawnSync(cargo, ['metadata', '--format-version', '1', '--no-deps'], { cwd: ROOT, encoding: 'utf8' });
  if (meta.status !== 0) fail(`cargo metadata failed: ${meta.stderr}`);
  const targetDir = JSON.parse(meta.stdout).target_directory;
  const lib = { win32: 'ac_node.dll', darwin: 'libac_node.dylib' }[process.platform] ?? 'libac_node.so';
  copyFileSync(join(targetDir, release ? 'release' : 'debug', lib), out);
}

if (!existsSync(out) || statSync(out).mtimeMs < started - 1000) {
  fail(`the build finished but ${outRel} was not (re)written`);
}
console.log(`build-native: wrote ${outRel} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
