/**
 * @file A self-contained HTML report of a clustering (one file, no network): a summary (metrics when known,
 * options, timings), a cluster-size chart (stacked by true class when known), the dendrogram (SVG from Z, cut
 * at K), and one section per cluster with a thumbnail of every image and its patch-weight heat map overlaid,
 * so a reader sees *which* region put the image in its cluster.
 *
 * Thumbnails are small data-URI JPEGs of the same view the network saw (`fit`: by default the whole image,
 * stretched to a square; made with sharp, loaded lazily);
 * heat maps are tiny `gridW × gridH` RGBA PNGs that the browser upsamples smoothly.
 *
 * Clusters and true classes have separate palettes and marks (clusters: Tableau-10, round dots; classes: Dark2-like,
 * square marks), captions show paths relative to the input folder, every dendrogram leaf links to its thumbnail
 * (`#dendrogram a.leaf[href="#item-i"]`), and a colour bar (`.heat-legend`) explains the heat maps.
 *
 * Stable hooks for tests and scripts: `<section class="cluster" data-cluster="i" data-size="s">`,
 * `<figure class="item" id="item-i" data-file="…" data-cluster="i">`, `#dendrogram`, `#sizes`, `#metrics`.
 * @module report
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ImageInput } from '../pipeline/types.js';
import { DEFAULT_FIT, readImageBytes, type Fit } from '../pipeline/image.js';

/** What the report shows. A `ClusterResult` (pipeline/run.ts) fits, plus optional extras. */
export interface ReportInput {
  files: string[];
  labels: ArrayLike<number>;
  k: number;
  /** Per-image patch-weight maps (`gridH × gridW`). */
  weights: ArrayLike<number>[];
  gridH: number;
  gridW: number;
  /** SciPy linkage matrix `(n−1) × 4`. */
  Z: Float64Array;
  weighting?: string;
  tau?: number;
  /** The normalisation of the embeddings before the distances (`ClusterResult.embeddingNorm`). */
  embeddingNorm?: string;
  /** The patch whitening (`ClusterResult.whitened`). */
  whitened?: { shrinkage: number; sampled: number } | false;
  linkage?: string;
  timings?: Record<string, number | undefined>;
  backend?: { name: string; isa: string; threads?: number };
  skipped?: { file: string; error: string }[];
  /** When K was chosen automatically (`ClusterResult.kAuto`): shown as a chart and table of the candidates. */
  kAuto?: { criterion: string; chosen: number; kMax?: number; candidates: { k: number; score: number; se?: number }[] };
}

/** Options of {@link renderReport}. */
export interface ReportOptions {
  /** @default 'Anomaly clustering' */
  title?: string;
  /** True class of each image (enables class colours, purity and the stacked size chart). */
  truth?: string[];
  /** Scores to show (`{nmi, ari, f1}`). */
  metrics?: { nmi: number; ari: number; f1: number };
  /** Where to read each image from, when `files` are names rather than paths (same order). */
  sources?: ImageInput[];
  /** Thumbnail side in CSS pixels. @default 120 */
  thumbSize?: number;
  /** How the network's input was made from each image (see `BackboneSpec.fit`); the thumbnails show the same. @default `DEFAULT_FIT` ('stretch') */
  fit?: Fit;
  /** With `fit: 'crop'`: fraction of the shorter side the network saw (inputSize / resize). @default 224/256 */
  crop?: number;
  /** Extra key/values for the "run" table (options, versions…). */
  details?: Record<string, string | number | boolean | null | undefined>;
  /** Common folder to strip from displayed names. @default the longest common folder of `files` */
  root?: string;
}

/** Tableau-10: cluster colours. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
/** Colour of cluster `c`; beyond 10 clusters, golden-angle hues. */
export function clusterColour(c: number): string {
  return c < PALETTE.length ? PALETTE[c]! : `hsl(${Math.round((c * 137.508) % 360)} 55% 55%)`;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/** Stops of the inferno-like colour map of the heat maps (also drawn as the legend's colour bar). */
const INFERNO: [number, number, number][] = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]];

