/**
 * @file A small synthetic defect data set, generated on the fly (nothing downloaded, nothing stored in the package):
 * 256×256 images of one textured "product" (brushed, slightly tinted metal) with four defect types, plus normals.
 *
 * Layout (like MVTec AD):
 * ```
 * <out>/test/<type>/<type>_<nn>.png    type ∈ good, scratch, spot, crack, contamination
 * <out>/train/good/good_<nn>.png       normal images for semi-supervised weighting (disjoint from test/good)
 * ```
 * Deterministic: the same seed gives byte-identical pixels. PNGs are written with sharp (loaded lazily).
 * @module sample
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 as prng } from '../random.js';
export { prng };

/** The defect types the generator draws. */
export type DefectType = 'scratch' | 'spot' | 'crack' | 'contamination';
/** Runtime list of {@link DefectType}s. */
export const DEFECT_TYPES = ['scratch', 'spot', 'crack', 'contamination'] as const;
/** A class of the sample: a defect type or `'good'`. */
export type SampleClass = DefectType | 'good';

/** Options of {@link generateSample}. */
export interface SampleOptions {
  /** @default 7 */
  seed?: number;
  /** Images per class in `test/`. @default 10 */
  perClass?: number;
  /** Defect types to include. @default all of {@link DEFECT_TYPES} */
  types?: readonly DefectType[];
  /** Include `test/good` as a class. @default true */
  includeGood?: boolean;
  /** Normal images in `train/good` (for semi-supervised weighting); 0 = none. @default 10 */
  trainNormals?: number;
  /** Image side in pixels. @default 256 */
  size?: number;
}

/** What {@link generateSample} wrote. */
export interface Sample {
  /** `<out>/test`: the folder to cluster (one sub-folder per class). */
  testDir: string;
  /** `<out>/train/good`, or `undefined` when `trainNormals` is 0. */
  normalsDir: string | undefined;
  /** Every test image with its class, sorted by path. */
  files: { file: string; cls: SampleClass }[];
  /** The classes present in `test/` (= the K to ask for). */
  classes: SampleClass[];
}

/** An RGB 8-bit image, HWC. */
export interface SampleImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}


/** Smooth value noise on a `cells × cells` lattice (periodic), sampled at (x, y) ∈ [0,1)². */
function valueNoise(rand: () => number, cellsX: number, cellsY: number): (x: number, y: number) => number {
  const lat = new Float32Array(cellsX * cellsY);
  for (let i = 0; i < lat.length; i++) lat[i] = rand();
  const s = (t: number) => t * t * (3 - 2 * t);
  return (x, y) => {
    const fx = x * cellsX;
    const fy = y * cellsY;
    const x0 = Math.floor(fx);
    const y0 = Math.floor(fy);
    const tx = s(fx - x0);
    const ty = s(fy - y0);
    const at = (i: number, j: number) => lat[(((j % cellsY) + cellsY) % cellsY) * cellsX + (((i % cellsX) + cellsX) % cellsX)]!;
    const a = at(x0, y0) + (at(x0 + 1, y0) - at(x0, y0)) * tx;
    const b = at(x0, y0 + 1) + (at(x0 + 1, y0 + 1) - at(x0, y0 + 1)) * tx;
    return a + (b - a) * ty;
  };
}

/** Float RGB canvas in [0,1]. */
class Canvas {
  readonly px: Float32Array;
  constructor(readonly w: number, readonly h: number) {
    this.px = new Float32Array(w * h * 3);
  }
  /** Blends colour `c` with per-pixel coverage `alpha(x,y)` over the box [x0,x1)×[y0,y1). */
  paint(x0: number, y0: number, x1: number, y1: number, c: readonly number[], alpha: (x: number, y: number) => number): void {
    const xa = Math.max(0, Math.floor(x0));
    const ya = Math.max(0, Math.floor(y0));
    const xb = Math.min(this.w, Math.ceil(x1));
    const yb = Math.min(this.h, Math.ceil(y1));
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) {
      const a = alpha(x + 0.5, y + 0.5);
      if (a <= 0) continue;
      const o = (y * this.w + x) * 3;
      for (let ch = 0; ch < 3; ch++) this.px[o + ch] = this.px[o + ch]! * (1 - a) + c[ch]! * a;
    }
  }
  /** Adds `delta(x,y)` (brightness) over a box, scaled per channel. */
  shade(x0: number, y0: number, x1: number, y1: number, delta: (x: number, y: number) => number): void {
    const xa = Math.max(0, Math.floor(x0));
    const ya = Math.max(0, Math.floor(y0));
    const xb = Math.min(this.w, Math.ceil(x1));
    const yb = Math.min(this.h, Math.ceil(y1));
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) {
      const v = delta(x + 0.5, y + 0.5);
      if (v === 0) continue;
      const o = (y * this.w + x) * 3;
      for (let ch = 0; ch < 3; ch++) this.px[o + ch] = this.px[o + ch]! + v;
    }
  }
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.px.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(this.px[i]! * 255)));
    return out;
  }
}

