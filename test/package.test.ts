/**
 * The package as a user gets it: `scripts/pack.mjs` packs the main tarball (no binary) and the linux-x64-gnu
 * platform tarball (stripped addon), both are installed with `npm install <tgz>…` into a fresh app in a temp folder
 * (ONNXRUNTIME_NODE_INSTALL=skip; the npm registry serves sharp, onnxruntime-node, pacote), and there:
 * ESM import, CJS require, a strict TypeScript check of a consumer under `nodenext` (.mts and .cts) and `bundler`
 * resolution without @types/node, and `clusterImages(dir)` with a brand-new $XDG_CACHE_HOME — the real first run:
 * the default model is downloaded with pacote (integrity-checked), converted and cached there, and nothing is written
 * to the working directory. Then the installed CLI writes result.json / clusters.csv / report.html: Z is fed to
 * SciPy (`fcluster` must give the same partition) and the report is laid out in headless Chromium.
 * Prints the tarball sizes, node_modules size and the first-run time. Needs a built tree (scripts/bootstrap.sh).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = existsSync(path.join(root, 'dist', 'src', 'index.js')) && existsSync(path.join(root, 'bindings', 'native', 'anomaly-clustering.linux-x64-gnu.node'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PYTHON = '/usr/bin/python3';

let tmp: string;
let app: string;
let cwd: string; // the working directory of every consumer process: must stay empty
let env: Record<string, string>;
let packed: { main: string; platform: string; sizes: Record<string, number> };
let nodeModulesBytes = 0;

function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? cwd, env, encoding: 'utf8', input: opts.input, timeout: opts.timeout ?? 120_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Bytes under a folder (files and symlinks themselves, not their targets). */
function du(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? du(p) : lstatSync(p).size;
  }
  return total;
}