/** Inferno-like colour map, t ∈ [0,1] → [r,g,b] 0..255. */
function inferno(t: number): [number, number, number] {
  const stops = INFERNO;
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  return [0, 1, 2].map((c) => Math.round(a[c]! + (b[c]! - a[c]!) * f)) as [number, number, number];
}

/**
 * Leaf order of a dendrogram (SciPy's `dendrogram` order: left child before right child).
 * @param Z linkage matrix, size `(n−1)*4`
 * @returns the observations in display order (length n)
 */
export function leafOrder(Z: Float64Array, n: number): number[] {
  if (n <= 1) return n === 1 ? [0] : [];
  const out: number[] = [];
  const stack = [2 * n - 2];
  while (stack.length) {
    const id = stack.pop()!;
    if (id < n) out.push(id);
    else {
      const r = id - n;
      stack.push(Z[r * 4 + 1]!, Z[r * 4]!);
    }
  }
  return out;
}

/**
 * The dendrogram as an SVG string: leaves in {@link leafOrder}, branch heights from Z (√-scaled so small merges
 * stay visible), links inside a flat cluster drawn in its colour, a dashed line at the cut giving K clusters.
 */
export function dendrogramSvg(Z: Float64Array, n: number, labels: ArrayLike<number>, k: number, width = 1000, height = 260, names?: string[]): string {
  if (n < 2) return `<svg id="dendrogram" viewBox="0 0 ${width} ${height}" role="img" aria-label="dendrogram"></svg>`;
  const order = leafOrder(Z, n);
  const pad = { l: 44, r: 10, t: 12, b: names ? 22 : 16 };
  const W = width - pad.l - pad.r;
  const H = height - pad.t - pad.b;
  const xs = new Float64Array(2 * n - 1);
  order.forEach((leaf, i) => (xs[leaf] = pad.l + (n === 1 ? W / 2 : (i + 0.5) * (W / n))));
  const hs = new Float64Array(2 * n - 1);
  const lab = new Int32Array(2 * n - 1); // cluster of a node, or −1 when it spans several
  for (let i = 0; i < n; i++) lab[i] = labels[i]!;
  let maxH = 0;
  for (let r = 0; r < n - 1; r++) maxH = Math.max(maxH, Z[r * 4 + 2]!);
  const scale = (h: number) => pad.t + H - (maxH > 0 ? Math.sqrt(h / maxH) : 0) * H;
  const parts: string[] = [];
  for (let r = 0; r < n - 1; r++) {
    const a = Z[r * 4]!;
    const b = Z[r * 4 + 1]!;
    const id = n + r;
    hs[id] = Z[r * 4 + 2]!;
    xs[id] = (xs[a]! + xs[b]!) / 2;
    lab[id] = lab[a] === lab[b] ? lab[a]! : -1;
    const y = scale(hs[id]!);
    const colour = lab[id]! >= 0 ? clusterColour(lab[id]!) : '#8a8f98';
    parts.push(`<path d="M${xs[a]!.toFixed(1)} ${scale(hs[a]!).toFixed(1)}V${y.toFixed(1)}H${xs[b]!.toFixed(1)}V${scale(hs[b]!).toFixed(1)}" stroke="${colour}"/>`);
  }
  // the cut: between the (n−k)th and (n−k+1)th merge heights
  let cut = '';
  if (k > 1 && k <= n) {
    const lo = Z[(n - k - 1) * 4 + 2] ?? 0;
    const hi = Z[(n - k) * 4 + 2]!;
    const y = scale((lo + hi) / 2);
    cut = `<line class="cut" x1="${pad.l}" x2="${pad.l + W}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/><text class="cutlabel" x="${pad.l + W - 4}" y="${(y - 4).toFixed(1)}" text-anchor="end">K = ${k}</text>`;
  }
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const h = f * f * maxH; // √ scale: tick at height f²·max sits at fraction f
    const y = scale(h);
    return `<line class="tick" x1="${pad.l - 4}" x2="${pad.l}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/><text class="ticklabel" x="${pad.l - 6}" y="${(y + 3).toFixed(1)}" text-anchor="end">${h.toPrecision(2)}</text>`;
  });
  // leaves: a mark under each leaf in its cluster colour, linking to the image's thumbnail (#item-i)
  const leafW = Math.max(1, Math.min(10, (W / n) * 0.8));
  const leaves = names
    ? `<g class="leaves">${order.map((i) => `<a class="leaf" href="#item-${i}"><rect x="${(xs[i]! - leafW / 2).toFixed(1)}" y="${pad.t + H + 4}" width="${leafW.toFixed(1)}" height="12" fill="${clusterColour(labels[i]!)}"/><title>${esc(names[i]!)} (cluster ${labels[i]})</title></a>`).join('')}</g>`
    : '';
  return `<svg id="dendrogram" viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="dendrogram of ${n} images">`
    + `<g class="links" fill="none" stroke-width="${n > 300 ? 0.6 : 1.2}">${parts.join('')}</g>${cut}<g class="axis">${ticks.join('')}</g>${leaves}</svg>`;
}

