/**
 * @file The two implementations of {@link BagStore} (types.ts): {@link MemoryBags} over an in-memory bank and
 * {@link DiskBags}, a patch-bag store on disk for feature banks too large to hold whole (docs/performance.md).
 *
 * Each image's bag (`m × d` f32, the same bytes as its feature-cache entry) lives at a byte offset of some
 * file: its `.npy` entry in the feature cache when that entry exists (a cache hit, or a successful write), else a
 * private spill file (cache disabled or not writable) that {@link DiskBags.close} deletes. Reading a range of
 * bags is one positioned read per image into a caller-supplied buffer, so the weighting and pooling stages hold
 * only the chunk they work on: memory is O(chunk·m·d) instead of O(n·m·d).
 * @module pipeline/bank-store
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KernelError } from '../errors.js';
import type { BagStore, FeatureBank } from './types.js';


/** Spill files not yet closed: deleted at process exit if their owner never called `close()`. */
const liveSpills = new Set<string>();
let exitHook = false;
function registerSpill(file: string): void {
  liveSpills.add(file);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', removeSpillFiles);
  }
}

/**
 * Deletes every spill file of this process not yet closed (runs at process exit by itself; call it before a
 * process ends another way, e.g. killed by a re-raised signal).
 */
export function removeSpillFiles(): void {
  for (const f of liveSpills) {
    try { unlinkSync(f); } catch { /* already gone */ }
  }
  liveSpills.clear();
}

/** Where one bag's bytes are: a file and the byte offset of its first float. */
export interface BagLocation {
  file: string;
  offset: number;
}

/** The bags of an in-memory bank (`data`, image-major) as a {@link BagStore}: reads copy, nothing to release. */
export class MemoryBags implements BagStore {
  constructor(private readonly data: Float32Array, readonly n: number, readonly m: number, readonly d: number) {}

  read(i0: number, i1: number, out?: Float32Array): Float32Array {
    const len = this.m * this.d;
    const view = this.data.subarray(i0 * len, i1 * len);
    const dst = out ?? new Float32Array(view.length);
    dst.set(view);
    return dst;
  }

  close(): void {}
}

/** A bank's bags as a {@link BagStore}: its `store` when streamed, else {@link MemoryBags} over `data`. */
export function bagStore(bank: FeatureBank): BagStore {
  return bank.store ?? new MemoryBags(bank.data, bank.n, bank.m, bank.d);
}

/** Builds and reads a bag store on disk (see the module docs). */
export class DiskBags implements BagStore {
  private locs: (BagLocation | undefined)[];
  private spill?: { file: string; fd: number; size: number };
  private closed = false;
  private readonly bagBytes: number;

  /**
   * @param n bags to expect (before any compaction)
   * @param spillDir folder of the spill file (created on the first {@link DiskBags.addRows}); default the OS temp dir
   */
  constructor(n: number, readonly m: number, readonly d: number, private readonly spillDir: string = tmpdir()) {
    this.locs = new Array<BagLocation | undefined>(n);
    this.bagBytes = m * d * 4;
  }

  get n(): number {
    return this.locs.length;
  }

  /** Records that bag `i` is already on disk (e.g. a feature-cache entry). */
  addLocation(i: number, loc: BagLocation): void {
    this.locs[i] = loc;
  }

