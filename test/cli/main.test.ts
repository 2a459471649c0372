import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main, EXIT, parseBytes, parseTau } from '../../src/cli/main.js';
import { createProgress } from '../../src/cli/progress.js';
import { generateSample, type Sample } from '../../src/sample/index.js';
import type { ResultJson } from '../../src/cli/main.js';

let tmp: string;
let sample: Sample;
let cache: string;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ac-cli-'));
  cache = path.join(tmp, 'cache');
  sample = await generateSample(path.join(tmp, 'sample'), { perClass: 3, trainNormals: 4, seed: 5 });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the CLI in-process. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false }, cwd: tmp });
  return { code, out, err };
}

describe('cli: usage and bad input', () => {
  it('--help documents the options and exit codes', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    for (const s of ['--fit', '--fast', '--k', '--k-criterion', '--k-max', '--normals', '--weighting', '--tau', '--embedding-norm', '--linkage', '--backend', '--out', '--eval', '--json', '--skip-bad', 'demo', 'Exit codes']) {
      expect(r.out).toContain(s);
    }
  });
  it('--help is wrapped to the terminal width and lists the environment variables', async () => {
    for (const columns of [60, 100]) {
      let out = '';
      expect(await main(['--help'], { stdout: { write: (x: string) => (out += x), isTTY: true, columns }, stderr: { write: () => true } })).toBe(0);
      const lines = out.trimEnd().split('\n');
      expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(columns);
      for (const s of ['Environment:', 'ANOMALY_CLUSTERING_CACHE', 'XDG_CACHE_HOME', 'ANOMALY_CLUSTERING_TARBALLS', '--no-cache']) expect(out).toContain(s);
    }
    let narrow = '';
    await main(['--help'], { stdout: { write: (x: string) => (narrow += x), isTTY: true, columns: 60 }, stderr: { write: () => true } });
    let wide = '';
    await main(['--help'], { stdout: { write: (x: string) => (wide += x), isTTY: true, columns: 200 }, stderr: { write: () => true } });
    expect(narrow.replace(/\s+/g, '')).toBe(wide.replace(/\s+/g, '')); // nothing lost (a word too long for a line is cut)
    expect(narrow.split('\n').length).toBeGreaterThan(wide.split('\n').length);
  });
  it('progress lines keep their last character on a terminal reporting 0 columns', () => {
    for (const columns of [0, undefined, 200]) {
      let out = '';
      const p = createProgress({ write: (x: string) => (out += x), isTTY: true, columns }, { now: () => 0 });
      p.update({ stage: 'features', done: 3, total: 3 });
      p.done();
      expect(out).toMatch(/3\/3  done in 0ms\n/);
    }
    let plain = '';
    const q = createProgress({ write: (x: string) => (plain += x), isTTY: false }, { now: () => 0 });
    q.update({ stage: 'model', done: 95_128_781, total: 95_128_781 });
    expect(plain).toContain('model download: 95 MB/95 MB (100%)');
  });
  it('--version prints the package version', async () => {
    const r = await run('--version');
    expect(r.out.trim()).toBe(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });
  const cases: [string, string[], number, RegExp][] = [
    ['no folder', [], EXIT.USAGE, /missing <folder>/],
    ['unknown option', ['x', '--k', '2', '--frobnicate'], EXIT.USAGE, /frobnicate/],
    ['bad --k-max', ['SAMPLE', '--k-max', '1'], EXIT.USAGE, /--k-max: expected an integer ≥ 2/],
    ['bad --k-criterion', ['SAMPLE', '--k-criterion', 'elbow'], EXIT.USAGE, /--k-criterion: expected one of height-gap, silhouette/],
    ['--k-max with a fixed --k', ['SAMPLE', '--k', '3', '--k-max', '5'], EXIT.USAGE, /only with automatic K/],
    ['--k not a number', ['SAMPLE', '--k', 'three'], EXIT.USAGE, /--k: expected an integer or 'auto', got "three"/],
    ['bad --weighting', ['SAMPLE', '--k', '2', '--weighting', 'magic'], EXIT.USAGE, /unsupervised, semi-supervised, uniform, max/],
    ['bad --linkage', ['SAMPLE', '--k', '2', '--linkage', 'nearest'], EXIT.USAGE, /ward/],
    ['bad --fit', ['SAMPLE', '--k', '2', '--fit', 'squash'], EXIT.USAGE, /stretch/],
    ['bad --embedding-norm', ['SAMPLE', '--k', '2', '--embedding-norm', 'cosine'], EXIT.USAGE, /--embedding-norm: expected one of l2-center-l2, center-l2, none/],
    ['bad --backend', ['SAMPLE', '--k', '2', '--backend', 'gpu'], EXIT.USAGE, /native, wasm, js/],
    ['bad --tau', ['SAMPLE', '--k', '2', '--tau', '-3'], EXIT.USAGE, /--tau/],
    ['--whiten 0', ['SAMPLE', '--k', '2', '--whiten', '0'], EXIT.USAGE, /--whiten: expected a shrinkage > 0 \(e\.g\. 1\) or none, got "0"/],
    ['bad --whiten', ['SAMPLE', '--k', '2', '--whiten', 'yes'], EXIT.USAGE, /--whiten: expected a shrinkage > 0/],
    ['bad --references', ['SAMPLE', '--k', '2', '--references', 'some'], EXIT.USAGE, /--references: expected an integer/],
    ['bad --batch-size', ['SAMPLE', '--k', '2', '--batch-size', '0'], EXIT.USAGE, /--batch-size/],
    ['bad --memory-limit', ['SAMPLE', '--k', '2', '--memory-limit', '8 apples'], EXIT.USAGE, /--memory-limit: expected a size > 0 such as 8G/],
    ['--memory-limit 0', ['SAMPLE', '--k', '2', '--memory-limit', '0'], EXIT.USAGE, /--memory-limit: expected a size > 0/],
    ['--references exact over --memory-limit', ['SAMPLE', '--k', '2', '--references', 'exact', '--memory-limit', '1M', '--no-cache'], EXIT.USAGE,
      /references 'exact' .* needs the whole feature bank in memory: 15 images × 784 patches × 256 dims = 0\.01 GiB, more than half the memory limit/],
    ['semi-supervised without --normals', ['SAMPLE', '--k', '2', '--weighting', 'semi-supervised'], EXIT.USAGE, /--normals: required/],
    ['missing folder', ['does-not-exist', '--k', '2'], EXIT.NOT_FOUND, /folder not found/],
    ['no images', ['EMPTY', '--k', '2'], EXIT.NO_IMAGES, /no images/],
    ['k = 0', ['SAMPLE', '--k', '0'], EXIT.K_RANGE, /--k: expected an integer ≥ 1/],
    ['k > n', ['SAMPLE', '--k', '16'], EXIT.K_RANGE, /1\.\.15/],
    ['normals folder empty', ['SAMPLE', '--k', '2', '--weighting', 'semi-supervised', '--normals', 'EMPTY'], EXIT.NORMALS, /normals: no images/],
    ['normals folder missing', ['SAMPLE', '--k', '2', '--weighting', 'semi-supervised', '--normals', 'nope'], EXIT.NORMALS, /folder not found/],
    ['unreadable image', ['BAD', '--k', '2', '--weighting', 'uniform', '--no-cache'], EXIT.IMAGE, /broken\.png/],
    ['--fast with layers that have no int8 calibration', ['SAMPLE', '--k', '2', '--fast', '--layers', 'activation_10,activation_39', '--no-cache'], EXIT.MODEL,
      /precision 'int8' needs a shipped calibration/],
  ];
  for (const [name, argv, code, msg] of cases) {
    it(`${name} → exit ${code}`, async () => {
      const empty = path.join(tmp, 'empty');
      mkdirSync(path.join(empty, 'sub'), { recursive: true });
      const bad = path.join(tmp, 'bad');
      if (!existsSync(bad)) {
        cpSync(path.join(sample.testDir, 'spot'), path.join(bad, 'spot'), { recursive: true });
        writeFileSync(path.join(bad, 'spot', 'broken.png'), 'not an image');
      }
      const args = argv.map((a) => (a === 'SAMPLE' ? sample.testDir : a === 'EMPTY' ? empty : a === 'BAD' ? bad : a));
      const r = await run(...args, '--out', path.join(tmp, 'out-bad'));
      expect(r.code).toBe(code);
      expect(r.err).toMatch(/^anomaly-clustering: /);
      expect(r.err).toMatch(msg);
      expect(r.out).toBe('');
    });
  }
  it('parses --tau forms', () => {
    expect(parseTau('0.5')).toBe(0.5);
    expect(parseTau('inf')).toBe(Infinity);
    expect(parseTau('rel:2')).toEqual({ relative: 2 });
    expect(parseTau('1.5x')).toEqual({ relative: 1.5 });
    expect(parseTau('relset:0.5')).toEqual({ relative: 0.5, spread: 'set' });
    expect(() => parseTau('rel:')).toThrow();
  });
});