/** Horizontal bar chart of cluster sizes, each bar stacked by true class when `truth` is given. */
function sizesSvg(labels: ArrayLike<number>, k: number, truth: string[] | undefined, classes: string[]): string {
  const sizes = new Array<number>(k).fill(0);
  const comp: Map<string, number>[] = Array.from({ length: k }, () => new Map());
  for (let i = 0; i < labels.length; i++) {
    sizes[labels[i]!]! += 1;
    if (truth) comp[labels[i]!]!.set(truth[i]!, (comp[labels[i]!]!.get(truth[i]!) ?? 0) + 1);
  }
  const max = Math.max(1, ...sizes);
  const rowH = 24;
  const W = 380;
  const x0 = 84;
  const bw = W - x0 - 36;
  const rows = sizes.map((s, c) => {
    const y = c * rowH + 4;
    let segs = '';
    if (truth) {
      let x = x0;
      for (const cls of classes) {
        const v = comp[c]!.get(cls) ?? 0;
        if (!v) continue;
        const w = (v / max) * bw;
        segs += `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${classColour(classes.indexOf(cls))}"><title>${esc(cls)}: ${v}</title></rect>`;
        x += w;
      }
    } else {
      segs = `<rect x="${x0}" y="${y}" width="${((s / max) * bw).toFixed(1)}" height="${rowH - 8}" fill="${clusterColour(c)}"/>`;
    }
    return `<g class="bar" data-cluster="${c}"><rect x="4" y="${y + 2}" width="12" height="${rowH - 12}" rx="3" fill="${clusterColour(c)}"/>`
      + `<text x="22" y="${y + rowH / 2 + 1}">cluster ${c}</text>${segs}<text class="count" x="${(x0 + (s / max) * bw + 6).toFixed(1)}" y="${y + rowH / 2 + 1}">${s}</text></g>`;
  });
  return `<svg id="sizes" viewBox="0 0 ${W} ${k * rowH + 8}" role="img" aria-label="cluster sizes">${rows.join('')}</svg>`;
}

/**
 * True-class colours: a palette of its own (ColorBrewer Dark2 plus two), so that a class is never mistaken for the
 * cluster of the same index (clusters use Tableau-10); classes are also drawn as squares, clusters as dots.
 */
const CLASS_PALETTE = ['#1b9e77', '#7570b3', '#e7298a', '#66a61e', '#a6761d', '#1f78b4', '#666666', '#b15928', '#6a3d9a', '#e6ab02'];
/** Colour of true class `i` (index in the sorted class names); beyond 10, golden-angle hues offset from the clusters'. */
export function classColour(i: number): string {
  return i < CLASS_PALETTE.length ? CLASS_PALETTE[i]! : `hsl(${Math.round((i * 137.508 + 68) % 360)} 45% 38%)`;
}

/** Longest common folder of paths (with a trailing separator), or ''. */
function commonRoot(files: string[]): string {
  if (files.length === 0) return '';
  let root = path.dirname(files[0]!);
  for (const f of files) while (root && !(f.startsWith(root + path.sep) || f.startsWith(root + '/'))) {
    const up = path.dirname(root);
    if (up === root) return '';
    root = up;
  }
  // keep one folder level (the class folder is informative)
  return root ? root + path.sep : '';
}

type Sharp = typeof import('sharp').default;

