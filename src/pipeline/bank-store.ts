/**
 * @file The two implementations of {@link BankStore} (types.ts), the one interface through which the pipeline
 * reads and maps the bags of a {@link FeatureBank}: {@link MemoryBags} over an in-memory bank and {@link DiskBags},
 * a patch-bag store on disk for feature banks too large to hold whole (docs/scale.md). {@link bagStore} gives the
 * store of any bank and {@link withBags} builds a bank's `data` / `store` fields from one, so no stage tests which
 * kind of bank it has.
 *
 * In a {@link DiskBags} each image's bag (`m × d` f32, the same bytes as its feature-cache entry) lives at a byte offset of some
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
import type { BagStore, BankStore, FeatureBank, MapChunksOptions } from './types.js';


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

/** The bags of an in-memory bank (`data`, image-major) as a {@link BankStore}: views without copying, nothing to release. */
export class MemoryBags implements BankStore {
  /** Always `false`: the bags are held in memory. */
  readonly streamed = false;

  constructor(private readonly data: Float32Array, readonly n: number, readonly m: number, readonly d: number) {}

  /** Copies bags `[i0, i1)` into `out` (allocated if omitted) and returns it (see {@link BagStore.read}). */
  read(i0: number, i1: number, out?: Float32Array): Float32Array {
    return this.view(i0, i1, out ?? new Float32Array((i1 - i0) * this.m * this.d));
  }

  /** Bags `[i0, i1)`: copied into `out` when it is given (and returned), else a view of `data` (no copy). */
  view(i0: number, i1: number, out?: Float32Array): Float32Array {
    const len = this.m * this.d;
    const view = this.data.subarray(i0 * len, i1 * len);
    if (!out) return view;
    out.set(view);
    return out;
  }

  /** The whole `data` array, as it is. */
  resident(): Float32Array {
    return this.data;
  }

  /** No cap in memory: `want` images per chunk, and no buffer ({@link MemoryBags.view} gives views). */
  chunk(want: number): { images: number; buffer: Float32Array | undefined } {
    return { images: want, buffer: undefined };
  }

  /** One call `f(data, 0, n)`: the data is already there. */
  forChunks(f: (rows: Float32Array, i0: number, i1: number) => void): void {
    return f(this.data, 0, this.n);
  }

  /**
   * Maps the bags {@link streamChunk} images at a time (views of `data`) into a new data array of the same length,
   * or into `data` itself when `inPlace` (the raw bags are then gone); `spillDir` is not used.
   */
  async mapChunks(f: (rows: Float32Array, i0: number, i1: number) => Promise<Float32Array>, opts: MapChunksOptions = {}): Promise<MemoryBags> {
    const { n, m, d } = this;
    const data = opts.inPlace ? this.data : new Float32Array(this.data.length);
    await mapEachChunk(this, opts, (i0, i1) => this.view(i0, i1), f, (out, i0) => data.set(out, i0 * m * d));
    return new MemoryBags(data, n, m, d);
  }

  /** `{data, store: undefined}`: an in-memory bank. */
  bankFields(): Pick<FeatureBank, 'data' | 'store'> {
    return { data: this.data, store: undefined };
  }

  /** `'data: …'` unless `data` holds exactly `n·m·d` floats. */
  mismatch(n: number, m: number, d: number): string | undefined {
    if (this.data.length !== n * m * d) return `data: expected length n*m*d = ${n * m * d}, got ${this.data.length}`;
    return undefined;
  }

  /** Nothing to release. */
  close(): void {}
}

/**
 * The loop of both `mapChunks`: {@link streamChunk} images at a time, `beforeChunk`, then `read` the chunk, map it
 * with `f` and `write` the result.
 */
async function mapEachChunk(
  bags: { n: number; m: number; d: number },
  opts: MapChunksOptions,
  read: (i0: number, i1: number) => Float32Array,
  f: (rows: Float32Array, i0: number, i1: number) => Promise<Float32Array>,
  write: (out: Float32Array, i0: number, i1: number) => void,
): Promise<void> {
  const per = streamChunk(bags);
  for (let i0 = 0; i0 < bags.n; i0 += per) {
    opts.beforeChunk?.();
    const i1 = Math.min(bags.n, i0 + per);
    write(await f(read(i0, i1), i0, i1), i0, i1);
  }
}

/**
 * The chunked access of a {@link BankStore} whose bags are read on demand through `read` (a streamed bank): reads
 * are copies, chunks hold about {@link STREAM_CHUNK_BYTES} of bags, and a map writes a new {@link DiskBags} spill.
 * {@link DiskBags} is one; {@link bagStore} wraps any other {@link BagStore} set as a bank's `store` in one.
 */
export abstract class StreamedBags implements BankStore {
  /** Always `true`: the bags are read on demand. */
  readonly streamed = true;
  abstract readonly n: number;
  abstract readonly m: number;
  abstract readonly d: number;
  /** See {@link BagStore.read}. */
  abstract read(i0: number, i1: number, out?: Float32Array): Float32Array;
  /** See {@link BagStore.close}. */
  abstract close(): void;

  /** Bags `[i0, i1)` read into `out` when it is given (and returned), else into a new array. */
  view(i0: number, i1: number, out?: Float32Array): Float32Array {
    return this.read(i0, i1, out);
  }

  /** `undefined`: the bags are not held in memory. */
  resident(): undefined {
    return undefined;
  }

  /** At most {@link streamChunk} images per chunk, and a buffer of that many bags (at most `n`) to read them into. */
  chunk(want: number): { images: number; buffer: Float32Array | undefined } {
    const images = Math.min(want, streamChunk(this));
    return { images, buffer: new Float32Array(Math.min(images, this.n) * this.m * this.d) };
  }