describe('cli: clustering a folder', () => {
  it('writes clusters.csv, result.json and report.html; --json prints result.json with metrics', async () => {
    const out = path.join(tmp, 'out1');
    const r = await run(sample.testDir, '--k', '5', '--eval', '--json', '--out', out, '--cache', cache);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as ResultJson;
    expect(j.n).toBe(15);
    expect(j.k).toBe(5);
    expect(j.labels.length).toBe(15);
    expect(j.files.length).toBe(15);
    expect(j.metrics!.nmi).toBeGreaterThan(0.6);
    expect(Object.keys(j.metrics!).sort()).toEqual(['ari', 'f1', 'nmi']);
    expect(j.truth![0]).toBe('contamination');
    expect(j.options.preset).toBe('default');
    expect((j.options.methods as unknown[]).length).toBe(6);
    expect(j.options.consensus).toEqual({ linkage: 'average', kSpread: 1 });
    expect(j.versions.node).toBe(process.version);
    expect(['native', 'wasm', 'js']).toContain(j.versions.backend.name);
    expect(j.timings.weights).toBeGreaterThan(0);
    const onDisk = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')) as ResultJson;
    expect(onDisk.labels).toEqual(j.labels);
    const csv = readFileSync(path.join(out, 'clusters.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('file,cluster,class'); // --eval adds the true class
    expect(csv.length).toBe(16);
    expect(csv[1]).toMatch(/^contamination\/contamination_000\.png,0,contamination$/);
    // result.json: schema version, paths relative to the input folder like the CSV, Z in SciPy layout
    expect(j.schemaVersion).toBe(2);
    expect(j.files[0]).toBe('contamination/contamination_000.png');
    expect(j.files).toEqual(csv.slice(1).map((l) => l.split(',')[0]));
    expect(j.Z).toHaveLength(14);
    expect(j.Z.every((row) => row.length === 4)).toBe(true);
    expect(j.Z[13]![3]).toBe(15);
    expect(JSON.stringify(j.options)).not.toContain('null');
    expect(j.options).toMatchObject({ batchSize: 8, references: 'auto', backbone: { model: 'keras:resnet50', fit: 'stretch' }, cache: cache });
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html.match(/<section class="cluster"/g)!.length).toBe(5);
    expect(html.match(/<figure class="item"/g)!.length).toBe(15);
    expect(r.err).toContain('weights');

    // deterministic across runs
    expect(j.approximations).toEqual([]); // 15 images: exact scores
    const r2 = await run(sample.testDir, '--k', '5', '--json', '--out', path.join(tmp, 'out2'), '--cache', cache, '--no-report', '--references', 'exact');
    expect((JSON.parse(r2.out) as ResultJson).labels).toEqual(j.labels);
    expect((JSON.parse(r2.out) as ResultJson).options.references).toBe('exact');
    expect(existsSync(path.join(tmp, 'out2', 'report.html'))).toBe(false);
    expect(j.featureBank).toBe('memory');
    expect(j.linkageFrom).toBe('condensed');
    expect(j.options.memoryLimit).toBeGreaterThan(0); // the effective default (75 % of free memory)

    // Under a small --memory-limit the bank streams from disk and Ward runs on the vectors: same clusters here
    // (15 images: the automatic references are all 14 others).
    const r3 = await run(sample.testDir, '--k', '5', '--json', '--out', path.join(tmp, 'out2b'), '--cache', cache, '--no-report', '--memory-limit', '512');
    expect(r3.code).toBe(0);
    const j3 = JSON.parse(r3.out) as ResultJson;
    expect(j3.featureBank).toBe('disk');
    expect(j3.linkageFrom).toBe('vectors');
    expect(j3.options.memoryLimit).toBe(512);
    expect(j3.approximations[0]).toMatch(/feature bank streamed from disk/);
    expect(j3.labels).toEqual(j.labels);
  });

  it('--memory-limit sizes', () => {
    expect(parseBytes('m', '8G')).toBe(8 * 2 ** 30);
    expect(parseBytes('m', '512m')).toBe(512 * 2 ** 20);
    expect(parseBytes('m', '2.5GiB')).toBe(2.5 * 2 ** 30);
    expect(parseBytes('m', '1e9')).toBe(1e9);
    expect(parseBytes('m', '100 KB')).toBe(102400);
    expect(parseBytes('m', 'inf')).toBe(Infinity);
    expect(parseBytes('m', undefined)).toBeUndefined();
    for (const bad of ['', 'G', '-1G', '1X', '1e999', 'NaN']) {
      expect(() => parseBytes('m', bad), bad).toThrow(/expected a size > 0/);
    }
  });

  it('human-readable summary, semi-supervised with --normals, --eval metrics', async () => {
    const r = await run(sample.testDir, '--k', '5', '--weighting', 'semi-supervised', '--normals', sample.normalsDir!, '--eval', '--quiet',
      '--out', path.join(tmp, 'out3'), '--cache', cache, '--tau', 'rel:0.5');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/Clustered 15 images into 5 clusters \(semi-supervised τ0\.5σ, ward/);
    expect(r.out).toMatch(/NMI \d\.\d{3}\s+ARI -?\d\.\d{3}\s+F1 \d\.\d{3}/);
    expect(r.out).toContain('report.html');
  });

  it('without --k chooses K automatically, prints the choice, writes it to result.json and the report', async () => {
    const out = path.join(tmp, 'out-auto');
    const r = await run(sample.testDir, '--quiet', '--eval', '--out', out, '--cache', cache);
    expect(r.code).toBe(0);
    const j = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')) as ResultJson;
    const a = j.kAuto!;
    expect(a.criterion).toBe('height-gap');
    expect(a.kMax).toBe(14); // min(20, n − 1)
    expect(a.candidates.map((c) => c.k)).toEqual(Array.from({ length: 13 }, (_, i) => i + 2));
    expect(a.chosen).toBe(j.k);
    expect(a.candidates.find((c) => c.k === a.chosen)!.score).toBe(Math.max(...a.candidates.map((c) => c.score)));
    expect(new Set(j.labels).size).toBe(j.k);
    expect(j.options.k).toBe('auto');
    expect(r.out).toContain(`Clustered 15 images into ${j.k} clusters`);
    expect(r.out).toMatch(new RegExp(`K = ${j.k} chosen automatically \\(height-gap over 2\\.\\.14; best scores: K=${j.k} `));
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain(`id="kauto" data-chosen="${j.k}"`);
    expect(html.match(/<rect class="kbar[^"]*" data-k=/g)!.length).toBe(13);
    expect(html).toContain(`<rect class="kbar chosen" data-k="${j.k}"`);
    expect(html.match(/<section class="cluster"/g)!.length).toBe(j.k);

    // --k auto is the same; --k-criterion / --k-max are honoured; a fixed --k has no kAuto
    const r2 = await run(sample.testDir, '--k', 'auto', '--k-criterion', 'silhouette', '--k-max', '6', '--json', '--no-report', '--out', path.join(tmp, 'out-auto2'), '--cache', cache);
    expect(r2.code).toBe(0);
    const j2 = JSON.parse(r2.out) as ResultJson;
    expect(j2.kAuto!.criterion).toBe('silhouette');
    expect(j2.kAuto!.candidates.map((c) => c.k)).toEqual([2, 3, 4, 5, 6]);
    expect(j2.k).toBe(j2.kAuto!.chosen);
    const r3 = await run(sample.testDir, '--k', '4', '--json', '--no-report', '--out', path.join(tmp, 'out-auto3'), '--cache', cache);
    const j3 = JSON.parse(r3.out) as ResultJson;
    expect(j3.kAuto).toBeUndefined();
    expect(j3.options.preset).toBe('default');
    expect(j3.whitened).toBe(false); // the default's primary member is the paper's (its whitened members are in options.methods)
    expect((j3.options.methods as { whiten: unknown }[]).map((m) => m.whiten)).toEqual([false, false, false, false, 1, 1]);
    const r4 = await run(sample.testDir, '--k', '4', '--embedding-norm', 'none', '--json', '--no-report', '--out', path.join(tmp, 'out-auto4'), '--cache', cache);
    expect(r4.code).toBe(0);
    expect((JSON.parse(r4.out) as ResultJson).options.methods).toEqual([{ weighting: 'unsupervised', tau: { relative: 0.5 }, whiten: false, embeddingNorm: 'none' }]);
    const r5 = await run(sample.testDir, '--k', '4', '--whiten', 'none', '--json', '--no-report', '--out', path.join(tmp, 'out-auto5'), '--cache', cache);
    expect(r5.code).toBe(0);
    const j5 = JSON.parse(r5.out) as ResultJson;
    expect((j5.options.methods as { whiten: unknown }[])[0]!.whiten).toBe(false);
    expect(j5.whitened).toBe(false);
    const r6 = await run(sample.testDir, '--k', '4', '--whiten', '1', '--json', '--no-report', '--out', path.join(tmp, 'out-auto6'), '--cache', cache);
    const j6 = JSON.parse(r6.out) as ResultJson;
    expect(j6.whitened).toMatchObject({ shrinkage: 1 });
    expect((j6.whitened as { sampled: number }).sampled).toBeGreaterThan(0);
    const r7 = await run(sample.testDir, '--k', '4', '--preset', 'paper', '--json', '--no-report', '--out', path.join(tmp, 'out-auto7'), '--cache', cache);
    expect((JSON.parse(r7.out) as ResultJson).options.preset).toBe('paper');
    expect((await run(sample.testDir, '--k', '4', '--preset', 'best')).code).toBe(EXIT.USAGE);
  });

  it('--skip-bad skips unreadable images', async () => {
    const bad = path.join(tmp, 'bad2');
    cpSync(path.join(sample.testDir, 'crack'), path.join(bad, 'crack'), { recursive: true });
    cpSync(path.join(sample.testDir, 'good'), path.join(bad, 'good'), { recursive: true });
    writeFileSync(path.join(bad, 'good', 'zz-broken.jpg'), 'nope');
    const r = await run(bad, '--k', '2', '--skip-bad', '--json', '--weighting', 'max', '--out', path.join(tmp, 'out4'), '--no-cache');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as ResultJson;
    expect(j.n).toBe(6);
    expect(j.skipped.length).toBe(1);
  });

  it('demo generates the sample, clusters it with --eval and writes the report', async () => {
    const out = path.join(tmp, 'demo');
    const r = await run('demo', '--per-class', '3', '--out', out, '--cache', cache);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/NMI \d\.\d{3}/);
    expect(r.out).toContain(path.join(out, 'report.html'));
    expect(existsSync(path.join(out, 'sample', 'test', 'scratch', 'scratch_000.png'))).toBe(true);
    const j = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')) as ResultJson;
    expect(j.k).toBe(5);
    expect(j.metrics!.nmi).toBeGreaterThan(0.6);
  });
});

describe('cli: the built executable', () => {
  const bin = path.join(root, 'dist', 'src', 'cli', 'main.js');
  it.runIf(existsSync(bin))('has a shebang, runs under node and returns distinct exit codes', () => {
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Exit codes');
    const miss = spawnSync(process.execPath, [bin, path.join(tmp, 'nowhere'), '--k', '3'], { encoding: 'utf8' });
    expect(miss.status).toBe(EXIT.NOT_FOUND);
    expect(miss.stderr).toContain('folder not found');
    const k0 = spawnSync(process.execPath, [bin, sample.testDir, '--k', '99'], { encoding: 'utf8' });
    expect(k0.status).toBe(EXIT.K_RANGE);
  });
});