/** A JPEG data URI of what the network saw (whole image stretched or padded, or the centre crop), `size × size`. */
async function thumbnail(sharp: Sharp, src: ImageInput, size: number, crop: number, fit: Fit): Promise<string | undefined> {
  try {
    const bytes = await readImageBytes(src); // regular files only, size-capped
    if (fit !== 'crop') {
      const jpg = await sharp(bytes).rotate().removeAlpha()
        .resize(size, size, fit === 'stretch' ? { fit: 'fill' } : { fit: 'contain', background: { r: 0, g: 0, b: 0 } })
        .flatten().jpeg({ quality: 72, mozjpeg: true }).toBuffer();
      return `data:image/jpeg;base64,${jpg.toString('base64')}`;
    }
    const R = Math.round(size / crop);
    const { data, info } = await sharp(bytes).rotate().removeAlpha().resize(R, R, { fit: 'outside' }).raw().toBuffer({ resolveWithObject: true });
    const left = Math.round((info.width - size) / 2);
    const top = Math.round((info.height - size) / 2);
    const jpg = await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels as 3 } })
      .extract({ left, top, width: size, height: size }).jpeg({ quality: 72, mozjpeg: true }).toBuffer();
    return `data:image/jpeg;base64,${jpg.toString('base64')}`;
  } catch {
    return undefined;
  }
}

/**
 * The heat map of a weight map as a PNG data URI: inferno colours, alpha rising with the weight. Normalised by the
 * image's own peak, but never by less than `floor` (half the median peak of the set), so an image whose weights
 * are spread out (no clear anomaly) stays faint instead of being stretched to full brightness.
 */
async function heatmap(sharp: Sharp, w: ArrayLike<number>, gridH: number, gridW: number, floor = 0): Promise<string> {
  let max = 0;
  let min = Infinity;
  for (let i = 0; i < w.length; i++) {
    max = Math.max(max, w[i]!);
    min = Math.min(min, w[i]!);
  }
  max = Math.max(max, floor);
  const rgba = Buffer.alloc(gridH * gridW * 4);
  const flat = max - min <= 1e-12 * Math.max(1, max);
  for (let i = 0; i < gridH * gridW; i++) {
    const t = flat ? 0 : (w[i]! - min) / (max - min);
    const [r, g, b] = inferno(0.15 + 0.85 * t);
    rgba[i * 4] = r;
    rgba[i * 4 + 1] = g;
    rgba[i * 4 + 2] = b;
    rgba[i * 4 + 3] = Math.round(255 * (flat ? 0.12 : 0.05 + 0.8 * Math.pow(t, 0.7)));
  }
  const png = await sharp(rgba, { raw: { width: gridW, height: gridH, channels: 4 } }).png({ compressionLevel: 9 }).toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Runs `f` over `items` with at most `limit` in flight, keeping order. */
async function mapLimit<T, R>(items: T[], limit: number, f: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!, i);
    }
  }));
  return out;
}

/**
 * The automatic-K panel: one bar per candidate K (height = score, min–max scaled so that negative silhouettes
 * show), the chosen K highlighted, and the same numbers as a table. Hooks: `#kauto`, `rect.kbar[data-k]`,
 * `tr[data-k]`, `.chosen` on the chosen bar and row.
 */
