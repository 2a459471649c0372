/**
 * @file On-disk cache of patch embeddings, readable from Python with numpy alone.
 *
 * Layout (format `anomaly-clustering/features@2`):
 * ```
 * <cacheDir>/<configKey>/config.json        backbone (id, model file SHA-256, layers), preprocessing
 *                                           (inputSize, resize, mean, std), aggregation, gridH, gridW, d
 * <cacheDir>/<configKey>/<sha256>.npy       one image: float32 little-endian ('<f4'), C order,
 *                                           shape (gridH, gridW, d) = its M×D patch bag, then a 40-byte
 *                                           trailer: 'ACSUM\0\0\1' + SHA-256 of (key line + payload)
 * <cacheDir>/<configKey>/index.jsonl        one line per write: {"file": <name>, "sha256": <content hash>}
 * ```
 * `sha256` is the hash of the image file's bytes; `configKey` is the first 16 hex digits of the SHA-256 of the
 * canonical JSON of {format, backbone, preprocessing, aggregation}. So the full key is (content, backbone,
 * preprocessing): renaming a file still hits, changing τ or K (later stages) never recomputes features.
 * Writes are atomic (temp file + rename). Every entry is **validated on read**: its trailer holds the SHA-256 of
 * `"<configKey>/<sha256>\n"` followed by the payload bytes, so a flipped byte, a truncated file or two entries
 * swapped (each then holds the other's key) are detected; a payload with NaN or ±Infinity is bad too (and is never
 * written). A bad entry is deleted, reported through the cache's `onWarning` and recomputed — never used, never
 * fatal. A missing, unreadable or mis-shaped entry is a plain miss. `numpy.load` reads an entry as before (it reads
 * `prod(shape)` floats and ignores the trailer).
 * @module pipeline/cache
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BagLocation } from './bank-store.js';

/** Cache format tag written into config.json. */
export const FEATURE_CACHE_FORMAT = 'anomaly-clustering/features@2';