  /**
   * Appends bag `i` (`m·d` floats) to the spill file.
   * @throws {KernelError} `ERR_IO` if the spill file cannot be written (e.g. the disk is full)
   */
  addRows(i: number, rows: Float32Array): void {
    this.assertOpen();
    try {
      if (!this.spill) {
        const file = path.join(this.spillDir, `anomaly-clustering-bank-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}.f32`);
        this.spill = { file, fd: openSync(file, 'w+', 0o600), size: 0 };
        registerSpill(file);
      }
      const bytes = new Uint8Array(rows.buffer, rows.byteOffset, this.bagBytes);
      let off = 0;
      while (off < bytes.length) off += writeSync(this.spill.fd, bytes, off, bytes.length - off, this.spill.size + off);
      this.locs[i] = { file: this.spill.file, offset: this.spill.size };
      this.spill.size += this.bagBytes;
    } catch (e) {
      throw new KernelError('ERR_IO', `feature bank: cannot write the spill file in ${this.spillDir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Keeps only the bags at the given indices, in that order (drops skipped images). */
  compact(keep: number[]): void {
    this.locs = keep.map((i) => this.locs[i]);
  }

  read(i0: number, i1: number, out?: Float32Array): Float32Array {
    this.assertOpen();
    const len = this.m * this.d;
    if (!(Number.isSafeInteger(i0) && Number.isSafeInteger(i1) && 0 <= i0 && i0 <= i1 && i1 <= this.n)) {
      throw new RangeError(`read: expected 0 ≤ i0 ≤ i1 ≤ ${this.n}, got [${i0}, ${i1})`);
    }
    const dst = out ?? new Float32Array((i1 - i0) * len);
    if (dst.length < (i1 - i0) * len) throw new RangeError(`read: out holds ${dst.length} floats, need ${(i1 - i0) * len}`);
    const bytes = new Uint8Array(dst.buffer, dst.byteOffset, (i1 - i0) * this.bagBytes);
    let fd = -1;
    let fdFile = '';
    try {
      for (let i = i0; i < i1; i++) {
        const loc = this.locs[i];
        if (!loc) throw new Error(`bag ${i} was never stored (internal error)`);
        if (loc.file !== fdFile) {
          if (fd >= 0 && fdFile !== this.spill?.file) closeSync(fd);
          fd = loc.file === this.spill?.file ? this.spill.fd : openSync(loc.file, 'r');
          fdFile = loc.file;
        }
        const at = (i - i0) * this.bagBytes;
        let got = 0;
        while (got < this.bagBytes) {
          const r = readSync(fd, bytes, at + got, this.bagBytes - got, loc.offset + got);
          if (r === 0) throw new Error(`${loc.file}: file ends before bag ${i}`);
          got += r;
        }
      }
    } catch (e) {
      throw new KernelError('ERR_IO', `feature bank: cannot read a streamed bag: ${(e as Error).message}`, { cause: e });
    } finally {
      if (fd >= 0 && fdFile !== this.spill?.file) closeSync(fd);
    }
    return dst;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.spill) {
      try { closeSync(this.spill.fd); } catch { /* already closed */ }
      try { unlinkSync(this.spill.file); } catch { /* already gone */ }
      liveSpills.delete(this.spill.file);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new KernelError('ERR_IO', 'feature bank: the streamed bank was closed');
  }
}

/**
 * Bags `[i0, i1)` of a bank, copied into `out` when it is given (and returned), else a view of `data` (in memory)
 * or a new array read from disk (streamed bank).
 */
export function bags(bank: FeatureBank, i0: number, i1: number, out?: Float32Array): Float32Array {
  if (bank.store) return bank.store.read(i0, i1, out);
  const len = bank.m * bank.d;
  const view = bank.data.subarray(i0 * len, i1 * len);
  if (!out) return view;
  out.set(view);
  return out;
}

/** Images per chunk when a streamed bank is read chunk by chunk: about {@link STREAM_CHUNK_BYTES} of bags. */
export function streamChunk(bank: FeatureBank): number {
  return Math.max(1, Math.floor(STREAM_CHUNK_BYTES / (bank.m * bank.d * 4)));
}

/**
 * The most images a stage may take per chunk of `bank`: {@link streamChunk} for a streamed bank, no cap in memory;
 * and a buffer of that many bags to read them into (streamed) or none (in memory: {@link bags} gives views).
 */
export function chunkOf(bank: FeatureBank, want: number): { images: number; buffer: Float32Array | undefined } {
  if (!bank.store) return { images: want, buffer: undefined };
  const images = Math.min(want, streamChunk(bank));
  return { images, buffer: new Float32Array(Math.min(images, bank.n) * bank.m * bank.d) };
}

/** Bytes of bags a streamed bank reads per chunk (pooling, semi-supervised queries, whitening). */
export const STREAM_CHUNK_BYTES = 64 * 2 ** 20;

/**
 * `f(bagsOfChunk, i0, i1)` over the bank in chunks; in-memory banks in one call (their data is already there),
 * streamed banks {@link STREAM_CHUNK_BYTES} at a time through one reused buffer.
 */
export function forChunks(bank: FeatureBank, f: (rows: Float32Array, i0: number, i1: number) => void): void {
  if (!bank.store) return f(bank.data, 0, bank.n);
  const step = streamChunk(bank);
  const buf = new Float32Array(Math.min(step, bank.n) * bank.m * bank.d);
  for (let i0 = 0; i0 < bank.n; i0 += step) {
    const i1 = Math.min(bank.n, i0 + step);
    f(bags(bank, i0, i1, buf).subarray(0, (i1 - i0) * bank.m * bank.d), i0, i1);
  }
}