export function kAutoPanel(a: NonNullable<ReportInput['kAuto']>): string {
  const c = a.candidates;
  const head = `<h3>Number of clusters <small>(automatic: ${esc(a.criterion)}, K = ${a.chosen})</small></h3>`;
  if (c.length === 0) return `<div class="panel" id="kauto" data-chosen="${a.chosen}">${head}<p class="hint">Too few images to compare candidates: K = ${a.chosen}.</p></div>`;
  const W = 560;
  const H = 150;
  const pad = { l: 40, r: 8, t: 10, b: 22 };
  const lo = Math.min(0, ...c.map((x) => x.score));
  const hi = Math.max(...c.map((x) => x.score));
  const span = hi - lo || 1;
  const bw = (W - pad.l - pad.r) / c.length;
  const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - (v - lo) / span);
  const bars = c.map((x, i) => {
    const top = Math.min(y(x.score), y(0));
    const h = Math.max(1, Math.abs(y(x.score) - y(0)));
    const cls = x.k === a.chosen ? 'kbar chosen' : 'kbar';
    const cx = pad.l + (i + 0.5) * bw;
    return `<rect class="${cls}" data-k="${x.k}" x="${(pad.l + i * bw + bw * 0.15).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw * 0.7).toFixed(1)}" height="${h.toFixed(1)}"><title>K = ${x.k}: ${x.score.toPrecision(4)}</title></rect>`
      + `<text class="klabel${x.k === a.chosen ? ' chosen' : ''}" x="${cx.toFixed(1)}" y="${H - 6}" text-anchor="middle">${x.k}</text>`;
  }).join('');
  const axis = [hi, lo === 0 ? 0 : lo].map((v) => `<text class="ticklabel" x="${pad.l - 4}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end">${v.toPrecision(2)}</text>`).join('')
    + `<line class="tick" x1="${pad.l}" x2="${W - pad.r}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}"/>`;
  const svg = `<svg id="kauto-chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="score of each candidate K">${axis}${bars}</svg>`;
  const rows = c.map((x) => `<tr data-k="${x.k}"${x.k === a.chosen ? ' class="chosen"' : ''}><th>${x.k}</th><td>${x.score.toPrecision(4)}</td>${x.se !== undefined ? `<td>± ${x.se.toPrecision(2)}</td>` : ''}</tr>`).join('');
  const table = `<table class="kv ktable"><tr><th>K</th><th>${esc(a.criterion)}</th>${c[0]!.se !== undefined ? '<th>s(K)</th>' : ''}</tr>${rows}</table>`;
  return `<div class="panel" id="kauto" data-chosen="${a.chosen}" data-criterion="${esc(a.criterion)}">${head}<div class="kauto">${svg}<details><summary>scores</summary>${table}</details></div></div>`;
}

