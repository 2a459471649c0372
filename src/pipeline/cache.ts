/**
 * @file On-disk cache of patch embeddings, readable from Python with numpy alone.
 *
 * Layout (format `anomaly-clustering/features@1`):
 * ```
 * <cacheDir>/<configKey>/config.json        backbone (id, model file SHA-256, layers), preprocessing
 *                                           (inputSize, resize, mean, std), aggregation, gridH, gridW, d
 * <cacheDir>/<configKey>/<sha256>.npy       one image: float32 little-endian ('<f4'), C order,
 *                                           shape (gridH, gridW, d) = its M×D patch bag
 * <cacheDir>/<configKey>/index.jsonl        one line per write: {"file": <name>, "sha256": <content hash>}
 * ```
 * `sha256` is the hash of the image file's bytes; `configKey` is the first 16 hex digits of the SHA-256 of the
 * canonical JSON of {format, backbone, preprocessing, aggregation}. So the full key is (content, backbone,
 * preprocessing): renaming a file still hits, changing τ or K (later stages) never recomputes features.
 * Writes are atomic (temp file + rename); an unreadable or mis-shaped entry is treated as a miss and rewritten.
 * @module pipeline/cache
 */
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BagLocation } from './bank-store.js';

/** Cache format tag written into config.json. */
export const FEATURE_CACHE_FORMAT = 'anomaly-clustering/features@1';

/** What determines the features besides the image bytes. */
export interface FeatureConfig {
  backbone: { id: string; modelSha256: string; layers: [string, string] };
  preprocess: { inputSize: number; resize: number; fit?: 'stretch' | 'pad'; mean: number[]; std: number[] };
  aggregation: string;
}

/** Hex SHA-256 of bytes. */
export function sha256Hex(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The 16-hex-digit key of a feature configuration. */
export function configKey(cfg: FeatureConfig): string {
  return sha256Hex(JSON.stringify({ format: FEATURE_CACHE_FORMAT, ...cfg })).slice(0, 16);
}

/** Serialises a float32 array as a `.npy` (v1.0) file with the given shape. */
export function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pre = 10;
  let hlen = dict.length + 1;
  hlen += (64 - ((pre + hlen) % 64)) % 64;
  const header = dict.padEnd(hlen - 1, ' ') + '\n';
  const out = new Uint8Array(pre + hlen + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, hlen & 0xff, hlen >> 8]);
  out.set(new TextEncoder().encode(header), pre);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pre + hlen);
  return out;
}

/** The shape and data offset of a float32 C-order `.npy` header (`b` holds at least the header), or undefined. */
function parseNpyHeader(b: Uint8Array): { shape: number[]; start: number } | undefined {
  if (b.length < 10 || b[0] !== 0x93 || String.fromCharCode(...b.subarray(1, 6)) !== 'NUMPY') return undefined;
  const major = b[6]!;
  const hlen = major === 1 ? b[8]! | (b[9]! << 8) : b[8]! | (b[9]! << 8) | (b[10]! << 16) | (b[11]! << 24);
  const pre = major === 1 ? 10 : 12;
  if (b.length < pre + hlen) return undefined;
  const header = new TextDecoder().decode(b.subarray(pre, pre + hlen));
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header)) return undefined;
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) return undefined;
  const shape = m[1]!.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return { shape, start: pre + hlen };
}

/** Parses a float32 C-order `.npy` file; returns undefined if it is anything else. */
export function decodeNpy(b: Uint8Array): { data: Float32Array; shape: number[] } | undefined {
  const h = parseNpyHeader(b);
  if (!h) return undefined;
  const { shape, start } = h;
  const n = shape.reduce((a, c) => a * c, 1);
  if (b.length - start !== n * 4) return undefined;
  const data = new Float32Array(n);
  new Uint8Array(data.buffer).set(b.subarray(start, start + n * 4));
  return { data, shape };
}

/** A feature cache bound to one configuration. */
export class FeatureCache {
  readonly dir: string;
  private configWritten = false;

  constructor(cacheDir: string, readonly config: FeatureConfig) {
    this.dir = path.join(cacheDir, configKey(config));
  }

  /** Path of one image's entry. */
  file(contentSha: string): string {
    return path.join(this.dir, `${contentSha}.npy`);
  }

  /** The cached bag of an image (size gridH*gridW*d), or undefined on a miss or a bad entry. */
  get(contentSha: string, gridH: number, gridW: number, d: number): Float32Array | undefined {
    const f = this.file(contentSha);
    if (!existsSync(f)) return undefined;
    try {
      const r = decodeNpy(readFileSync(f));
      if (!r || r.shape.length !== 3 || r.shape[0] !== gridH || r.shape[1] !== gridW || r.shape[2] !== d) return undefined;
      return r.data;
    } catch {
      return undefined;
    }
  }

  /**
   * Where an entry's floats start, if the entry exists with this shape: reads only its header (streamed banks
   * read the bag itself later, see `bank-store.ts`).
   */
  locate(contentSha: string, gridH: number, gridW: number, d: number): BagLocation | undefined {
    const f = this.file(contentSha);
    let fd = -1;
    try {
      fd = openSync(f, 'r');
      const head = new Uint8Array(4096);
      const got = readSync(fd, head, 0, head.length, 0);
      const h = parseNpyHeader(head.subarray(0, got));
      const size = fstatSync(fd).size;
      if (!h || h.shape.length !== 3 || h.shape[0] !== gridH || h.shape[1] !== gridW || h.shape[2] !== d) return undefined;
      if (size - h.start !== gridH * gridW * d * 4) return undefined;
      return { file: f, offset: h.start };
    } catch {
      return undefined;
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  /**
   * Stores one image's bag (size gridH*gridW*d). Failures to write are ignored (the cache is an optimisation).
   * @returns where the floats were written, or undefined if the write failed
   */
  put(contentSha: string, name: string, bag: Float32Array, gridH: number, gridW: number, d: number): BagLocation | undefined {
    try {
      mkdirSync(this.dir, { recursive: true });
      if (!this.configWritten) {
        const cfgFile = path.join(this.dir, 'config.json');
        if (!existsSync(cfgFile)) {
          atomicWrite(cfgFile, JSON.stringify({ format: FEATURE_CACHE_FORMAT, ...this.config, gridH, gridW, d, dtype: 'float32', layout: '(gridH, gridW, d) C order' }, null, 2) + '\n');
        }
        this.configWritten = true;
      }
      const npy = encodeNpy(bag, [gridH, gridW, d]);
      atomicWrite(this.file(contentSha), npy);
      appendFileSync(path.join(this.dir, 'index.jsonl'), JSON.stringify({ file: name, sha256: contentSha }) + '\n');
      return { file: this.file(contentSha), offset: npy.length - bag.byteLength };
    } catch {
      /* read-only or full disk: carry on without caching */
      return undefined;
    }
  }
}

function atomicWrite(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}