function segDist(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const l2 = dx * dx + dy * dy;
  const t = l2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / l2));
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}

/** Soft coverage of a stroke of half-width `hw` at distance `dist` (1-px anti-aliased edge). */
const stroke = (dist: number, hw: number) => Math.max(0, Math.min(1, hw + 0.5 - dist));

/** Draws a polyline as a brightness change of `amount` (negative = darker), coverage = max over its segments. */
function polyline(cv: Canvas, pts: [number, number][], hw: number, amount: number): void {
  const mask = new Float32Array(cv.w * cv.h);
  const pad = hw + 2;
  for (let i = 0; i + 1 < pts.length; i++) {
    const [ax, ay] = pts[i]!;
    const [bx, by] = pts[i + 1]!;
    const xa = Math.max(0, Math.floor(Math.min(ax, bx) - pad));
    const xb = Math.min(cv.w, Math.ceil(Math.max(ax, bx) + pad));
    const ya = Math.max(0, Math.floor(Math.min(ay, by) - pad));
    const yb = Math.min(cv.h, Math.ceil(Math.max(ay, by) + pad));
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) {
      const c = stroke(segDist(x + 0.5, y + 0.5, ax, ay, bx, by), hw);
      if (c > mask[y * cv.w + x]!) mask[y * cv.w + x] = c;
    }
  }
  cv.shade(0, 0, cv.w, cv.h, (x, y) => mask[Math.floor(y) * cv.w + Math.floor(x)]! * amount);
}

/** The product's normal surface: brushed metal with a slight warm-grey tint and mild per-image variation. */
function texture(rand: () => number, size: number): Canvas {
  const cv = new Canvas(size, size);
  const grain = valueNoise(rand, 4, 96); // streaks along x (brushing direction)
  const cloud = valueNoise(rand, 5, 5);
  const fine = valueNoise(rand, 64, 64);
  const base = 0.5 + (rand() - 0.5) * 0.06;
  const tint = [1.0, 0.97, 0.9];
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const u = x / size;
    const v = y / size;
    const g = base + 0.1 * (grain(u, v) - 0.5) + 0.08 * (cloud(u, v) - 0.5) + 0.05 * (fine(u, v) - 0.5) + 0.03 * (rand() - 0.5);
    const o = (y * size + x) * 3;
    for (let ch = 0; ch < 3; ch++) cv.px[o + ch] = g * tint[ch]!;
  }
  return cv;
}

/** A point well inside the image. */
const inside = (rand: () => number, size: number, margin: number): [number, number] => [
  margin + rand() * (size - 2 * margin),
  margin + rand() * (size - 2 * margin),
];

function drawScratch(cv: Canvas, rand: () => number): void {
  // a scuff: a bundle of fine, bright, parallel scratches
  const s = cv.w;
  const [cx, cy] = inside(rand, s, s * 0.3);
  const ang = rand() * Math.PI;
  const len = s * (0.25 + rand() * 0.2);
  const lines = 3 + Math.floor(rand() * 4);
  const gap = s * (0.012 + rand() * 0.008);
  const [ux, uy] = [Math.cos(ang), Math.sin(ang)];
  for (let l = 0; l < lines; l++) {
    const off = (l - (lines - 1) / 2) * gap;
    const ox = cx - uy * off + ux * (rand() - 0.5) * len * 0.2;
    const oy = cy + ux * off + uy * (rand() - 0.5) * len * 0.2;
    const half = (len / 2) * (0.6 + rand() * 0.4);
    polyline(cv, [[ox - ux * half, oy - uy * half], [ox + ux * half, oy + uy * half]], 0.7 + rand() * 0.5, 0.3 + rand() * 0.12);
  }
}

function drawSpot(cv: Canvas, rand: () => number): void {
  const s = cv.w;
  const count = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < count; k++) {
    const [cx, cy] = inside(rand, s, s * 0.15);
    const r = s * (0.025 + rand() * 0.025);
    cv.shade(cx - r - 3, cy - r - 3, cx + r + 3, cy + r + 3, (x, y) => {
      const d = Math.hypot(x - cx, y - cy);
      // dark pit with a soft rim
      return -0.36 * Math.max(0, Math.min(1, (r - d) / 2 + 0.5)) + (d > r && d < r + 2.5 ? 0.06 : 0);
    });
  }
}

function drawCrack(cv: Canvas, rand: () => number): void {
  const s = cv.w;
  const walk = (x: number, y: number, ang: number, steps: number): [number, number][] => {
    const pts: [number, number][] = [[x, y]];
    for (let i = 0; i < steps; i++) {
      ang += (rand() - 0.5) * 1.3;
      const step = s * (0.025 + rand() * 0.025);
      x += Math.cos(ang) * step;
      y += Math.sin(ang) * step;
      pts.push([x, y]);
    }
    return pts;
  };
  const [x0, y0] = inside(rand, s, s * 0.3);
  const ang = rand() * 2 * Math.PI;
  const main = walk(x0, y0, ang, 9 + Math.floor(rand() * 5));
  polyline(cv, main, 1.0 + rand() * 0.6, -0.42);
  const branches = 1 + Math.floor(rand() * 2);
  for (let b = 0; b < branches; b++) {
    const at = main[2 + Math.floor(rand() * (main.length - 4))]!;
    polyline(cv, walk(at[0], at[1], ang + (rand() < 0.5 ? 1 : -1) * (0.6 + rand() * 0.6), 3 + Math.floor(rand() * 3)), 0.6, -0.36);
  }
}