const fmtMs = (ms: number | undefined) => (ms === undefined ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`);

/**
 * Renders the report.
 * @param result the clustering (a `ClusterResult` or any {@link ReportInput})
 * @param options see {@link ReportOptions}
 * @returns the complete HTML document
 */
export async function renderReport(result: ReportInput, options: ReportOptions = {}): Promise<string> {
  const { title = 'Anomaly clustering', truth, metrics, sources, thumbSize = 120, crop = 224 / 256, fit = DEFAULT_FIT, details = {} } = options;
  const { files, labels, k, weights, gridH, gridW, Z } = result;
  const n = files.length;
  const sharp = (await import('sharp')).default;
  const root = options.root ?? commonRoot(files);
  const shown = (f: string) => (root && f.startsWith(root) ? f.slice(root.length) : f).split(path.sep).join('/');
  const classes = truth ? [...new Set(truth)].sort() : [];

  const thumbs = await mapLimit(files, 8, (f, i) => thumbnail(sharp, sources?.[i] ?? f, Math.min(256, Math.round(thumbSize * 1.5)), crop, fit));
  const peaks = weights.map((w) => { let m = 0; for (let j = 0; j < w.length; j++) m = Math.max(m, w[j]!); return m; }).sort((a, b) => a - b);
  const floor = 0.5 * (peaks[Math.floor(peaks.length / 2)] ?? 0);
  const heats = await mapLimit(files, 8, (_f, i) => heatmap(sharp, weights[i]!, gridH, gridW, floor));

  // Approximate Ward (ClusterResult.microClusters): Z is over the micro-clusters, not the images: no image order, no dendrogram.
  const perImageZ = Z.length === 4 * Math.max(0, n - 1);
  const order = perImageZ ? leafOrder(Z, n) : [];
  const members: number[][] = Array.from({ length: k }, () => []);
  for (const i of order.length === n ? order : files.map((_, i) => i)) members[labels[i]!]!.push(i);

  const sections = members.map((idx, c) => {
    let badge = '';
    if (truth && idx.length) {
      const counts = new Map<string, number>();
      for (const i of idx) counts.set(truth[i]!, (counts.get(truth[i]!) ?? 0) + 1);
      const [top, cnt] = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
      const mix = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([cls, v]) =>
        `<span class="chip class" style="--c:${classColour(classes.indexOf(cls))}">${esc(cls)} ${v}</span>`).join('');
      badge = `<span class="purity" title="share of the majority class">${esc(top)} · ${Math.round((100 * cnt) / idx.length)}%</span><span class="mix">${mix}</span>`;
    }
    const figs = idx.map((i) => {
      const name = shown(files[i]!);
      const cls = truth ? truth[i]! : '';
      const img = thumbs[i]
        ? `<img class="thumb" src="${thumbs[i]}" alt="${esc(name)}">`
        : `<div class="thumb missing">no preview</div>`;
      const tag = truth ? `<span class="cls" style="--c:${classColour(classes.indexOf(cls))}">${esc(cls)}</span>` : '';
      return `<figure class="item" id="item-${i}" data-file="${esc(files[i]!)}" data-cluster="${c}"${truth ? ` data-class="${esc(cls)}"` : ''} title="${esc(name)}">`
        + `<div class="frame">${img}<img class="heat" src="${heats[i]}" alt=""></div><figcaption>${tag}<span class="name">${esc(name)}</span></figcaption></figure>`;
    }).join('');
    return `<section class="cluster" data-cluster="${c}" data-size="${idx.length}" id="cluster-${c}" style="--c:${clusterColour(c)}">`
      + `<header><h2><span class="dot"></span>Cluster ${c}</h2><span class="size">${idx.length} image${idx.length === 1 ? '' : 's'}</span>${badge}</header>`
      + `<div class="grid">${figs}</div></section>`;
  }).join('\n');

  const metricCards = metrics
    ? `<div id="metrics" class="cards">${(['nmi', 'ari', 'f1'] as const).map((m) =>
      `<div class="card metric" data-metric="${m}"><div class="v">${metrics[m].toFixed(3)}</div><div class="l">${{ nmi: 'NMI', ari: 'ARI', f1: 'F1 (matched)' }[m]}</div>`
      + `<div class="bar"><i style="width:${Math.max(0, Math.min(100, metrics[m] * 100)).toFixed(1)}%"></i></div></div>`).join('')}</div>`
    : '';
  const run: [string, string][] = [
    ['images', String(n)], ['clusters (K)', result.kAuto ? `${k} (automatic, ${result.kAuto.criterion})` : String(k)],
    ...(result.weighting ? [['weighting', result.weighting] as [string, string]] : []),
    ...(result.tau !== undefined && Number.isFinite(result.tau) ? [['τ (absolute)', result.tau.toPrecision(3)] as [string, string]] : []),
    ...(result.whitened ? [['patch whitening', `shrinkage ${result.whitened.shrinkage} (covariance of ${result.whitened.sampled} patches)`] as [string, string]] : []),
    ...(result.embeddingNorm ? [['embedding normalisation', result.embeddingNorm] as [string, string]] : []),
    ...(result.linkage ? [['linkage', result.linkage] as [string, string]] : []),
    ...(result.backend ? [['backend', `${result.backend.name} (${result.backend.isa}${result.backend.threads ? `, ${result.backend.threads} thread${result.backend.threads > 1 ? 's' : ''}` : ''})`] as [string, string]] : []),
    ...Object.entries(details).filter(([, v]) => v !== undefined && v !== null).map(([a, v]) => [a, String(v)] as [string, string]),
  ];
  const timingRows = result.timings
    ? Object.entries(result.timings).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a === 'total' ? 1 : 0) - (b === 'total' ? 1 : 0)).map(([s, v]) => `<tr><th>${esc(s)}</th><td>${fmtMs(v)}</td></tr>`).join('')
    : '';
  const skipped = result.skipped?.length
    ? `<details class="skipped"><summary>${result.skipped.length} image(s) skipped</summary><ul>${result.skipped.map((s) => `<li><code>${esc(s.file)}</code>: ${esc(s.error)}</li>`).join('')}</ul></details>`
    : '';
  const legend = truth
    ? `<div class="legend"><span class="legend-title">true class:</span>${classes.map((c, i) => `<span class="chip class" style="--c:${classColour(i)}">${esc(c)}</span>`).join('')}</div>`
    : '';

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="anomaly-clustering">
<title>${esc(title)}</title>
<style>${CSS.replace(/--thumb:\s*\d+px/, `--thumb: ${thumbSize}px`)}</style></head>
<body>
<header class="top"><div><h1>${esc(title)}</h1><p class="sub">${n} images · ${k} clusters${result.weighting ? ` · ${esc(result.weighting)} patch weighting` : ''}${root ? ` · <code>${esc(root)}</code>` : ''}</p></div>
<label class="toggle"><input type="checkbox" id="heat-toggle" checked> heat maps</label></header>
<main>
<div class="summary">
${metricCards}
<div class="panel"><h3>Run</h3><table class="kv">${run.map(([a, b]) => `<tr><th>${esc(a)}</th><td>${esc(b)}</td></tr>`).join('')}</table></div>
${timingRows ? `<div class="panel"><h3>Timings</h3><table class="kv">${timingRows}</table></div>` : ''}
</div>
${skipped}
${result.kAuto ? kAutoPanel(result.kAuto) : ''}
<div class="charts">
<div class="panel"><h3>Cluster sizes${truth ? ' <small>(coloured by true class)</small>' : ''}</h3>${sizesSvg(labels, k, truth, classes)}${legend}</div>
<div class="panel wide"><h3>Dendrogram <small>(${esc(result.linkage ?? 'linkage')}, √ height scale, cut at K; click a leaf to see its image)</small></h3>${perImageZ ? dendrogramSvg(Z, n, labels, k, 1000, 260, files.map(shown)) : '<p>(over micro-clusters: approximate ward, not drawn)</p>'}</div>
</div>
<div class="heat-legend" aria-label="heat map colour scale"><span>patch weight: low</span><i style="background:linear-gradient(90deg,${INFERNO.map((c, j) => `rgba(${c.join(',')},${(0.05 + 0.8 * Math.pow(j / (INFERNO.length - 1), 0.7)).toFixed(2)}) ${((100 * j) / (INFERNO.length - 1)).toFixed(0)}%`).join(',')})"></i><span>high (relative to the image's peak)</span></div>
<p class="hint">Each thumbnail shows the image's patch weights as a heat map: bright, opaque areas are the patches that dominate its embedding, i.e. why it landed in its cluster. Images within a cluster follow the dendrogram order.</p>
${sections}
</main>
<footer>Generated by anomaly-clustering · Anomaly Clustering (Sohn et al., WACV 2023)</footer>
<script>document.getElementById('heat-toggle').addEventListener('change',function(e){document.body.classList.toggle('noheat',!e.target.checked)});</script>
</body></html>
`;
}