  /** `f(bagsOfChunk, i0, i1)` over the bags, {@link STREAM_CHUNK_BYTES} at a time through one reused buffer. */
  forChunks(f: (rows: Float32Array, i0: number, i1: number) => void): void {
    const { n, m, d } = this;
    const step = streamChunk(this);
    const buf = new Float32Array(Math.min(step, n) * m * d);
    for (let i0 = 0; i0 < n; i0 += step) {
      const i1 = Math.min(n, i0 + step);
      f(this.read(i0, i1, buf).subarray(0, (i1 - i0) * m * d), i0, i1);
    }
  }

  /**
   * Maps the bags {@link streamChunk} images at a time (read through one reused buffer) into a new spill file in
   * `spillDir` (closed again if the map fails); `inPlace` has no effect: the original files are never written.
   * @throws {KernelError} `ERR_IO` from the reads or the spill writes; whatever `f` or `beforeChunk` throws
   */
  async mapChunks(f: (rows: Float32Array, i0: number, i1: number) => Promise<Float32Array>, opts: MapChunksOptions = {}): Promise<DiskBags> {
    const { n, m, d } = this;
    const store = new DiskBags(n, m, d, opts.spillDir);
    const buf = new Float32Array(Math.min(streamChunk(this), n) * m * d);
    const bag = m * d;
    try {
      await mapEachChunk(this, opts, (i0, i1) => this.read(i0, i1, buf).subarray(0, (i1 - i0) * bag), f, (out, i0, i1) => {
        for (let i = i0; i < i1; i++) store.addRows(i, out.subarray((i - i0) * bag, (i - i0 + 1) * bag));
      });
    } catch (e) {
      store.close();
      throw e;
    }
    return store;
  }

  /** `{data: new Float32Array(0), store: this}`: a streamed bank. */
  bankFields(): Pick<FeatureBank, 'data' | 'store'> {
    return { data: new Float32Array(0), store: this };
  }

  /** `'store: …'` unless the store can read and holds `n` bags of `m × d`. */
  mismatch(n: number, m: number, d: number): string | undefined {
    if (this.n !== n || this.m !== m || this.d !== d) return `store: expected a bag store of n=${n} bags of m=${m} × d=${d}`;
    return undefined;
  }
}

/** Any other {@link BagStore} set as a bank's `store` (e.g. one of the caller's): streamed, through its `read`. */
class ReadBags extends StreamedBags {
  constructor(private readonly inner: BagStore) {
    super();
  }

  get n(): number {
    return this.inner.n;
  }

  get m(): number {
    return this.inner.m;
  }

  get d(): number {
    return this.inner.d;
  }

  /** The wrapped store's `read`. */
  read(i0: number, i1: number, out?: Float32Array): Float32Array {
    return this.inner.read(i0, i1, out);
  }

  /** Closes the wrapped store. */
  close(): void {
    this.inner.close();
  }

  /** `{data: new Float32Array(0), store}` with the wrapped store. */
  override bankFields(): Pick<FeatureBank, 'data' | 'store'> {
    return { data: new Float32Array(0), store: this.inner };
  }

  /** As {@link StreamedBags.mismatch}, asking the wrapped store whether it can read. */
  override mismatch(n: number, m: number, d: number): string | undefined {
    if (typeof this.inner.read !== 'function') return `store: expected a bag store of n=${n} bags of m=${m} × d=${d}`;
    return super.mismatch(n, m, d);
  }
}

/**
 * A bank's bags as a {@link BankStore}: {@link MemoryBags} over `data` when it has no `store`; its `store` when that
 * is a {@link StreamedBags} (a {@link DiskBags}), else that store wrapped as streamed (read through its `read`).
 */
export function bagStore(bank: FeatureBank): BankStore {
  const store = bank.store;
  if (!store) return new MemoryBags(bank.data, bank.n, bank.m, bank.d);
  return store instanceof StreamedBags ? store : new ReadBags(store);
}

/** `bank` with its bags in `store` (`data` and `store` from {@link BankStore.bankFields}); every other field kept. */
export function withBags(bank: FeatureBank, store: BankStore): FeatureBank {
  return { ...bank, ...store.bankFields() };
}

/** Builds and reads a bag store on disk (see the module docs). */
export class DiskBags extends StreamedBags {
  private locs: (BagLocation | undefined)[];
  private spill?: { file: string; fd: number; size: number };
  private closed = false;
  private readonly bagBytes: number;

  /**
   * @param n bags to expect (before any compaction)
   * @param spillDir folder of the spill file (created on the first {@link DiskBags.addRows}); default the OS temp dir
   */
  constructor(n: number, readonly m: number, readonly d: number, private readonly spillDir: string = tmpdir()) {
    super();
    this.locs = new Array<BagLocation | undefined>(n);
    this.bagBytes = m * d * 4;
  }

  /** Number of bags (after any compaction). */
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

  /**
   * Copies bags `[i0, i1)` into `out` (allocated if omitted) and returns it: one positioned read per bag.
   * @throws {RangeError} for a bad range or a too short `out`; {@link KernelError} `ERR_IO` if a file can no longer be read or the store was closed
   */
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

  /** Closes the spill file and deletes it (the feature-cache entries are left alone). Idempotent. */
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

/** Bytes of bags a streamed bank reads per chunk (pooling, semi-supervised queries, whitening). */
export const STREAM_CHUNK_BYTES = 64 * 2 ** 20;

/** Images per chunk when a streamed bank is read chunk by chunk (and per whitening chunk): about {@link STREAM_CHUNK_BYTES} of bags. */
export function streamChunk(bags: { m: number; d: number }): number {
  return Math.max(1, Math.floor(STREAM_CHUNK_BYTES / (bags.m * bags.d * 4)));
}
