/**
 * @file Image decoding and preprocessing. The only module that imports `sharp` (lazily).
 *
 * Every format sharp reads (PNG 8/16-bit, JPEG, WebP, TIFF, GIF, AVIF…; grey, grey+alpha, RGB, RGBA, CMYK) →
 * EXIF orientation applied (`.rotate()`) → alpha dropped → sRGB 8-bit → shorter side resized to `resize`
 * (the longer side to ⌊resize·long/short⌋, as torchvision's `Resize(int)`; sharp's default Lanczos-3 kernel) →
 * centre crop `inputSize²` (offsets rounded as torchvision's `CenterCrop`) → NCHW float32 `(v/255 − mean)/std`.
 * @module pipeline/image
 */
import { constants as fsc } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { ImageInput } from './types.js';
import { KernelError } from '../errors.js';
import { throwIfAborted } from './context.js';

type Sharp = typeof import('sharp').default;
let sharpPromise: Promise<Sharp> | undefined;

/** Loads sharp once. */
async function getSharp(): Promise<Sharp> {
  sharpPromise ??= import('sharp').then((m) => m.default);
  return sharpPromise;
}

/** Decoded, resized and cropped pixels: HWC, 8-bit, 3 channels (RGB). */
export interface RawImage {
  /** Size `height*width*channels`. */
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

/** How an image is brought to the square network input ({@link Preprocess.fit}). */
export type Fit = 'crop' | 'stretch' | 'pad';
/** Runtime list of {@link Fit}s. */
export const FITS = ['crop', 'stretch', 'pad'] as const;
/**
 * The pipeline's default {@link Fit} (`extractFeatures`, the report's thumbnails): `'stretch'`, so that nothing of an
 * elongated image is cut off. Measured with `benches/evaluate.mjs` (ResNet-50, τ = 1 × mean score spread) against
 * the centre crop: MTD (images 120–600 px wide or high, aspect up to 2.6) semi-supervised NMI 0.285 → 0.454 (K=6),
 * uniform 0.113 → 0.213 and max 0.184 → 0.265 (K=5); MVTec bottle (square) max 0.431 → 0.681, unsupervised
 * 0.600 → 0.650; but MTD-6 max 0.299 → 0.216 and unsupervised 0.275 → 0.224. `'pad'` fell to MTD-6 uniform/max
 * NMI 0.093/0.106. `decodeImage` itself defaults to `'crop'` (the ImageNet recipe).
 */
export const DEFAULT_FIT: Fit = 'stretch';

/** Geometry and normalisation of the preprocessing. */
export interface Preprocess {
  /** Square crop side = network input size. @default 224 */
  inputSize?: number;
  /** Shorter side after resizing, before the crop (≥ inputSize). @default round(256·inputSize/224) */
  resize?: number;
  /**
   * How the image is brought to the square input: `'crop'` resizes the shorter side to `resize` and centre-crops
   * (the ImageNet recipe); `'stretch'` resizes the whole image to `inputSize × inputSize` (aspect ratio not kept,
   * nothing cut off; `resize` unused); `'pad'` fits the whole image inside `inputSize × inputSize` (aspect kept)
   * and pads the rest with the normalisation mean (zeros after normalisation). @default 'crop'
   */
  fit?: Fit;
  /** Per-channel mean subtracted from [0,1] RGB. @default [0,0,0] */
  mean?: readonly [number, number, number];
  /** Per-channel std dividing after the mean. @default [1,1,1] */
  std?: readonly [number, number, number];
}

/** The display name of an input (its path, or its given name). */
export function imageName(input: ImageInput): string {
  return typeof input === 'string' ? input : input.name;
}

/**
 * Default cap on the size of one image file ({@link ReadOptions.maxBytes}): 256 MiB. The largest real inputs are
 * tens of MB (a 100-megapixel 16-bit TIFF is ~600 MB but sharp's default pixel limit refuses it anyway).
 */
export const DEFAULT_MAX_IMAGE_BYTES = 256 * 2 ** 20;

/** Options of {@link readImageBytes}. */
export interface ReadOptions {
  /** Files larger than this many bytes are refused before they are read (`Infinity` = no cap). @default {@link DEFAULT_MAX_IMAGE_BYTES} */
  maxBytes?: number;
  /** Stops the read between chunks (the call then rejects with `ERR_ABORTED`). */
  signal?: AbortSignal;
}

/** Throws `RangeError` unless `v` is a number of bytes > 0 (`Infinity` allowed). */
export function checkMaxImageBytes(v: unknown): asserts v is number {
  if (typeof v !== 'number' || Number.isNaN(v) || v <= 0) {
    throw new RangeError(`maxImageBytes: expected a number of bytes > 0 (Infinity = no cap), got ${String(v)}`);
  }
}

/** What a non-regular file is, for error messages. */
function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const READ_CHUNK = 4 * 2 ** 20;

/**
 * Reads an input's encoded bytes. A path must name a **regular file** (after following symlinks) of at most
 * `maxBytes` bytes: both are checked with `stat` before the file is opened, and again on the open descriptor
 * (opened non-blocking, so a FIFO swapped in meanwhile cannot block); the read is chunked and stops if the file
 * grows past the cap or `signal` aborts. Devices (`/dev/zero`), FIFOs, sockets and directories are refused.
 * A path may be a `Buffer` (via `{name, path}`) for file names that are not valid UTF-8.
 * @throws {KernelError} `ERR_IMAGE` naming the file and the reason (missing, not a regular file, over the cap,
 * empty, unreadable); `ERR_ABORTED` if `signal` aborts
 */
export async function readImageBytes(input: ImageInput, options: ReadOptions = {}): Promise<Uint8Array> {
  const { maxBytes = DEFAULT_MAX_IMAGE_BYTES, signal } = options;
  const name = imageName(input);
  let bytes: Uint8Array;
  if (typeof input === 'string' || (input && 'path' in input && (typeof input.path === 'string' || Buffer.isBuffer(input.path)))) {
    const file = typeof input === 'string' ? input : (input as { path: string | Buffer }).path;
    bytes = await readRegularFile(file, name, maxBytes, signal);
  } else {
    if (!input || !((input as { data?: unknown }).data instanceof Uint8Array)) {
      throw new KernelError('ERR_IMAGE', `${name}: expected a path, { name, data: Uint8Array } or { name, path }, got data of type ${typeof (input as { data?: unknown })?.data}`);
    }
    bytes = (input as { data: Uint8Array }).data;
    if (bytes.length > maxBytes) throw new KernelError('ERR_IMAGE', `${name}: ${bytes.length} bytes, over the image size cap of ${maxBytes} bytes (maxImageBytes)`);
  }
  if (bytes.length === 0) throw new KernelError('ERR_IMAGE', `${name}: the file is empty (0 bytes)`);
  return bytes;
}

async function readRegularFile(file: string | Buffer, name: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const fail = (why: string, cause?: unknown): never => {
    throw new KernelError('ERR_IMAGE', `${name}: ${why}`, cause === undefined ? undefined : { cause });
  };
  const checkAbort = () => throwIfAborted(signal, `${name}: reading`);
  const errno = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  checkAbort();
  let st;
  try {
    st = await stat(file);
  } catch (e) {
    return fail(`cannot read the file (${errno(e)})`, e);
  }
  if (!st.isFile()) fail(`${kindOf(st)}, not a regular file: refused`);
  if (st.size > maxBytes) fail(`${st.size} bytes, over the image size cap of ${maxBytes} bytes (maxImageBytes / --max-image-size)`);
  let fh: FileHandle;
  try {
    // O_NONBLOCK: should the path have become a FIFO since the stat, the open cannot block.
    fh = await open(file, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (e) {
    return fail(`cannot read the file (${errno(e)})`, e);
  }
  try {
    const st2 = await fh.stat();
    if (!st2.isFile()) fail(`${kindOf(st2)}, not a regular file: refused`);
    if (st2.size > maxBytes) fail(`${st2.size} bytes, over the image size cap of ${maxBytes} bytes (maxImageBytes / --max-image-size)`);
    // One byte more than the size seen: a file that grows while it is read is caught (and the memory stays bounded).
    const buf = Buffer.allocUnsafe(st2.size + 1);
    let got = 0;
    while (got < buf.length) {
      checkAbort();
      let r;
      try {
        r = await fh.read(buf, got, Math.min(READ_CHUNK, buf.length - got), got);
      } catch (e) {
        return fail(`cannot read the file (${errno(e)})`, e);
      }
      if (r.bytesRead === 0) break;
      got += r.bytesRead;
    }
    if (got > st2.size) fail(`the file grew while it was read (stat said ${st2.size} bytes): refused`);
    return buf.subarray(0, got);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Default shorter side for an input size (256 for 224, as the ImageNet recipe). */
export function defaultResize(inputSize: number): number {
  return Math.round((256 * inputSize) / 224);
}

/**
 * Decodes encoded image bytes, orients, resizes the shorter side and centre-crops.
 * @param bytes the encoded file
 * @param name the name used in error messages
 * @returns RGB pixels `inputSize × inputSize × 3`
 * @throws {KernelError} `ERR_IMAGE` (message names the file) for unreadable, truncated, non-image or zero-size data
 */
export async function decodeImage(bytes: Uint8Array, name: string, pre: Preprocess = {}): Promise<RawImage> {
  const inputSize = pre.inputSize ?? 224;
  const resize = pre.resize ?? defaultResize(inputSize);
  if (!Number.isSafeInteger(inputSize) || inputSize < 1) throw new RangeError(`inputSize: expected a positive integer, got ${inputSize}`);
  if (!Number.isSafeInteger(resize) || resize < inputSize) throw new RangeError(`resize: expected an integer ≥ inputSize (${inputSize}), got ${resize}`);
  const fit = pre.fit ?? 'crop';
  if (!(FITS as readonly string[]).includes(fit)) throw new RangeError(`fit: expected one of ${FITS.join(', ')}, got ${JSON.stringify(fit)}`);
  const sharp = await getSharp();
  try {
    // failOn 'error': reject truncated/corrupt pixel data, tolerate mere warnings (some real JPEGs carry them).
    const meta = await sharp(bytes, { failOn: 'error' }).metadata();
    let w = meta.width ?? 0;
    let h = meta.height ?? 0;
    if (!w || !h) throw new Error(`zero-size image (${w}×${h})`);
    if ((meta.orientation ?? 1) >= 5) [w, h] = [h, w]; // EXIF 5–8 swap the axes
    let img = sharp(bytes, { failOn: 'error' }).rotate().removeAlpha().toColourspace('srgb');
    if (fit === 'crop') {
      const s = Math.min(w, h);
      const rw = w === s ? resize : Math.max(resize, Math.trunc((resize * w) / s));
      const rh = h === s ? resize : Math.max(resize, Math.trunc((resize * h) / s));
      const left = Math.round((rw - inputSize) / 2);
      const top = Math.round((rh - inputSize) / 2);
      img = img.resize(rw, rh, { fit: 'fill' }).extract({ left, top, width: inputSize, height: inputSize });
    } else {
      const bg = (pre.mean ?? [0, 0, 0]).map((v) => Math.min(255, Math.max(0, Math.round(255 * v))));
      img = img
        .resize(inputSize, inputSize, fit === 'stretch' ? { fit: 'fill' } : { fit: 'contain', background: { r: bg[0]!, g: bg[1]!, b: bg[2]! } })
        .removeAlpha();
    }
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { data: toRgb(data, info.channels, name), width: info.width, height: info.height, channels: 3 };
  } catch (e) {
    if (e instanceof KernelError) throw e;
    throw new KernelError('ERR_IMAGE', `${name}: cannot decode the image (${(e as Error).message.trim()})`, { cause: e });
  }
}

/** Makes sure pixels are 3-channel RGB (grey is replicated; a leftover alpha band is dropped). */
function toRgb(data: Uint8Array, channels: number, name: string): Uint8Array {
  if (channels === 3) return data;
  const n = data.length / channels;
  const out = new Uint8Array(n * 3);
  if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[i * channels]!;
  } else if (channels === 4) {
    for (let i = 0; i < n; i++) { out[3 * i] = data[4 * i]!; out[3 * i + 1] = data[4 * i + 1]!; out[3 * i + 2] = data[4 * i + 2]!; }
  } else {
    throw new KernelError('ERR_IMAGE', `${name}: unexpected ${channels} channels after conversion to sRGB`);
  }
  return out;
}

/**
 * Writes HWC u8 RGB pixels into an NCHW float32 tensor as `(v/255 − mean[c]) / std[c]`.
 * @param img pixels from {@link decodeImage}
 * @param out destination, at least `offset + 3*H*W` long
 * @param offset where this image's `3×H×W` block starts in `out`
 */
export function toNCHW(img: RawImage, out: Float32Array, offset = 0, mean: readonly number[] = [0, 0, 0], std: readonly number[] = [1, 1, 1]): void {
  const hw = img.width * img.height;
  const d = img.data;
  for (let c = 0; c < 3; c++) {
    const a = 1 / (255 * std[c]!);
    const b = -mean[c]! / std[c]!;
    const base = offset + c * hw;
    for (let i = 0; i < hw; i++) out[base + i] = d[3 * i + c]! * a + b;
  }
}

/**
 * Loads one image: read, decode, orient, resize, crop.
 * @param input a path or `{name, data}`
 * @returns RGB pixels `inputSize × inputSize × 3`
 * @throws {KernelError} `ERR_IMAGE` naming the file
 */
export async function loadImage(input: ImageInput, pre: Preprocess = {}, read: ReadOptions = {}): Promise<RawImage> {
  return decodeImage(await readImageBytes(input, read), imageName(input), pre);
}