/** Renders the report and writes it to `file`. @returns the file path */
export async function writeReport(file: string, result: ReportInput, options: ReportOptions = {}): Promise<string> {
  await writeFile(file, await renderReport(result, options));
  return file;
}

const CSS = `
:root { --thumb: 120px; --bg: #f6f7f9; --fg: #1d2330; --muted: #677084; --panel: #fff; --line: #e3e6ec; }
@media (prefers-color-scheme: dark) { :root { --bg: #14171c; --fg: #e6e9ef; --muted: #98a1b3; --panel: #1d2128; --line: #2c323c; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header.top { position: sticky; top: 0; z-index: 5; display: flex; justify-content: space-between; align-items: center;
  padding: 14px 28px; background: color-mix(in srgb, var(--bg) 88%, transparent); backdrop-filter: blur(6px); border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 20px; font-weight: 650; letter-spacing: -.01em; }
.sub { margin: 2px 0 0; color: var(--muted); }
.sub code { font-size: 12px; }
.toggle { color: var(--muted); user-select: none; cursor: pointer; }
main { padding: 20px 28px 40px; max-width: 1500px; margin: 0 auto; }
h3 { margin: 0 0 10px; font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); font-weight: 600; }
h3 small { text-transform: none; letter-spacing: 0; font-weight: 400; }
.summary, .charts { display: grid; gap: 16px; margin-bottom: 16px; }
.summary { grid-template-columns: auto 1fr 1fr; align-items: start; }
.charts { grid-template-columns: minmax(300px, 1fr) 2fr; }
@media (max-width: 900px) { .summary, .charts { grid-template-columns: 1fr; } }
.panel, .card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.cards { display: flex; gap: 12px; }
.card.metric { min-width: 120px; }
.card .v { font-size: 28px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .l { color: var(--muted); font-size: 12px; }
.card .bar { height: 4px; background: var(--line); border-radius: 2px; margin-top: 8px; overflow: hidden; }
.card .bar i { display: block; height: 100%; background: linear-gradient(90deg, #f28e2b, #e15759); }
table.kv { border-collapse: collapse; width: 100%; }
table.kv th { text-align: left; font-weight: 500; color: var(--muted); padding: 2px 12px 2px 0; white-space: nowrap; }
table.kv td { padding: 2px 0; font-variant-numeric: tabular-nums; word-break: break-all; }
svg { width: 100%; height: auto; display: block; }
#dendrogram { height: 260px; }
#dendrogram .cut { stroke: var(--fg); stroke-dasharray: 4 4; opacity: .55; }
#dendrogram text, #sizes text { font-size: 11px; fill: var(--muted); }
#dendrogram .tick { stroke: var(--muted); }
#sizes text { fill: var(--fg); font-size: 12px; dominant-baseline: middle; }
#sizes .count { fill: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
.chip { display: inline-flex; align-items: center; gap: 5px; font-size: 12px; padding: 1px 8px 1px 6px; border-radius: 10px;
  background: color-mix(in srgb, var(--c) 18%, transparent); }
.chip::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--c); }
.chip.class::before { border-radius: 1px; }
.legend-title { font-size: 12px; color: var(--muted); }
#dendrogram a.leaf rect { cursor: pointer; } #dendrogram a.leaf:hover rect { opacity: .6; }
figure.item:target .frame { outline: 3px solid var(--fg); outline-offset: 2px; }
.heat-legend { display: flex; align-items: center; gap: 8px; font-size: 12px; color: var(--muted); margin: 0 0 4px; }
.heat-legend i { display: block; width: 220px; height: 10px; border-radius: 3px; border: 1px solid var(--line); background-color: #777; }
.hint { color: var(--muted); margin: 6px 0 18px; }
section.cluster { background: var(--panel); border: 1px solid var(--line); border-left: 5px solid var(--c); border-radius: 10px; padding: 12px 16px 16px; margin: 0 0 16px; }
section.cluster header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px; margin-bottom: 10px; }
section.cluster h2 { margin: 0; font-size: 17px; display: flex; align-items: center; gap: 8px; }
.dot { width: 12px; height: 12px; border-radius: 50%; background: var(--c); display: inline-block; }
.size { color: var(--muted); }
.purity { font-weight: 600; }
.mix { display: flex; flex-wrap: wrap; gap: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--thumb), 1fr)); gap: 10px; }
figure.item { margin: 0; }
.frame { position: relative; aspect-ratio: 1; border-radius: 6px; overflow: hidden; background: #777; }
.frame img { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
.frame img.heat { mix-blend-mode: normal; opacity: .85; transition: opacity .15s; }
.frame:hover img.heat, body.noheat img.heat { opacity: 0; }
.thumb.missing { display: grid; place-items: center; height: 100%; color: #eee; font-size: 11px; }
figcaption { font-size: 11px; color: var(--muted); margin-top: 3px; display: flex; gap: 4px; align-items: center; overflow: hidden; white-space: nowrap; }
figcaption .name { overflow: hidden; text-overflow: ellipsis; }
.cls { width: 8px; height: 8px; border-radius: 1px; background: var(--c); flex: none; font-size: 0; }
details.skipped { margin: 0 0 16px; color: var(--muted); }
#kauto { margin-bottom: 16px; }
#kauto .kauto { display: flex; flex-wrap: wrap; gap: 12px 28px; align-items: flex-start; }
#kauto svg { flex: 1 1 420px; width: 100%; max-width: 640px; height: auto; display: block; }
#kauto .ticklabel { font-size: 10px; fill: var(--muted); } #kauto .tick { stroke: var(--muted); opacity: .5; }
#kauto .ktable td { padding-right: 12px; }
rect.kbar { fill: #b8c2d1; } rect.kbar.chosen { fill: #e15759; }
text.klabel { font-size: 10px; fill: var(--muted); } text.klabel.chosen { fill: #e15759; font-weight: 700; }
.ktable tr.chosen th, .ktable tr.chosen td { color: #e15759; font-weight: 650; }
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 20px; }
`;
