/**
 * @file Issue 16 — hostile folders, caches and signals. Each case of the issue is a regression test:
 *
 * 1. Reads (`readImageBytes`, `listImageInputs`): only regular files are read — a symlink to `/dev/zero`, a FIFO
 *    (or a symlink to one), a socket, a directory, a dangling or looping symlink are named `ERR_IMAGE`s, at once;
 *    a file over `maxImageBytes` (sparse, 1.5 GB) is refused by `stat` before any byte is read; an aborted read
 *    rejects with `ERR_ABORTED`; a name that is not valid UTF-8 is listed and read.
 * 2. Feature cache: a flipped byte, two swapped entries, a NaN payload (with a valid checksum), a truncated entry
 *    and an entry without checksum are dropped, reported and recomputed — never used, never fatal.
 * 3. CLI: `--out` / `--cache` / `ANOMALY_CLUSTERING_CACHE` that cannot be used (a file in the way, /proc) fail at
 *    once with exit code 10; bad `ANOMALY_CLUSTERING_THREADS` exit 2, a huge one is capped; EPIPE exits 0;
 *    SIGINT / SIGTERM / SIGHUP during a disk-streamed run exit 128 + signo and leave no spill file; a hostile
 *    folder with `--skip-bad` runs, without it fails naming the file; a corrupted cache entry only warns.
 * 4. Library abort: `clusterImages` aborted while a FIFO sits in the folder rejects, and the process then exits
 *    by itself.
 * 5. Soak: a hostile folder (device symlinks, FIFOs, socket, sparse and huge files, odd names) clustered with
 *    `skipBad` on every backend, cold and cached, in a child process with a small V8 heap and its peak RSS
 *    measured: no hang, no crash, bounded memory, the same result on every backend.
 * Children run the compiled `dist/` (see `helpers.ts`); each has a hard timeout, so a hang fails instead of stalling.
 * @module test/reliability/hostile-folders
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KernelError } from '../../src/errors.js';
import { checkMaxImageBytes, DEFAULT_MAX_IMAGE_BYTES, readImageBytes } from '../../src/pipeline/image.js';
import { clusterImages, listImageInputs, listImages } from '../../src/pipeline/run.js';
import { encodeNpy, FeatureCache, TRAILER_BYTES, configKey, type FeatureConfig } from '../../src/pipeline/cache.js';
import { EXIT, main } from '../../src/cli/main.js';
import { maxThreads, threadsFromEnv } from '../../bindings/select.js';
import { CHILDREN, ROOT, ensureDist, lastJson, runNode, tempDir, texturedPng } from './helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const GiB = 2 ** 30;

let tmp: string;
let good: string[]; // three small valid PNGs
let server: net.Server | undefined;

/** A folder of 3 valid images plus every kind of bad entry. */
async function hostileFolder(dir: string, opts: { socket?: boolean } = {}): Promise<string> {
  mkdirSync(dir, { recursive: true });
  for (const [i, f] of good.entries()) writeFileSync(path.join(dir, `g${i}.png`), readFileSync(f));
  symlinkSync('/dev/zero', path.join(dir, 'z.png'));
  symlinkSync('/dev/urandom', path.join(dir, 'u.png'));
  spawnSync('mkfifo', [path.join(dir, 'fifo.png')]);
  symlinkSync(path.join(dir, 'fifo.png'), path.join(dir, 'y.png'));
  writeFileSync(path.join(dir, 'sparse1.png'), '');
  truncateSync(path.join(dir, 'sparse1.png'), 1.5 * GiB); // sparse: costs no disk
  writeFileSync(path.join(dir, 'sparse2.png'), '');
  truncateSync(path.join(dir, 'sparse2.png'), 1.5 * GiB);
  writeFileSync(path.join(dir, 'zeros.png'), '');
  truncateSync(path.join(dir, 'zeros.png'), 3 * 2 ** 20); // under the cap, not an image
  mkdirSync(path.join(dir, 'folder.png'));
  symlinkSync(path.join(dir, 'missing.png'), path.join(dir, 'dangling.png'));
  symlinkSync(path.join(dir, 'loop2.png'), path.join(dir, 'loop1.png'));
  symlinkSync(path.join(dir, 'loop1.png'), path.join(dir, 'loop2.png'));
  writeFileSync(path.join(dir, 'empty.png'), '');
  // odd names: not valid UTF-8 (readable), newline / quotes / comma (CSV), leading dash
  writeFileSync(Buffer.from(`${dir}/ok\xe9-latin1.png`, 'latin1'), readFileSync(good[0]!));
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/bad`), Buffer.from([0xff, 0xfe]), Buffer.from('.png')]), 'junk');
  writeFileSync(path.join(dir, 'new\nline "q", -x.png'), readFileSync(good[1]!));
  if (opts.socket) {
    server = net.createServer();
    await new Promise<void>((resolve) => server!.listen(path.join(dir, 'sock.png'), resolve));
  }
  return dir;
}

beforeAll(async () => {
  ensureDist();
  tmp = tempDir('ac-hostile16-');
  good = [];
  for (let i = 0; i < 3; i++) {
    const f = path.join(tmp, `good${i}.png`);
    writeFileSync(f, await texturedPng(64 + 16 * i, 64, i + 3));
    good.push(f);
  }
}, 180_000);
afterAll(() => {
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function outcome(p: Promise<unknown>, ms = 10_000): Promise<{ value?: unknown; error?: unknown; hung?: true }> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<{ hung: true }>((resolve) => { timer = setTimeout(() => resolve({ hung: true }), ms); });
  try {
    return await Promise.race([p.then((value) => ({ value }), (error: unknown) => ({ error })), hang]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------
// 1. Reads

describe('reads: only regular files, size-capped before reading, cancellable', () => {
  let dir: string;
  beforeAll(async () => { dir = await hostileFolder(path.join(tmp, 'reads'), { socket: true }); });

  const refused: [string, RegExp][] = [
    ['z.png', /z\.png: a character device, not a regular file: refused/],
    ['u.png', /u\.png: a character device/],
    ['fifo.png', /fifo\.png: a FIFO \(named pipe\), not a regular file/],
    ['y.png', /y\.png: a FIFO/],
    ['sock.png', /sock\.png: a socket/],
    ['folder.png', /folder\.png: a directory/],
    ['sparse1.png', /sparse1\.png: 1610612736 bytes, over the image size cap of 268435456 bytes/],
    ['dangling.png', /dangling\.png: cannot read the file \(ENOENT\)/],
    ['loop1.png', /loop1\.png: cannot read the file \(ELOOP\)/],
    ['empty.png', /empty\.png: the file is empty/],
  ];
  for (const [name, msg] of refused) {
    it(`${name} → ERR_IMAGE naming the file and the reason, at once`, async () => {
      const t0 = performance.now();
      const r = await outcome(readImageBytes(path.join(dir, name)));
      expect(r.hung, 'the read hung').toBeUndefined();
      expect(r.error).toBeInstanceOf(KernelError);
      expect((r.error as KernelError).code).toBe('ERR_IMAGE');
      expect((r.error as Error).message).toMatch(msg);
      expect(performance.now() - t0).toBeLessThan(2000);
    });
  }

  it('/dev/zero and /dev/null themselves are refused', async () => {
    for (const dev of ['/dev/zero', '/dev/null']) {
      await expect(readImageBytes(dev)).rejects.toMatchObject({ code: 'ERR_IMAGE', message: expect.stringMatching(/character device/) });
    }
  });

  it('the cap: maxBytes refuses a larger file by stat, Infinity lifts it, bytes inputs are capped too', async () => {
    await expect(readImageBytes(good[0]!, { maxBytes: 100 })).rejects.toMatchObject({ code: 'ERR_IMAGE', message: expect.stringMatching(/over the image size cap of 100 bytes/) });
    expect((await readImageBytes(good[0]!, { maxBytes: Infinity })).length).toBe(readFileSync(good[0]!).length);
    expect((await readImageBytes(path.join(dir, 'zeros.png'))).length).toBe(3 * 2 ** 20); // under the default cap
    await expect(readImageBytes({ name: 'mem', data: new Uint8Array(200) }, { maxBytes: 100 })).rejects.toMatchObject({ code: 'ERR_IMAGE' });
    expect(DEFAULT_MAX_IMAGE_BYTES).toBe(256 * 2 ** 20);
    for (const bad of [0, -1, NaN, '1M']) expect(() => checkMaxImageBytes(bad)).toThrow(RangeError);
    await expect(clusterImages(dir, { k: 2, features: { maxImageBytes: 0 } })).rejects.toThrow(RangeError);
  });

  it('an aborted read rejects with ERR_ABORTED', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(readImageBytes(good[0]!, { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('names that are not valid UTF-8 are listed (\\xNN shown) and read', async () => {
    const inputs = listImageInputs(dir);
    const raw = inputs.filter((f) => typeof f !== 'string') as { name: string; path: Buffer }[];
    expect(raw.map((f) => path.basename(f.name)).sort()).toEqual(['bad\\xff\\xfe.png', 'ok\\xe9-latin1.png']);
    expect(listImages(dir)).toContain(path.join(dir, 'ok\\xe9-latin1.png'));
    const ok = raw.find((f) => f.name.includes('latin1'))!;
    expect(Buffer.from(await readImageBytes(ok)).equals(readFileSync(good[0]!))).toBe(true);
    // the name with a newline, quotes and a comma is an ordinary path
    expect(inputs).toContain(path.join(dir, 'new\nline "q", -x.png'));
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2. Feature cache

describe('feature cache: checksummed entries, bad ones dropped and recomputed', () => {
  const config: FeatureConfig = { backbone: { id: 'test', modelSha256: 'x', layers: ['a', 'b'] }, preprocess: { inputSize: 8, resize: 8, mean: [0, 0, 0], std: [1, 1, 1] }, aggregation: 'test' };
  const bag = (seed: number) => Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(seed * 10 + i));
  const shaA = 'a'.repeat(64);
  const shaB = 'b'.repeat(64);

  function fresh(name: string) {
    const warnings: string[] = [];
    const c = new FeatureCache(path.join(tmp, name), config, (w) => warnings.push(w));
    expect(c.put(shaA, 'a.png', bag(1), 2, 3, 4)).toBeDefined();
    expect(c.put(shaB, 'b.png', bag(2), 2, 3, 4)).toBeDefined();
    return { c, warnings };
  }

  it('a valid entry round-trips (get and locate) and is still a plain .npy plus a 40-byte trailer', () => {
    const { c, warnings } = fresh('cache-ok');
    expect([...c.get(shaA, 2, 3, 4)!]).toEqual([...bag(1)]);
    const loc = c.locate(shaB, 2, 3, 4)!;
    const b = readFileSync(loc.file);
    expect(b.length).toBe(loc.offset + 24 * 4 + TRAILER_BYTES);
    expect(Buffer.from(encodeNpy(bag(2), [2, 3, 4])).equals(b.subarray(0, b.length - TRAILER_BYTES))).toBe(true);
    expect(warnings).toEqual([]);
  });

  type Damage = [string, (c: FeatureCache) => void, RegExp];
  const damages: Damage[] = [
    ['a flipped payload byte', (c) => { const f = c.file(shaA); const b = readFileSync(f); b[b.length - TRAILER_BYTES - 5]! ^= 0x10; writeFileSync(f, b); }, /checksum mismatch/],
    ['a flipped checksum byte', (c) => { const f = c.file(shaA); const b = readFileSync(f); b[b.length - 1]! ^= 1; writeFileSync(f, b); }, /checksum mismatch/],
    ['a truncated entry', (c) => { const f = c.file(shaA); writeFileSync(f, readFileSync(f).subarray(0, 100)); }, /truncated/],
    ['an entry without checksum (plain .npy)', (c) => writeFileSync(c.file(shaA), encodeNpy(bag(1), [2, 3, 4])), /truncated, or written without a checksum/],
    ['a NaN payload with a valid checksum', (c) => {
      const x = bag(1);
      x[3] = NaN;
      const npy = encodeNpy(x, [2, 3, 4]);
      const payload = npy.subarray(npy.length - x.byteLength);
      const sum = createHash('sha256').update(`${configKey(config)}/${shaA}\n`).update(payload).digest();
      writeFileSync(c.file(shaA), Buffer.concat([npy, Buffer.from([0x41, 0x43, 0x53, 0x55, 0x4d, 0, 0, 1]), sum]));
    }, /value at index 3 is NaN/],
  ];
  for (const [name, damage, why] of damages) {
    it(`${name}: dropped (deleted), reported, not used — by get and by locate`, () => {
      for (const via of ['get', 'locate'] as const) {
        const { c, warnings } = fresh(`cache-${name.replace(/\W+/g, '-')}-${via}`);
        damage(c);
        expect(via === 'get' ? c.get(shaA, 2, 3, 4) : c.locate(shaA, 2, 3, 4)).toBeUndefined();
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(why);
        expect(warnings[0]).toContain(c.file(shaA));
        expect(existsSync(c.file(shaA))).toBe(false);
        expect(c.get(shaB, 2, 3, 4)).toBeDefined(); // the other entry is untouched
      }
    });
  }

  it('two swapped entries are both detected (the checksum covers the key)', () => {
    const { c, warnings } = fresh('cache-swap');
    const a = readFileSync(c.file(shaA));
    writeFileSync(c.file(shaA), readFileSync(c.file(shaB)));
    writeFileSync(c.file(shaB), a);
    expect(c.get(shaA, 2, 3, 4)).toBeUndefined();
    expect(c.locate(shaB, 2, 3, 4)).toBeUndefined();
    expect(warnings).toHaveLength(2);
  });

  it('a bag with NaN or Infinity is never written', () => {
    const { c } = fresh('cache-put-nan');
    const x = bag(3);
    x[0] = Infinity;
    expect(c.put('c'.repeat(64), 'c.png', x, 2, 3, 4)).toBeUndefined();
    expect(existsSync(c.file('c'.repeat(64)))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 3. CLI

async function cli(argv: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string; ms: number }> {
  let out = '';
  let err = '';
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  const t0 = performance.now();
  try {
    const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false }, cwd: tmp });
    return { code, out, err, ms: performance.now() - t0 };
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

describe('cli: locations and environment checked before any work', () => {
  let imgs: string;
  beforeAll(() => {
    imgs = path.join(tmp, 'cli-imgs');
    mkdirSync(imgs, { recursive: true });
    for (const [i, f] of good.entries()) writeFileSync(path.join(imgs, `g${i}.png`), readFileSync(f));
  });
  const cases: [string, () => string[], Record<string, string>, number, RegExp][] = [
    ['--out is a file', () => ['IMGS', '--k', '2', '--out', good[0]!], {}, EXIT.IO, /--out: .*good0\.png cannot be a folder: .*good0\.png is a file/],
    ['--out under a file', () => ['IMGS', '--k', '2', '--out', `${good[0]!}/sub/dir`], {}, EXIT.IO, /is a file/],
    ['--out /proc/self/x', () => ['IMGS', '--k', '2', '--out', '/proc/self/x'], {}, EXIT.IO, /--out: \/proc\/self\/x is on \/proc, a pseudo-filesystem/],
    ['--cache /proc/x', () => ['IMGS', '--k', '2', '--cache', '/proc/x'], {}, EXIT.IO, /--cache: \/proc\/x is on \/proc/],
    ['--cache is a file', () => ['IMGS', '--k', '2', '--cache', good[1]!], {}, EXIT.IO, /--cache: .* is a file/],
    ['ANOMALY_CLUSTERING_CACHE=/proc/x', () => ['IMGS', '--k', '2'], { ANOMALY_CLUSTERING_CACHE: '/proc/x' }, EXIT.IO, /\/proc\/x.* is on \/proc/],
    ['ANOMALY_CLUSTERING_THREADS=0', () => ['IMGS', '--k', '2'], { ANOMALY_CLUSTERING_THREADS: '0' }, EXIT.USAGE, /ANOMALY_CLUSTERING_THREADS: expected an integer ≥ 1 .*got "0"/],
    ['ANOMALY_CLUSTERING_THREADS=-3', () => ['IMGS', '--k', '2'], { ANOMALY_CLUSTERING_THREADS: '-3' }, EXIT.USAGE, /got "-3"/],
    ['ANOMALY_CLUSTERING_THREADS=abc', () => ['IMGS', '--k', '2'], { ANOMALY_CLUSTERING_THREADS: 'abc' }, EXIT.USAGE, /got "abc"/],
    ['--max-image-size 0', () => ['IMGS', '--k', '2', '--max-image-size', '0'], {}, EXIT.USAGE, /--max-image-size: expected a size > 0/],
  ];
  for (const [name, argv, env, code, msg] of cases) {
    it(`${name} → exit ${code} at once`, async () => {
      const r = await cli(argv().map((a) => (a === 'IMGS' ? imgs : a)), env);
      expect(r.err).toMatch(msg);
      expect(r.code).toBe(code);
      expect(r.ms).toBeLessThan(5000); // before any image is read or any model loaded
    });
  }

  it('ANOMALY_CLUSTERING_THREADS=100000 is capped at 4 × cores (≤ 256), in the environment the addon reads', () => {
    const env: NodeJS.ProcessEnv = { ANOMALY_CLUSTERING_THREADS: '100000' };
    expect(threadsFromEnv(env)).toBe(maxThreads());
    expect(env.ANOMALY_CLUSTERING_THREADS).toBe(String(maxThreads()));
    expect(maxThreads()).toBeLessThanOrEqual(256);
    expect(threadsFromEnv({ ANOMALY_CLUSTERING_THREADS: '2' })).toBe(Math.min(2, maxThreads()));
    expect(threadsFromEnv({})).toBeUndefined();
    for (const bad of ['0', '-3', 'abc', '1.5', '2x']) expect(() => threadsFromEnv({ ANOMALY_CLUSTERING_THREADS: bad })).toThrow(/ANOMALY_CLUSTERING_THREADS/);
  });

  it('EPIPE on stdout (`| head -1`) ends the CLI quietly with exit 0', async () => {
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy(); // the reader is gone before the CLI writes
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, err }); });
    });
    expect(r.err).not.toMatch(/EPIPE|Error/);
    expect(r.code).toBe(0);
  });
});

describe('cli: hostile folder, corrupted cache', () => {
  let dir: string;
  beforeAll(async () => { dir = await hostileFolder(path.join(tmp, 'cli-hostile')); });

  it('--skip-bad: runs (no hang, no unbounded read) and lists every bad entry with its reason', async () => {
    const out = path.join(tmp, 'cli-hostile-out');
    const r = await runNode(CLI, [dir, '--k', '2', '--skip-bad', '--weighting', 'uniform', '--out', out, '--cache', path.join(tmp, 'cli-hostile-cache'), '--no-report', '-q', '--threads', '1'], { timeoutMs: 120_000 });
    expect(r.timedOut, r.stderr).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')) as { files: string[]; skipped: { file: string; error: string }[] };
    expect(json.files.map((f) => path.basename(f)).sort()).toEqual(['g0.png', 'g1.png', 'g2.png', 'new\nline "q", -x.png', 'ok\\xe9-latin1.png']);
    const why = Object.fromEntries(json.skipped.map((s) => [path.basename(s.file), s.error]));
    expect(why['z.png']).toMatch(/character device/);
    expect(why['y.png']).toMatch(/FIFO/);
    expect(why['sparse1.png']).toMatch(/over the image size cap/);
    expect(why['loop1.png']).toMatch(/ELOOP/);
    expect(why['zeros.png']).toMatch(/cannot decode/);
    expect(readFileSync(path.join(out, 'clusters.csv'), 'utf8')).toContain('"new\nline ""q"", -x.png"');
  }, 130_000);

  it('without --skip-bad: exit 7 naming the first bad file, at once', async () => {
    const r = await runNode(CLI, [dir, '--k', '2', '--weighting', 'uniform', '--out', path.join(tmp, 'cli-hostile-out2'), '--no-cache', '--no-report', '-q', '--threads', '1'], { timeoutMs: 120_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(EXIT.IMAGE);
    expect(r.stderr).toMatch(/anomaly-clustering: .*\.png: /);
  }, 130_000);

  it('a flipped byte or NaN in a cache entry: a warning, the entry recomputed, the same labels, exit 0', async () => {
    const imgs = path.join(tmp, 'cli-cache-imgs');
    mkdirSync(imgs, { recursive: true });
    for (const [i, f] of good.entries()) writeFileSync(path.join(imgs, `g${i}.png`), readFileSync(f));
    const cache = path.join(tmp, 'cli-cache');
    const run = () => cli([imgs, '--k', '2', '--weighting', 'uniform', '--cache', cache, '--out', path.join(tmp, 'cli-cache-out'), '--no-report', '--json', '-q', '--threads', '1']);
    const a = await run();
    expect(a.code, a.err).toBe(0);
    // --cache is the root: features under <root>/features, one folder per configuration (the bags, the unprojected
    // pooled vectors, the projection basis): take the bags'
    const fdir = path.join(cache, 'features');
    const key = readdirSync(fdir).find((k) => !/PCA basis|unprojected/.test(readFileSync(path.join(fdir, k, 'config.json'), 'utf8')));
    const npys = readdirSync(path.join(fdir, key!)).filter((f) => f.endsWith('.npy'));
    expect(npys.length).toBe(3);
    const f0 = path.join(fdir, key!, npys[0]!);
    const b = readFileSync(f0);
    b[b.length - TRAILER_BYTES - 9]! ^= 0x40;
    writeFileSync(f0, b);
    // a NaN written with a valid checksum would need the key; a NaN in place fails the checksum just the same
    const f1 = path.join(fdir, key!, npys[1]!);
    const c = readFileSync(f1);
    c.writeFloatLE(NaN, c.length - TRAILER_BYTES - 4);
    writeFileSync(f1, c);
    const r = await run();
    expect(r.code, r.err).toBe(0);
    expect(r.err.match(/warning: feature cache: dropped the bad entry/g)).toHaveLength(2);
    expect(JSON.parse(r.out).labels).toEqual(JSON.parse(a.out).labels);
    const again = await run(); // rewritten: no warning now
    expect(again.err).not.toMatch(/warning/);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------------------
// 4. Signals and aborts

describe('signals and aborts: temp files removed, prompt exit, nothing left running', () => {
  let many: string;
  beforeAll(async () => {
    many = path.join(tmp, 'many');
    mkdirSync(many, { recursive: true });
    for (let i = 0; i < 24; i++) writeFileSync(path.join(many, `i${String(i).padStart(2, '0')}.png`), await texturedPng(200, 200, i + 1));
  }, 60_000);

  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
    it(`${sig} during a disk-streamed run: exit ${code}, the spill file removed`, async () => {
      const spill = tempDir('ac-spill-');
      const child = spawn('nice', ['-n', '5', process.execPath, CLI, many, '--k', '2', '--weighting', 'uniform', '--no-cache', '--memory-limit', '1M', '--batch-size', '2', '--threads', '1', '--out', path.join(tmp, `sig-out-${sig}`), '-q'], {
        env: { ...process.env, TMPDIR: spill }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (c, s) => resolve({ code: c, signal: s })));
      const spills = () => readdirSync(spill).filter((f) => f.startsWith('anomaly-clustering-bank-'));
      const t0 = Date.now();
      while (spills().length === 0 && Date.now() - t0 < 90_000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      expect(spills().length, `no spill file appeared: ${err}`).toBe(1);
      // `nice` execs node: the child's pid is node's
      const tSig = Date.now();
      child.kill(sig);
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const r = await closed;
      clearTimeout(killer);
      expect(r.signal === sig || r.code === code, `code ${r.code}, signal ${r.signal}: ${err}`).toBe(true);
      expect(r.signal).not.toBe('SIGKILL');
      expect(Date.now() - tSig).toBeLessThan(10_000);
      expect(spills()).toEqual([]);
      expect(err).toContain(`interrupted (${sig})`);
      rmSync(spill, { recursive: true, force: true });
    }, 150_000);
  }

  it('library: clusterImages aborted with a FIFO in the folder rejects, and the process exits by itself', async () => {
    const dir = path.join(tmp, 'abort');
    mkdirSync(dir, { recursive: true });
    for (const [i, f] of good.entries()) writeFileSync(path.join(dir, `g${i}.png`), readFileSync(f));
    spawnSync('mkfifo', [path.join(dir, 'a-fifo.png')]);
    symlinkSync(path.join(dir, 'a-fifo.png'), path.join(dir, 'b-link.png'));
    const r = await runNode(path.join(CHILDREN, 'hostile-folder.mjs'), ['abort', dir], { timeoutMs: 60_000 });
    const end = Date.now();
    expect(r.timedOut, `the process did not exit: ${r.stdout}${r.stderr}`).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson<{ code: string; settledAt: number }>(r.stdout);
    expect(j.code).toBe('ERR_ABORTED');
    expect(end - j.settledAt).toBeLessThan(15_000);
  }, 70_000);
});

// ---------------------------------------------------------------------------------------------------------
// 5. Soak

describe('soak: a hostile folder on every backend under a memory bound', () => {
  it('no hang, no crash, bounded RSS, the same kept files and labels on every backend, cold and cached', async () => {
    const dir = await hostileFolder(path.join(tmp, 'soak'), { socket: true });
    const cap = 8 * 2 ** 20;
    const r = await runNode(path.join(CHILDREN, 'hostile-folder.mjs'), ['soak', dir, path.join(tmp, 'soak-cache'), String(cap)], {
      nodeArgs: ['--max-old-space-size=256'], timeoutMs: 180_000, // a hang never ends; a slow shared CI machine takes up to ≈2 min
    });
    expect(r.timedOut, 'hang').toBe(false);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    type Run = { backend: string; pass: string; files: string[]; labels: number[]; skipped: { file: string; error: string }[] };
    const j = lastJson<{ runs: Run[]; reads: { name: string; ok?: number; code?: string; message?: string }[]; warnings: string[]; maxRssMiB: number }>(r.stdout);
    console.log(`soak: ${j.runs.length} runs (${[...new Set(j.runs.map((x) => x.backend))].join(', ')}), peak RSS ${j.maxRssMiB.toFixed(0)} MiB, ${(r.ms / 1000).toFixed(1)} s`);
    const base = j.runs[0]!;
    expect(base.files.map((f) => path.basename(f)).sort()).toEqual(['g0.png', 'g1.png', 'g2.png', 'new\nline "q", -x.png', 'ok\\xe9-latin1.png']);
    expect(base.skipped.length).toBe(13);
    for (const x of j.runs) {
      expect(x.files, `${x.backend} ${x.pass}`).toEqual(base.files);
      expect(x.labels, `${x.backend} ${x.pass}`).toEqual(base.labels);
      expect(x.skipped.map((s) => s.file)).toEqual(base.skipped.map((s) => s.file));
    }
    expect(j.warnings).toEqual([]);
    const reasons = Object.fromEntries(j.reads.filter((x) => x.code).map((x) => [path.basename(x.name), x.message!]));
    expect(reasons['sparse2.png']).toMatch(/over the image size cap of 8388608 bytes/);
    expect(reasons['u.png']).toMatch(/character device/);
    expect(reasons['sock.png']).toMatch(/socket/);
    expect(j.reads.filter((x) => x.ok).length).toBe(7); // 5 images + zeros.png and bad\xff\xfe.png (readable, not decodable)
    // The model session is most of it; two 1.5 GB sparse files and /dev/zero read whole would be GBs.
    expect(j.maxRssMiB).toBeLessThan(1536);
  }, 200_000);
});
