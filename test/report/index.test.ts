import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { clusterImages, type ClusterResult } from '../../src/pipeline/run.js';
import { evaluate } from '../../src/pipeline/metrics.js';
import { renderReport, leafOrder, dendrogramSvg, writeReport } from '../../src/report/index.js';
import { generateSample, type Sample } from '../../src/sample/index.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
let tmp: string;
let sample: Sample;
let result: ClusterResult;
let truth: string[];
let file: string;
let autoResult: ClusterResult;
let autoFile: string;

function chromium(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', `--user-data-dir=${path.join(tmp, 'chromium-profile')}`, '--hide-scrollbars', ...args,
  ], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ac-report-'));
  sample = await generateSample(path.join(tmp, 'sample'), { perClass: 4, trainNormals: 0, seed: 3 });
  result = await clusterImages(sample.testDir, { k: 5, features: { cacheDir: path.join(tmp, 'cache'), threads: 2 } });
  truth = result.files.map((f) => path.basename(path.dirname(f)));
  file = path.join(tmp, 'report.html');
  await writeReport(file, result, { truth, metrics: evaluate(result.labels, truth), title: 'Report test' });
  // automatic K (no k given): the report gets the candidates panel
  autoResult = await clusterImages(sample.testDir, { weighting: 'max', features: { cacheDir: path.join(tmp, 'cache'), threads: 2 } });
  autoFile = path.join(tmp, 'report-auto.html');
  await writeReport(autoFile, autoResult, { truth, title: 'Report test (automatic K)' });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('report helpers', () => {
  it('leafOrder visits every observation once', () => {
    const order = leafOrder(result.Z, result.n);
    expect([...order].sort((a, b) => a - b)).toEqual([...Array(result.n).keys()]);
    expect(leafOrder(new Float64Array(0), 1)).toEqual([0]);
  });
  it('dendrogramSvg draws n−1 links and the cut', () => {
    const svg = dendrogramSvg(result.Z, result.n, result.labels, 5);
    expect(svg.match(/<path /g)!.length).toBe(result.n - 1);
    expect(svg).toContain('K = 5');
  });
  it('dendrogram leaves link to the thumbnails; captions are relative paths; classes and clusters use separate palettes', () => {
    const names = result.files.map((f) => path.relative(sample.testDir, f));
    const svg = dendrogramSvg(result.Z, result.n, result.labels, 5, 1000, 260, names);
    const hrefs = [...svg.matchAll(/<a class="leaf" href="#item-(\d+)">/g)].map((m) => Number(m[1]));
    expect(hrefs).toEqual(leafOrder(result.Z, result.n));
    const html = readFileSync(file, 'utf8');
    for (let i = 0; i < result.n; i++) expect(html).toContain(`id="item-${i}"`);
    expect(html).toContain(`<span class="name">${names[0]}</span>`); // class folder / file, not the bare name
    expect(html).toContain('class="heat-legend"');
    const classColours = [...html.matchAll(/<span class="chip class" style="--c:([^"]+)"/g)].map((m) => m[1]);
    const clusterColours = [...html.matchAll(/<section class="cluster"[^>]*style="--c:([^"]+)"/g)].map((m) => m[1]);
    expect(classColours.length).toBeGreaterThan(0);
    expect(clusterColours).toHaveLength(5);
    for (const c of classColours) expect(clusterColours).not.toContain(c);
  });
  it('is one self-contained file: no external resources', async () => {
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/\s(?:src|href)="(?!data:|#)/);
    expect(html).not.toMatch(/url\((?!data:)/);
    expect(statSync(file).size).toBeLessThan(2_000_000);
  });
  it('renders without truth or metrics', async () => {
    const html = await renderReport(result);
    expect(html.match(/<section class="cluster"/g)!.length).toBe(5);
    expect(html).not.toContain('id="metrics"');
  });
});

describe('report: automatic K', () => {
  it('shows every candidate K with the chosen one highlighted (and no panel for a fixed K)', () => {
    const a = autoResult.kAuto!;
    expect(a.candidates.length).toBe(18); // K = 2..19 for 20 images
    const html = readFileSync(autoFile, 'utf8');
    expect(html).toContain(`<div class="panel" id="kauto" data-chosen="${autoResult.k}" data-criterion="height-gap">`);
    expect(html.match(/<rect class="kbar[^"]*" data-k="\d+"/g)!.length).toBe(18);
    expect(html.match(/<rect class="kbar chosen"/g)!.length).toBe(1);
    expect(html).toContain(`<rect class="kbar chosen" data-k="${a.chosen}"`);
    expect(html).toContain(`<tr data-k="${a.chosen}" class="chosen"><th>${a.chosen}</th><td>${a.candidates.find((c) => c.k === a.chosen)!.score.toPrecision(4)}</td>`);
    expect(html.match(/<section class="cluster"/g)!.length).toBe(autoResult.k);
    expect(readFileSync(file, 'utf8')).not.toContain('id="kauto"');
  });
});

describe.runIf(existsSync(CHROMIUM))('report in headless Chromium', () => {
  it('has one section per cluster holding its images, all thumbnails decodable', () => {
    // a probe page: the report plus a script that records what the browser actually laid out and decoded
    const probe = path.join(tmp, 'probe.html');
    const check = `<script>addEventListener('load', () => {
      const imgs = [...document.images];
      const sec = [...document.querySelectorAll('section.cluster')].map((s) => [s.dataset.cluster, s.dataset.size, s.querySelectorAll('figure.item').length, s.getBoundingClientRect().height > 0].join(':'));
      const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
      document.body.setAttribute('data-probe', JSON.stringify({ imgs: imgs.length, ok, sec, svg: document.querySelectorAll('#dendrogram path').length }));
    });</script>`;
    writeFileSync(probe, readFileSync(file, 'utf8').replace('</body>', `${check}</body>`));
    const r = chromium('--virtual-time-budget=10000', '--dump-dom', `file://${probe}`);
    expect(r.status).toBe(0);
    const dom = r.stdout;
    const sections = dom.match(/<section class="cluster" data-cluster="\d+"/g) ?? [];
    expect(sections.length).toBe(5);
    expect((dom.match(/<figure class="item"/g) ?? []).length).toBe(result.n);
    const m = /data-probe="([^"]*)"/.exec(dom);
    expect(m).not.toBeNull();
    const p = JSON.parse(m![1]!.replace(/&quot;/g, '"')) as { imgs: number; ok: number; sec: string[]; svg: number };
    expect(p.imgs).toBe(2 * result.n); // thumbnail + heat map each
    expect(p.ok).toBe(p.imgs);
    expect(p.svg).toBe(result.n - 1);
    const sizes = new Array(5).fill(0);
    for (const l of result.labels) sizes[l]++;
    expect(p.sec).toEqual(sizes.map((s, c) => `${c}:${s}:${s}:true`));
  });

  it('lays out the automatic-K chart with the chosen bar in the highlight colour', () => {
    const probe = path.join(tmp, 'probe-auto.html');
    const check = `<script>addEventListener('load', () => {
      const panel = document.getElementById('kauto');
      const bars = [...document.querySelectorAll('#kauto rect.kbar')].map((r) => [r.dataset.k, getComputedStyle(r).fill, r.getBoundingClientRect().height > 0].join('|'));
      document.body.setAttribute('data-probe', JSON.stringify({ h: panel.getBoundingClientRect().height, bars }));
    });</script>`;
    writeFileSync(probe, readFileSync(autoFile, 'utf8').replace('</body>', `${check}</body>`));
    const r = chromium('--virtual-time-budget=10000', '--dump-dom', `file://${probe}`);
    expect(r.status).toBe(0);
    const m = /data-probe="([^"]*)"/.exec(r.stdout);
    expect(m).not.toBeNull();
    const p = JSON.parse(m![1]!.replace(/&quot;/g, '"')) as { h: number; bars: string[] };
    expect(p.h).toBeGreaterThan(100);
    const chosen = String(autoResult.k);
    expect(p.bars.length).toBe(18);
    for (const b of p.bars) {
      const [k, fill, visible] = b.split('|');
      expect(visible).toBe('true');
      if (k === chosen) expect(fill).toBe('rgb(225, 87, 89)');
      else expect(fill).toBe('rgb(184, 194, 209)');
    }
  });

  it('renders a screenshot', () => {
    const shot = path.join(tmp, 'report.png');
    const r = chromium('--window-size=1400,1600', '--virtual-time-budget=10000', `--screenshot=${shot}`, `file://${file}`);
    expect(r.status).toBe(0);
    expect(statSync(shot).size).toBeGreaterThan(50_000);
    if (process.env.AC_KEEP_SCREENSHOT) writeFileSync(process.env.AC_KEEP_SCREENSHOT, readFileSync(shot));
  });
});