/** First 8 bytes of an entry's trailer; the 32-byte SHA-256 follows. */
const TRAILER_MAGIC = Uint8Array.from([0x41, 0x43, 0x53, 0x55, 0x4d, 0, 0, 1]); // 'ACSUM' 0 0 1
/** Bytes after the payload of an entry. */
export const TRAILER_BYTES = 40;

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
  private readonly key: string;
  private configWritten = false;
  /** Bad entries found (and deleted) so far. */
  dropped = 0;

  /**
   * @param onWarning told about each bad entry dropped (default: `process.emitWarning`)
   * @param folderKey the entry folder's name when it is known rather than derived from `config` (a reader of a folder
   *   named by a shard manifest)
   */
  constructor(cacheDir: string, readonly config: FeatureConfig, private readonly onWarning: (message: string) => void = defaultWarn, folderKey?: string) {
    this.key = folderKey ?? configKey(config);
    this.dir = path.join(cacheDir, this.key);
  }

  /** Path of one image's entry. */
  file(contentSha: string): string {
    return path.join(this.dir, `${contentSha}.npy`);
  }

  /** SHA-256 over the key line and the payload (what the trailer holds). */
  private digest(contentSha: string, payload: Uint8Array): Buffer {
    return createHash('sha256').update(`${this.key}/${contentSha}\n`).update(payload).digest();
  }

  /**
   * Reads and validates an entry of this shape. A bad one (checksum, key, truncation, non-finite values) is deleted
   * and reported; a missing one is a plain miss.
   */
  private load(contentSha: string, gridH: number, gridW: number, d: number): { data: Float32Array; start: number } | undefined {
    const f = this.file(contentSha);
    let b: Uint8Array;
    try {
      b = readFileSync(f);
    } catch {
      return undefined; // missing or unreadable: a miss
    }
    const why = this.check(b, contentSha, gridH, gridW, d);
    if (typeof why === 'string') {
      this.drop(f, why);
      return undefined;
    }
    return why;
  }

  private check(b: Uint8Array, contentSha: string, gridH: number, gridW: number, d: number): { data: Float32Array; start: number } | string {
    const h = parseNpyHeader(b.subarray(0, Math.min(b.length, 4096)));
    if (!h) return 'not a float32 .npy file';
    if (h.shape.length !== 3 || h.shape[0] !== gridH || h.shape[1] !== gridW || h.shape[2] !== d) {
      return `shape (${h.shape.join(', ')}), expected (${gridH}, ${gridW}, ${d})`;
    }
    const len = gridH * gridW * d * 4;
    if (b.length !== h.start + len + TRAILER_BYTES) return `${b.length} bytes, expected ${h.start + len + TRAILER_BYTES} (truncated, or written without a checksum)`;
    const payload = b.subarray(h.start, h.start + len);
    const tr = b.subarray(h.start + len);
    if (!TRAILER_MAGIC.every((v, i) => tr[i] === v)) return 'no checksum trailer';
    if (!this.digest(contentSha, payload).equals(tr.subarray(8))) return 'checksum mismatch (corrupted, or the entry of another image)';
    const data = new Float32Array(len / 4);
    new Uint8Array(data.buffer).set(payload);
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return `value at index ${i} is ${data[i]}`;
    return { data, start: h.start };
  }

  private drop(f: string, why: string): void {
    this.dropped++;
    try { unlinkSync(f); } catch { /* read-only cache: recomputed anyway, and put() may still replace it */ }
    this.onWarning(`feature cache: dropped the bad entry ${f} (${why}); recomputing it`);
  }

  /** The cached bag of an image (size gridH*gridW*d), or undefined on a miss or a bad entry (then deleted and reported). */
  get(contentSha: string, gridH: number, gridW: number, d: number): Float32Array | undefined {
    return this.load(contentSha, gridH, gridW, d)?.data;
  }

  /**
   * Where an entry's floats start, if the entry exists with this shape and is valid (checksum, finite values): the
   * entry is read once to check it, streamed banks read the bag itself again later (see `bank-store.ts`).
   */
  locate(contentSha: string, gridH: number, gridW: number, d: number): BagLocation | undefined {
    const r = this.load(contentSha, gridH, gridW, d);
    return r ? { file: this.file(contentSha), offset: r.start } : undefined;
  }

  /**
   * Stores one image's bag (size gridH*gridW*d). Failures to write are ignored (the cache is an optimisation); a
   * bag with NaN or ±Infinity is not stored.
   * @returns where the floats were written, or undefined if nothing was written
   */
  put(contentSha: string, name: string, bag: Float32Array, gridH: number, gridW: number, d: number): BagLocation | undefined {
    for (let i = 0; i < bag.length; i++) if (!Number.isFinite(bag[i]!)) return undefined;
    try {
      makeDir(this.dir);
      if (!this.configWritten) {
        const cfgFile = path.join(this.dir, 'config.json');
        if (!existsSync(cfgFile)) {
          atomicWrite(cfgFile, JSON.stringify({ format: FEATURE_CACHE_FORMAT, ...this.config, gridH, gridW, d, dtype: 'float32', layout: '(gridH, gridW, d) C order', trailer: 'ACSUM\\0\\0\\1 + sha256("<configKey>/<sha256>\\n" + payload), 40 bytes after the payload' }, null, 2) + '\n');
        }
        this.configWritten = true;
      }
      const npy = encodeNpy(bag, [gridH, gridW, d]);
      const start = npy.length - bag.byteLength;
      const entry = new Uint8Array(npy.length + TRAILER_BYTES);
      entry.set(npy);
      entry.set(TRAILER_MAGIC, npy.length);
      entry.set(this.digest(contentSha, npy.subarray(start)), npy.length + 8);
      atomicWrite(this.file(contentSha), entry);
      appendFileSync(path.join(this.dir, 'index.jsonl'), JSON.stringify({ file: name, sha256: contentSha }) + '\n');
      return { file: this.file(contentSha), offset: start };
    } catch {
      /* read-only or full disk: carry on without caching */
      return undefined;
    }
  }
}

function defaultWarn(message: string): void {
  process.emitWarning(message, 'AnomalyClusteringWarning');
}

/**
 * Creates a folder and its missing parents one level at a time. (`mkdirSync(…, {recursive: true})` never returns
 * for a path under `/proc`: Node retries the ENOENT forever.)
 * @throws the first `mkdir` / `stat` error (`ENOTDIR` when a file is in the way)
 */
export function makeDir(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    let st;
    try {
      st = statSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e; // ENOTDIR: a file further up, found on the way
      missing.push(d);
      if (path.dirname(d) === d) break;
      continue;
    }
    if (st.isDirectory()) break;
    throw Object.assign(new Error(`ENOTDIR: not a folder: ${d}`), { code: 'ENOTDIR', path: d });
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

function atomicWrite(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}
