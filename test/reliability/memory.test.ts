/**
 * @file Issue 7 — memory: a child process (`--expose-gc`, `MALLOC_ARENA_MAX=2` so glibc's per-thread arenas do
 * not masquerade as growth) warms up, then runs `AC_LEAK_ITERS` (default 200) loops of every kernel on every
 * backend — sync and async, success and error paths — plus a small `clusterImages` every 10th loop. RSS after gc
 * must stay flat: total growth and the least-squares slope are bounded, and so are the JS heap and external memory.
 * The native addon is also checked exactly under valgrind by `scripts/valgrind-native.sh` (not part of vitest).
 * @module test/reliability/memory
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CHILDREN, ROOT, ensureDist, lastJson, runNode, tempDir, texturedPng } from './helpers.js';

let tmp: string;
beforeAll(async () => {
  ensureDist();
  tmp = tempDir('ac-mem-');
  mkdirSync(path.join(tmp, 'imgs'));
  for (let i = 0; i < 3; i++) writeFileSync(path.join(tmp, 'imgs', `i${i}.png`), await texturedPng(40 + 9 * i, 40, i + 1));
}, 180_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface MemStats {
  backends: string[];
  iters: number;
  ms: number;
  rssWarm: number;
  rssEnd: number;
  rssSamples: number[];
  heapWarm: number;
  heapEnd: number;
  externalWarm: number;
  externalEnd: number;
  growth: number;
  slopePer100: number;
}

describe('no leak over repeated kernel calls and clusterings', () => {
  it('RSS, heap and external memory stay flat after warm-up', async () => {
    const iters = Math.max(20, Math.round(Number(process.env.AC_LEAK_ITERS ?? 200) / 10) * 10);
    const r = await runNode(path.join(CHILDREN, 'memory.mjs'), [path.join(tmp, 'imgs'), path.join(tmp, 'cache'), String(iters)], {
      nodeArgs: ['--expose-gc'],
      env: { MALLOC_ARENA_MAX: '2' },
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<MemStats>(r.stdout);
    console.log(
      `leak check (${s.backends.join('/')}, ${s.iters} loops, ${s.ms} ms): RSS ${s.rssWarm} → ${s.rssEnd} MB (growth ${s.growth} MB, ` +
        `slope ${s.slopePer100} MB/100 loops; samples ${s.rssSamples.join(' ')}), heap ${s.heapWarm} → ${s.heapEnd} MB, ` +
        `external ${s.externalWarm} → ${s.externalEnd} MB`,
    );
    // RSS after gc still flips between two levels ~18 MB apart (glibc trimming or not), so the end−warm difference
    // and the slope are noise; a leak raises the floor: compare the lowest sample of each half of the run.
    const half = s.rssSamples.length / 2;
    const floorGrowth = Math.min(...s.rssSamples.slice(half)) - Math.min(...s.rssSamples.slice(0, half));
    console.log(`leak check: RSS floor growth ${floorGrowth.toFixed(2)} MB between the halves of ${s.iters} loops`);
    expect(floorGrowth).toBeLessThan(8);
    expect(s.heapEnd - s.heapWarm).toBeLessThan(2);
    expect(s.externalEnd - s.externalWarm).toBeLessThan(2);
  }, 150_000);
});

// About 25 s on 2 shared cores: opt-in (AC_VALGRIND=1) so the default suite stays well under a minute.
describe.runIf(process.env.AC_VALGRIND === '1')('valgrind (opt-in: AC_VALGRIND=1)', () => {
  it('every native export runs clean under memcheck: 0 errors, 0 bytes definitely/indirectly lost', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      import('node:child_process').then(({ spawn }) => {
        const c = spawn('bash', [path.join(ROOT, 'scripts', 'valgrind-native.sh')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (b: Buffer) => (out += b.toString()));
        c.stderr.on('data', (b: Buffer) => (out += b.toString()));
        c.on('close', (code) => resolve({ code, out }));
      });
    });
    console.log(r.out.slice(r.out.indexOf('---- valgrind summary')));
    expect(r.code, r.out.slice(-3000)).toBe(0);
    expect(r.out).toMatch(/definitely lost: 0 bytes/);
    expect(r.out).toMatch(/ERROR SUMMARY: 0 errors/);
  }, 300_000);
});