beforeAll(() => {
  if (!built) return;
  tmp = mkdtempSync(path.join(tmpdir(), 'ac-package-'));
  app = path.join(tmp, 'app');
  cwd = path.join(tmp, 'cwd');
  for (const d of [app, cwd, path.join(tmp, 'home')]) mkdirSync(d, { recursive: true });
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANOMALY_CLUSTERING_') && !k.startsWith('npm_'))) as Record<string, string>;
  // a brand-new user: empty cache and home, nothing inherited from the developer's caches
  env = { ...base, HOME: path.join(tmp, 'home'), XDG_CACHE_HOME: path.join(tmp, 'xdg'), ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_cache: path.join(process.env.HOME ?? tmp, '.npm') };
  packed = JSON.parse(sh(process.execPath, [path.join(root, 'scripts', 'pack.mjs'), '--out', path.join(tmp, 'pack')], { cwd: root }).stdout.trim().split('\n').pop()!);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  sh('npm', ['install', '--no-audit', '--no-fund', '--engine-strict', packed.main, packed.platform], { cwd: app, timeout: 180_000 });
  nodeModulesBytes = du(path.join(app, 'node_modules'));
  console.log(`package: main tarball ${(packed.sizes.mainTgz! / 1e3).toFixed(0)} kB (${packed.sizes.mainFiles} files), ` +
    `platform tarball ${(packed.sizes.platformTgz! / 1e3).toFixed(0)} kB (addon ${(packed.sizes.addonUnstripped! / 1e6).toFixed(2)} MB → ` +
    `${(packed.sizes.addonStripped! / 1e6).toFixed(2)} MB stripped), node_modules ${(nodeModulesBytes / 1e6).toFixed(0)} MB`);
}, 300_000);
afterAll(() => {
  if (tmp && !process.env.AC_KEEP_PACKAGE_TEST) rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(built)('npm package installed from the packed tarballs', () => {
  it('main package has no binary; the platform package holds the stripped addon; node_modules ≤ 400 MB', () => {
    const installed = path.join(app, 'node_modules', 'anomaly-clustering');
    const files = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : [path.join(d, e.name)]));
    expect(files(installed).filter((f) => f.endsWith('.node'))).toEqual([]);
    const pj = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    expect(pj.optionalDependencies).toHaveProperty('anomaly-clustering-linux-x64-gnu');
    expect(pj.dependencies).not.toHaveProperty('nsfwjs');
    expect(existsSync(path.join(app, 'node_modules', 'nsfwjs'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules', 'anomaly-clustering-linux-x64-gnu', 'anomaly-clustering.linux-x64-gnu.node'))).toBe(true);
    expect(packed.sizes.addonStripped).toBeLessThan(packed.sizes.addonUnstripped! / 2);
    expect(nodeModulesBytes).toBeLessThan(400e6);
  });

  it('ESM import and CJS require give the same API; the native backend comes from the platform package', () => {
    writeFileSync(path.join(app, 'esm.mjs'), `import * as ac from 'anomaly-clustering';
      import pj from 'anomaly-clustering/package.json' with { type: 'json' };
      console.log(JSON.stringify({ n: Object.keys(ac).length, f: typeof ac.clusterImages, backend: ac.getBackend().name, v: pj.version }));`);
    writeFileSync(path.join(app, 'cjs.cjs'), `const ac = require('anomaly-clustering');
      const { pdist } = require('anomaly-clustering');
      console.log(JSON.stringify({ n: Object.keys(ac).length, f: typeof ac.clusterImages, backend: ac.getBackend().name, v: require('anomaly-clustering/package.json').version, d: pdist(new Float32Array([0, 0, 3, 4]), { d: 2 })[0] }));`);
    const esm = sh(process.execPath, [path.join(app, 'esm.mjs')]);
    const cjs = sh(process.execPath, [path.join(app, 'cjs.cjs')]);
    const e = JSON.parse(esm.stdout);
    const c = JSON.parse(cjs.stdout);
    expect(e).toMatchObject({ f: 'function', backend: 'native', v: '0.1.0' });
    expect(c).toMatchObject({ n: e.n, f: 'function', backend: 'native', v: '0.1.0', d: 5 });
    expect(esm.stderr + cjs.stderr).not.toMatch(/Warning/); // no fallback warning, no experimental require(esm) warning
  });

  it('the stages subpath (anomaly-clustering/stages) loads from ESM and CJS and type-checks', () => {
    writeFileSync(path.join(app, 'stages.mjs'), `import * as st from 'anomaly-clustering/stages';
      console.log(JSON.stringify({ w: typeof st.computeWeights, p: typeof st.planRun, k: typeof st.chooseK }));`);
    writeFileSync(path.join(app, 'stages.cjs'), `const st = require('anomaly-clustering/stages');
      console.log(JSON.stringify({ w: typeof st.computeWeights, p: typeof st.planRun, k: typeof st.chooseK }));`);
    const want = { w: 'function', p: 'function', k: 'function' };
    expect(JSON.parse(sh(process.execPath, [path.join(app, 'stages.mjs')]).stdout)).toEqual(want);
    expect(JSON.parse(sh(process.execPath, [path.join(app, 'stages.cjs')]).stdout)).toEqual(want);
    writeFileSync(path.join(app, 'stages-consumer.mts'), `import { computeWeights, type WeightingResult } from 'anomaly-clustering/stages';
      import type { FeatureBank } from 'anomaly-clustering';
      export async function weigh(bank: FeatureBank): Promise<number> {
        const w: WeightingResult = await computeWeights(bank, { weighting: 'uniform' });
        return w.embeddings.length;
      }\n`);
    const common = { strict: true, noEmit: true, target: 'es2022', types: [], skipLibCheck: false, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true };
    writeFileSync(path.join(app, 'tsconfig.stages.json'), JSON.stringify({ compilerOptions: { ...common, module: 'nodenext', moduleResolution: 'nodenext' }, files: ['stages-consumer.mts'] }));
    sh(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(app, 'tsconfig.stages.json')], { cwd: app });
  }, 120_000);

  it('type-checks in a strict TypeScript consumer (nodenext .mts/.cts, bundler) without @types/node', () => {
    const body = `const opts: ClusterOptions = {};
      export async function run(dir: string): Promise<number> {
        const r: ClusterResult = await clusterImages(dir);
        await clusterImages(dir, opts);
        const z: Float64Array = r.Z;
        const e = new KernelError('ERR_CACHE', 'x');
        return z.length + r.k + (e.code === 'ERR_CACHE' ? 0 : 1);
      }\n`;
    writeFileSync(path.join(app, 'consumer.mts'), `import { clusterImages, KernelError, type ClusterOptions, type ClusterResult } from 'anomaly-clustering';\n${body}`);
    writeFileSync(path.join(app, 'consumer.cts'), `import ac = require('anomaly-clustering');\nconst { clusterImages, KernelError } = ac;\ntype ClusterOptions = ac.ClusterOptions;\ntype ClusterResult = ac.ClusterResult;\n${body}`);
    writeFileSync(path.join(app, 'consumer.ts'), `import { clusterImages, KernelError, type ClusterOptions, type ClusterResult } from 'anomaly-clustering';\n${body}`);
    const common = { strict: true, noEmit: true, target: 'es2022', types: [], skipLibCheck: false, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true };
    writeFileSync(path.join(app, 'tsconfig.nodenext.json'), JSON.stringify({ compilerOptions: { ...common, module: 'nodenext', moduleResolution: 'nodenext' }, files: ['consumer.mts', 'consumer.cts'] }));
    writeFileSync(path.join(app, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...common, module: 'esnext', moduleResolution: 'bundler' }, files: ['consumer.ts'] }));
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const cfg of ['tsconfig.nodenext.json', 'tsconfig.bundler.json']) sh(process.execPath, [tsc, '-p', path.join(app, cfg)], { cwd: app });
    // the check can fail: a wrong option type is reported
    writeFileSync(path.join(app, 'bad.ts'), `import { clusterImages } from 'anomaly-clustering';\nvoid clusterImages('x', { k: 'three' });\n`);
    writeFileSync(path.join(app, 'tsconfig.bad.json'), JSON.stringify({ compilerOptions: { ...common, module: 'esnext', moduleResolution: 'bundler' }, files: ['bad.ts'] }));
    const bad = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.bad.json')], { cwd: app, encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/'"three"' is not assignable/);
  }, 120_000);

  it('first run: clusterImages(dir) downloads, verifies and converts the model into $XDG_CACHE_HOME; nothing in the cwd', () => {
    writeFileSync(path.join(app, 'first.mjs'), `import { clusterImages, generateSample } from 'anomaly-clustering';
      const s = await generateSample(process.argv[2], { seed: 5, perClass: 3, trainNormals: 0 });
      const t0 = performance.now();
      let model = 0;
      const r = await clusterImages(s.testDir, { onProgress: (p) => { if (p.stage === 'model') model = p.done; } });
      console.log(JSON.stringify({ n: r.n, k: r.k, ms: performance.now() - t0, model, backend: r.backend.name }));`);
    const first = JSON.parse(sh(process.execPath, [path.join(app, 'first.mjs'), path.join(tmp, 'sample')], { timeout: 240_000 }).stdout);
    const again = JSON.parse(sh(process.execPath, [path.join(app, 'first.mjs'), path.join(tmp, 'sample')]).stdout);
    console.log(`package: first run ${(first.ms / 1000).toFixed(1)} s (download ${(first.model / 1e6).toFixed(0)} MB + conversion + features of ${first.n} images), second run ${(again.ms / 1000).toFixed(1)} s`);
    expect(first).toMatchObject({ n: 15, backend: 'native', model: 95_128_781 });
    expect(again.model).toBe(0); // cached: no download
    expect(again.k).toBe(first.k);
    const models = path.join(tmp, 'xdg', 'anomaly-clustering', 'models');
    expect(readdirSync(models)).toEqual(['keras-resnet50-v1.onnx']); // no scratch folder left behind
    expect(readdirSync(path.join(tmp, 'xdg', 'anomaly-clustering', 'features')).length).toBeGreaterThan(0);
    expect(readdirSync(cwd)).toEqual([]);
    expect(existsSync(path.join(tmp, 'home', '.cache'))).toBe(false);
  }, 300_000);

  it('an unwritable cache gives ERR_CACHE with the fix, not a raw EPERM', () => {
    const blocker = path.join(tmp, 'not-a-folder');
    writeFileSync(blocker, '');
    writeFileSync(path.join(app, 'ro.mjs'), `import { clusterImages } from 'anomaly-clustering';
      try { await clusterImages(process.argv[2], { k: 2 }); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`);
    const r = spawnSync(process.execPath, [path.join(app, 'ro.mjs'), path.join(tmp, 'sample', 'test')], {
      cwd, encoding: 'utf8', env: { ...env, XDG_CACHE_HOME: path.join(tmp, 'xdg-empty'), ANOMALY_CLUSTERING_CACHE: path.join(blocker, 'cache') },
    });
    const out = JSON.parse(r.stdout);
    expect(out.code).toBe('ERR_CACHE');
    expect(out.message).toMatch(/ANOMALY_CLUSTERING_CACHE/);
  });

  describe('the installed CLI', () => {
    let out: string;
    let result: { files: string[]; labels: number[]; Z: number[][]; k: number; schemaVersion: number; options: Record<string, unknown>; truth: string[] };
    beforeAll(() => {
      if (!tmp) return;
      out = path.join(tmp, 'out');
      const bin = path.join(app, 'node_modules', '.bin', 'anomaly-clustering');
      sh(bin, [path.join(tmp, 'sample', 'test'), '--k', '4', '--eval', '--quiet', '--out', out], { timeout: 120_000 });
      result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
    }, 180_000);

    it('result.json: schema version, relative paths, effective options, no nulls; clusters.csv has the class', () => {
      expect(result.schemaVersion).toBe(2);
      expect(result.files.every((f) => !path.isAbsolute(f) && f.includes('/'))).toBe(true);
      expect(JSON.stringify(result)).not.toContain('null');
      expect(result.options.cache).toBe(path.join(tmp, 'xdg', 'anomaly-clustering'));
      const csv = readFileSync(path.join(out, 'clusters.csv'), 'utf8').trim().split('\n');
      expect(csv[0]).toBe('file,cluster,class');
      expect(csv.slice(1).map((l) => l.split(',')[2])).toEqual(result.truth);
      expect(readdirSync(cwd)).toEqual([]);
    });

    it.runIf(spawnSync(PYTHON, ['-c', 'import scipy'], { encoding: 'utf8' }).status === 0)('Z loads in SciPy: a valid linkage whose fcluster gives the same partition', () => {
      const py = `import json, sys
import numpy as np
from scipy.cluster.hierarchy import fcluster, is_valid_linkage
j = json.load(open(sys.argv[1]))
Z = np.array(j['Z'], dtype=float)
assert Z.shape == (len(j['files']) - 1, 4), Z.shape
assert is_valid_linkage(Z)
f = fcluster(Z, j['k'], criterion='maxclust')
pairs = set(zip(f.tolist(), j['labels']))
print(json.dumps({'k': int(len(set(f.tolist()))), 'pairs': len(pairs)}))`;
      const r = JSON.parse(sh(PYTHON, ['-c', py, path.join(out, 'result.json')], { cwd: tmp }).stdout);
      expect(r).toEqual({ k: result.k, pairs: result.k }); // a bijection between SciPy's and our labels
    });
    it.runIf(spawnSync(PYTHON, ['-c', 'import scipy'], { encoding: 'utf8' }).status !== 0)('Z in SciPy: skipped (python3 with scipy is absent; scripts/bootstrap.sh installs python3-scipy)', () => {
      console.warn('package.test: python3 with scipy not found; the SciPy check of result.json Z was skipped');
    });

    it.runIf(existsSync(CHROMIUM))('the report lays out in headless Chromium: every thumbnail decodes, dendrogram leaves link to them', () => {
      const probe = path.join(out, 'probe.html');
      const check = `<script>addEventListener('load', () => {
        const imgs = [...document.images];
        const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
        const leaves = [...document.querySelectorAll('#dendrogram a.leaf')].map((a) => a.getAttribute('href'));
        const targets = leaves.filter((h) => h && document.getElementById(h.slice(1))).length;
        const captions = [...document.querySelectorAll('figure.item figcaption .name')].map((c) => c.textContent);
        document.body.setAttribute('data-probe', JSON.stringify({ imgs: imgs.length, ok, leaves: leaves.length, targets, captions, legend: document.querySelectorAll('.heat-legend').length }));
      });</script>`;
      writeFileSync(probe, readFileSync(path.join(out, 'report.html'), 'utf8').replace('</body>', `${check}</body>`));
      const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${path.join(tmp, 'chromium')}`,
        '--virtual-time-budget=10000', '--dump-dom', `file://${probe}`], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
      expect(r.status).toBe(0);
      const m = /data-probe="([^"]*)"/.exec(r.stdout);
      expect(m).not.toBeNull();
      const p = JSON.parse(m![1]!.replace(/&quot;/g, '"')) as { imgs: number; ok: number; leaves: number; targets: number; captions: string[]; legend: number };
      expect(p.ok).toBe(p.imgs);
      expect(p.imgs).toBeGreaterThanOrEqual(2 * result.files.length);
      expect(p.leaves).toBe(result.files.length);
      expect(p.targets).toBe(result.files.length);
      expect([...p.captions].sort()).toEqual([...result.files].sort()); // relative paths, not bare names
      expect(p.legend).toBeGreaterThan(0);
    });
  });
});