function drawContamination(cv: Canvas, rand: () => number): void {
  const s = cv.w;
  const [cx, cy] = inside(rand, s, s * 0.18);
  const r = s * (0.045 + rand() * 0.03);
  const harm = Array.from({ length: 4 }, (_, i) => ({ a: (rand() * 0.35) / (i + 1), p: rand() * 2 * Math.PI, f: i + 2 }));
  const colour = [0.55 + rand() * 0.1, 0.3 + rand() * 0.08, 0.1 + rand() * 0.05]; // rust / oil stain
  cv.paint(cx - 1.6 * r, cy - 1.6 * r, cx + 1.6 * r, cy + 1.6 * r, colour, (x, y) => {
    const d = Math.hypot(x - cx, y - cy);
    const th = Math.atan2(y - cy, x - cx);
    let rr = r;
    for (const h of harm) rr *= 1 + h.a * Math.sin(h.f * th + h.p);
    return 0.85 * Math.max(0, Math.min(1, (rr - d) / 3 + 0.5));
  });
}

const DRAW: Record<DefectType, (cv: Canvas, rand: () => number) => void> = {
  scratch: drawScratch,
  spot: drawSpot,
  crack: drawCrack,
  contamination: drawContamination,
};

/**
 * Renders one image of the sample.
 * @param cls `'good'` or a defect type
 * @param seed any integer; the same (cls, seed, size) always gives the same pixels
 * @param size side in pixels @default 256
 */
export function renderSampleImage(cls: SampleClass, seed: number, size = 256): SampleImage {
  const rand = prng(seed);
  const cv = texture(rand, size);
  if (cls !== 'good') {
    const draw = DRAW[cls];
    if (!draw) throw new RangeError(`cls: expected 'good' or one of ${DEFECT_TYPES.join(', ')}, got ${JSON.stringify(cls)}`);
    draw(cv, rand);
  }
  return { data: cv.toBytes(), width: size, height: size, channels: 3 };
}

/** A 32-bit seed for image `index` of class `cls` in split `split` of sample seed `seed`. */
function imageSeed(seed: number, split: string, cls: string, index: number): number {
  let h = 2166136261 ^ seed;
  for (const ch of `${split}/${cls}/${index}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

/**
 * Writes the synthetic sample under `outDir` (see the module doc for the layout).
 * @param outDir folder to create (existing files of the same names are overwritten)
 * @returns the folders and files written
 * @throws {RangeError} for bad counts or an unknown defect type
 */
export async function generateSample(outDir: string, options: SampleOptions = {}): Promise<Sample> {
  const { seed = 7, perClass = 10, types = DEFECT_TYPES, includeGood = true, trainNormals = 10, size = 256 } = options;
  for (const [k, v] of [['perClass', perClass], ['trainNormals', trainNormals], ['size', size]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${k}: expected an integer ≥ 0, got ${v}`);
  }
  if (perClass < 1) throw new RangeError(`perClass: expected an integer ≥ 1, got ${perClass}`);
  if (size < 32) throw new RangeError(`size: expected ≥ 32 pixels, got ${size}`);
  for (const t of types) {
    if (!(DEFECT_TYPES as readonly string[]).includes(t)) {
      throw new RangeError(`types: expected values among ${DEFECT_TYPES.join(', ')}, got ${JSON.stringify(t)}`);
    }
  }
  const sharp = (await import('sharp')).default;
  const classes: SampleClass[] = [...(includeGood ? (['good'] as const) : []), ...types];
  const testDir = path.join(outDir, 'test');
  const files: { file: string; cls: SampleClass }[] = [];
  const write = async (file: string, img: SampleImage) => {
    const png = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
      raw: { width: img.width, height: img.height, channels: img.channels },
    }).png({ compressionLevel: 6 }).toBuffer();
    await writeFile(file, png);
  };
  for (const cls of classes) {
    const dir = path.join(testDir, cls);
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const file = path.join(dir, `${cls}_${String(i).padStart(3, '0')}.png`);
      await write(file, renderSampleImage(cls, imageSeed(seed, 'test', cls, i), size));
      files.push({ file, cls });
    }
  }
  let normalsDir: string | undefined;
  if (trainNormals > 0) {
    normalsDir = path.join(outDir, 'train', 'good');
    await mkdir(normalsDir, { recursive: true });
    for (let i = 0; i < trainNormals; i++) {
      await write(path.join(normalsDir, `good_${String(i).padStart(3, '0')}.png`), renderSampleImage('good', imageSeed(seed, 'train', 'good', i), size));
    }
  }
  files.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { testDir, normalsDir, files, classes };
}
