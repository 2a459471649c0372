/**
 * @file Shared helpers of the reliability suite (hostile inputs, boundary fuzzing, concurrency, determinism,
 * memory): child processes, an up-to-date `dist/` for them, generated images, seeds.
 *
 * Child processes and worker threads run the **compiled** library (`dist/`), because plain `node` cannot import the
 * TypeScript sources. {@link ensureDist} rebuilds `dist/` with `tsc` (once, under a lock shared by the vitest
 * forks) when a source under `src/` or `bindings/` is newer than its compiled file.
 * @module test/reliability/helpers
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Folder of the child scripts (plain ESM, run by `node`, importing `dist/`). */
export const CHILDREN = path.join(ROOT, 'test', 'reliability', 'children');

function newestTs(dir: string): { file: string; mtime: number }[] {
  const out: { file: string; mtime: number }[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push({ file: p, mtime: statSync(p).mtimeMs });
    }
  };
  walk(dir);
  return out;
}

/** Sources whose compiled `dist/` file is missing or older. */
export function staleDist(): string[] {
  const stale: string[] = [];
  for (const top of ['src', 'bindings']) {
    for (const { file, mtime } of newestTs(path.join(ROOT, top))) {
      const rel = path.relative(ROOT, file).replace(/\.ts$/, '.js');
      const js = path.join(ROOT, 'dist', rel);
      if (!existsSync(js) || statSync(js).mtimeMs < mtime) stale.push(rel);
    }
  }
  return stale;
}

/**
 * Makes sure `dist/` is compiled from the current sources (children import it). Rebuilds with `tsc` under a lock
 * (a directory in the temp folder) when needed; a failed compile is reported but the (possibly partial) output is
 * still used — `tsc` emits despite type errors.
 */
export function ensureDist(): void {
  if (staleDist().length === 0) return;
  const lock = path.join(tmpdir(), 'ac-reliability-tsc.lock');
  const t0 = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another fork is compiling; a lock older than 2 minutes is stale.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      } catch { /* gone */ }
      if (Date.now() - t0 > 180_000) throw new Error('ensureDist: timed out waiting for the tsc lock');
      spawnSync('sleep', ['0.2']);
    }
  }
  try {
    if (staleDist().length === 0) return;
    const r = spawnSync('nice', ['node', path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
      cwd: ROOT, encoding: 'utf8',
    });
    if (r.status !== 0) console.warn(`ensureDist: tsc reported errors (dist/ may be partial):\n${r.stdout}${r.stderr}`);
    // Stamp anything tsc left untouched so the next check passes.
    const now = new Date();
    for (const rel of staleDist()) {
      const js = path.join(ROOT, 'dist', rel);
      if (existsSync(js)) utimesSync(js, now, now);
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Outcome of a child process. */
export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/**
 * Runs `node [nodeArgs] script [args]` under `nice`, asynchronously (vitest keeps running), with a hard timeout
 * (SIGKILL) so a hang is reported instead of stalling the suite.
 */
export function runNode(
  script: string,
  args: string[] = [],
  opts: { env?: Record<string, string | undefined>; timeoutMs?: number; nodeArgs?: string[] } = {},
): Promise<ChildResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn('nice', ['-n', '5', process.execPath, ...(opts.nodeArgs ?? []), script, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, timedOut });
    });
  });
}

/** The last line of a child's stdout that parses as JSON (children print one result object last). */
export function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    try {
      return JSON.parse(l) as T;
    } catch { /* not JSON */ }
  }
  throw new Error(`no JSON line in child output:\n${stdout.slice(-2000)}`);
}

/** A fresh temp folder. */
export function tempDir(prefix: string): string {
  const d = path.join(tmpdir(), `${prefix}${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** A seed: `AC_SEED`/given env var if set, else time-based (always printed by the caller). */
export function seedFrom(envName: string): number {
  const v = process.env[envName] ?? process.env.AC_SEED;
  return v !== undefined ? Number(v) >>> 0 : (Date.now() ^ (process.pid << 8)) >>> 0;
}

/** Milliseconds a fuzzer runs: `AC_FUZZ_MS`, default 5000. */
export function fuzzMs(): number {
  const v = Number(process.env.AC_FUZZ_MS ?? 5000);
  return Number.isFinite(v) && v > 0 ? v : 5000;
}

// ---------------------------------------------------------------------------------------------------------
// Images

type Sharp = typeof import('sharp').default;
let sharpP: Promise<Sharp> | undefined;
/** sharp, loaded once. */
export function sharp(): Promise<Sharp> {
  sharpP ??= import('sharp').then((m) => m.default);
  return sharpP;
}

/** A small textured RGB PNG (deterministic from `seed`), `w×h`. */
export async function texturedPng(w: number, h: number, seed: number, opts: { channels?: 1 | 2 | 3 | 4; depth?: 8 | 16 } = {}): Promise<Buffer> {
  const s = await sharp();
  const ch = opts.channels ?? 3;
  const px = Buffer.alloc(w * h * ch);
  let a = seed >>> 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      a = (a * 1664525 + 1013904223) >>> 0;
      const stripe = ((x + seed * 7) >> 3) % 2 === 0 ? 40 : 200;
      const v = (stripe + ((a >>> 24) & 31) + ((y * (seed % 5 + 1)) & 63)) & 255;
      for (let c = 0; c < ch; c++) px[(y * w + x) * ch + c] = c === ch - 1 && (ch === 2 || ch === 4) ? 255 : (v + c * 40 * seed) & 255;
    }
  }
  let img = s(px, { raw: { width: w, height: h, channels: ch } });
  if (opts.depth === 16) img = img.toColourspace(ch <= 2 ? 'grey16' : 'rgb16');
  return img.png().toBuffer();
}

/** CRC-32 (PNG chunks). */
function crc32(buf: Uint8Array): number {
  let c = ~0 >>> 0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** A PNG whose IHDR claims `w×h` (CRC fixed up, so only the size is a lie) but whose pixel data is tiny. */
export async function pngClaiming(w: number, h: number): Promise<Buffer> {
  const png = Buffer.from(await texturedPng(8, 8, 1));
  // Signature (8) + length (4) + 'IHDR' (4) + width (4) + height (4) …; CRC over type+data (17 bytes) at 29.
  png.writeUInt32BE(w, 16);
  png.writeUInt32BE(h, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}
