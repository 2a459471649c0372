/**
 * Sharded feature extraction (`pipeline/shard.ts`, docs/sharding.md): the partition, and the real thing with
 * **parallel local processes**: two `anomaly-clustering features <dir> --shard i/2` processes (the built CLI)
 * fill a shared cache at the same time, then the cluster step (`clusterImages` with `fromCache`, CLI `cluster`)
 * gives the same labels as one process that extracts everything itself, and fails clearly, without computing
 * anything, when an entry is missing.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import { KernelError } from '../../src/errors.js';
import { clusterImages, listImages } from '../../src/pipeline/run.js';
import { extractShard, MissingFeaturesError, parseShard, shardOf, shardRange, type ShardManifest } from '../../src/pipeline/shard.js';
import { generateSample } from '../../src/sample/index.js';
import { arr } from '../helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'dist', 'src', 'cli', 'main.js');

describe('shard partition', () => {
  it('parses i/n and rejects anything else', () => {
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    expect(parseShard(' 3 / 4 ')).toEqual({ index: 3, count: 4 });
    for (const bad of ['1/1', '4/4', '-1/2', '1', '1/0', 'a/b', '1.5/4', '']) expect(() => parseShard(bad), bad).toThrow(RangeError);
  });
  it('contiguous ranges covering every image exactly once, sizes within one; shardOf inverts it', () => {
    for (const total of [0, 1, 2, 7, 100, 101]) {
      for (const count of [1, 2, 3, 7, 16]) {
        const seen = new Array<number>(total).fill(0);
        let prevEnd = 0;
        const sizes: number[] = [];
        for (let index = 0; index < count; index++) {
          const [a, b] = shardRange(total, { index, count });
          expect(a).toBe(prevEnd);
          prevEnd = b;
          sizes.push(b - a);
          for (let i = a; i < b; i++) {
            seen[i]!++;
            expect(shardOf(i, total, count)).toBe(index);
          }
        }
        expect(prevEnd).toBe(total);
        expect(seen.every((s) => s === 1)).toBe(true);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });
});

/** Runs the built CLI in a child process; resolves with its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Runs the CLI in-process. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false } });
  return { code, out, err };
}

describe('sharded extraction with parallel local processes', () => {
  let tmp = '';
  let dir = '';
  let shared = '';
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'ac-shard-'));
    dir = (await generateSample(path.join(tmp, 'sample'), { perClass: 3, trainNormals: 0, seed: 9 })).testDir;
    shared = path.join(tmp, 'shared-cache');
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('2 shards in parallel, then the cluster step: the same labels as one process', async () => {
    // The child processes run the built CLI: it must exist and be current (`npx tsc -p .`).
    expect(existsSync(bin), `${bin} missing: build with npx tsc -p tsconfig.json`).toBe(true);
    expect(existsSync(path.join(root, 'dist', 'src', 'pipeline', 'shard.js')), 'dist is older than the shard module: rebuild').toBe(true);
    const shards = await Promise.all([0, 1].map((i) => cli(['features', dir, '--shard', `${i}/2`, '--cache', shared, '--threads', '1', '-q'])));
    for (const s of shards) expect(s.code, s.err).toBe(0);
    expect(shards[0]!.out).toMatch(/Shard 0\/2: images 0–6 of 15/);

    // the manifests split the sorted list between them
    // one request folder: the feature options and the basis fitted on the whole list (the same in both shards)
    const keys = readdirSync(path.join(shared, 'shards'));
    expect(keys).toHaveLength(1);
    const key = keys[0]!;
    const mdir = path.join(shared, 'shards', key);
    const files = readdirSync(mdir).sort();
    expect(files.map((f) => f.replace(/-[0-9a-f]{8}\.json$/, ''))).toEqual(['0-of-2', '1-of-2']);
    const list = listImages(dir);
    const names = files.flatMap((f) => (JSON.parse(readFileSync(path.join(mdir, f), 'utf8')) as ShardManifest).images.map((im) => im.name));
    expect(names).toEqual(list);

    const opts = { k: 5, features: { threads: 2 } } as const;
    const one = await clusterImages(dir, { ...opts, features: { ...opts.features, cacheDir: path.join(tmp, 'own-cache') } });
    const sharded = await clusterImages(dir, { ...opts, features: { ...opts.features, cacheDir: shared, fromCache: true } });
    expect(sharded.files).toEqual(one.files);
    expect(arr(sharded.labels)).toEqual(arr(one.labels));
    expect(sharded.timings.features).toBe(0);
    let diff = 0;
    for (let i = 0; i < one.embeddings.length; i++) diff = Math.max(diff, Math.abs(one.embeddings[i]! - sharded.embeddings[i]!));
    expect(diff).toBeLessThan(1e-4);

    // the CLI's cluster step: same labels in clusters.csv
    const out = path.join(tmp, 'out');
    const r = await run('cluster', dir, '--cache', shared, '--k', '5', '--out', out, '--no-report', '-q');
    expect(r.code, r.err).toBe(EXIT.OK);
    const csv = readFileSync(path.join(out, 'clusters.csv'), 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',').pop()));
    expect(csv).toEqual(arr(one.labels));

    // uniform pooling uses the unprojected pooled entries the shards wrote, as one process does
    const u1 = await clusterImages(dir, { ...opts, weighting: 'uniform', features: { ...opts.features, cacheDir: path.join(tmp, 'own-cache') } });
    const u2 = await clusterImages(dir, { ...opts, weighting: 'uniform', features: { ...opts.features, cacheDir: shared, fromCache: true } });
    expect(arr(u2.labels)).toEqual(arr(u1.labels));
    expect(u2.approximations).toEqual(u1.approximations);
  });

  it('a missing entry fails clearly (image and shard named, exit 10) and nothing is computed', async () => {
    const broken = path.join(tmp, 'broken-cache');
    cpSync(shared, broken, { recursive: true });
    const mdir = path.join(broken, 'shards', readdirSync(path.join(broken, 'shards'))[0]!);
    const second = readdirSync(mdir).find((f) => f.startsWith('1-of-2-'))!;
    const m = JSON.parse(readFileSync(path.join(mdir, second), 'utf8')) as ShardManifest;
    const victim = m.images[2]!;
    rmSync(path.join(broken, m.bags, `${victim.sha256}.npy`));
    let err: unknown;
    try {
      await clusterImages(dir, { k: 5, features: { cacheDir: broken, fromCache: true } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingFeaturesError);
    expect((err as MissingFeaturesError).code).toBe('ERR_IO');
    expect((err as MissingFeaturesError).missing).toEqual([victim.name]);
    expect((err as Error).message).toContain('shard 1/2 lists it');
    expect(existsSync(path.join(broken, m.bags, `${victim.sha256}.npy`))).toBe(false); // not recomputed
    const r = await run('cluster', dir, '--cache', broken, '--k', '5', '--out', path.join(tmp, 'o2'), '--no-report', '-q');
    expect(r.code).toBe(EXIT.IO);
    expect(r.err).toContain(path.basename(victim.name));

    // a shard that never ran: its images are named with the shard they belong to
    const half = path.join(tmp, 'half-cache');
    cpSync(shared, half, { recursive: true });
    rmSync(path.join(half, 'shards', readdirSync(path.join(half, 'shards'))[0]!, second));
    for (const im of m.images) rmSync(path.join(half, m.bags, `${im.sha256}.npy`));
    await expect(clusterImages(dir, { k: 5, features: { cacheDir: half, fromCache: true } })).rejects.toThrow(/8 of 15 images have no cached features.*shard 1\/2 by the partition/);

    // no manifest at all for these options (another cache, or other feature options)
    await expect(clusterImages(dir, { k: 5, features: { cacheDir: path.join(tmp, 'empty'), fromCache: true } })).rejects.toThrow(/no shard manifest/);
    await expect(clusterImages(dir, { k: 5, features: { cacheDir: shared, fromCache: true, layerNorm: 'none' } })).rejects.toBeInstanceOf(KernelError);
  });

  it('unreadable images: skipped by the shard and by the cluster step alike (skipBad), else ERR_IMAGE', async () => {
    // a copy of the sample plus a corrupt file: every other image hits the caches (content-addressed)
    const dir2 = path.join(tmp, 'with-bad');
    cpSync(dir, dir2, { recursive: true });
    writeFileSync(path.join(dir2, 'good', 'zz-corrupt.png'), 'not an image');
    const list = listImages(dir2);
    for (const index of [0, 1]) await extractShard(list, { shard: { index, count: 2 }, cacheDir: shared, skipBad: true, threads: 2 });
    const one = await clusterImages(dir2, { k: 5, features: { threads: 2, skipBad: true, cacheDir: path.join(tmp, 'own-cache') } });
    const sharded = await clusterImages(dir2, { k: 5, features: { skipBad: true, cacheDir: shared, fromCache: true } });
    expect(sharded.skipped.map((x) => x.file)).toEqual([path.join(dir2, 'good', 'zz-corrupt.png')]);
    expect(sharded.skipped.map((x) => x.file)).toEqual(one.skipped.map((x) => x.file));
    expect(arr(sharded.labels)).toEqual(arr(one.labels));
    await expect(clusterImages(dir2, { k: 5, features: { cacheDir: shared, fromCache: true } })).rejects.toMatchObject({ code: 'ERR_IMAGE' });
  });

  it('usage errors', async () => {
    expect((await run('features', dir)).err).toMatch(/--shard I\/N is required/);
    expect((await run('features', dir, '--shard', '2/2')).code).toBe(EXIT.USAGE);
    expect((await run('features', dir, '--shard', '1/2', '--no-cache')).code).toBe(EXIT.USAGE);
    expect((await run(dir, '--shard', '0/2')).err).toMatch(/only with the 'features' subcommand/);
    expect((await run('cluster', dir, '--no-cache')).code).toBe(EXIT.USAGE);
  });
});
