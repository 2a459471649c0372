// Minimal .npy (format 1.0) reader/writer for float32/float64/int32 C-order arrays, for the benchmarks.
import fs from 'node:fs';

const DT = { '<f4': Float32Array, '<f8': Float64Array, '<i4': Int32Array };
const NAME = new Map([[Float32Array, '<f4'], [Float64Array, '<f8'], [Int32Array, '<i4']]);

/** Writes a typed array as .npy with the given shape. */
export function writeNpy(file, arr, shape) {
  const descr = NAME.get(arr.constructor);
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength)]));
}

/** Reads a .npy written by numpy (v1/v2 headers, little-endian C order). */
export function readNpy(file) {
  const buf = fs.readFileSync(file);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const Ctor = DT[descr];
  if (!Ctor) throw new Error(`${file}: unsupported dtype ${descr}`);
  const off = start + hlen;
  const bytes = buf.subarray(off);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return { data: new Ctor(copy.buffer), shape };
}
