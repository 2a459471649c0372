/**
 * Image decoding: every format/mode sharp reads (generated with sharp `create`), EXIF orientation, geometry,
 * normalisation, real MTD/MVTec files, and bad inputs (ERR_IMAGE naming the file).
 */
import { describe, expect, it, beforeAll } from 'vitest';
import sharp from 'sharp';
import { mkdtempSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeImage, loadImage, toNCHW, defaultResize, type RawImage } from '../../src/pipeline/image.js';
import { KernelError } from '../../src/errors.js';

const DATA = path.resolve(__dirname, '../../../shared/data');
const hasData = existsSync(DATA);
let dir: string;

const solid = (w: number, h: number, r: number, g: number, b: number, alpha?: number) =>
  sharp({ create: { width: w, height: h, channels: alpha === undefined ? 3 : 4, background: { r, g, b, alpha: alpha ?? 1 } } });

/** Mean of channel c over the image. */
function meanC(img: RawImage, c: number): number {
  let s = 0;
  for (let i = c; i < img.data.length; i += 3) s += img.data[i]!;
  return s / (img.data.length / 3);
}
const px = (img: RawImage, x: number, y: number) => [0, 1, 2].map((c) => img.data[(y * img.width + x) * 3 + c]!);

async function expectImageError(p: Promise<unknown>, name: string) {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe('ERR_IMAGE');
  expect((e as KernelError).message).toContain(name);
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ac-image-'));
});

describe('formats and modes', () => {
  const cases: [string, () => Promise<Buffer>, [number, number, number], number][] = [
    ['PNG 8-bit RGB', () => solid(300, 200, 200, 100, 50).png().toBuffer(), [200, 100, 50], 1],
    ['PNG 16-bit RGB', () => solid(300, 200, 200, 100, 50).toColourspace('rgb16').png().toBuffer(), [200, 100, 50], 2],
    ['PNG grey', () => solid(120, 260, 90, 90, 90).greyscale().png().toBuffer(), [90, 90, 90], 1],
    ['PNG 16-bit grey', () => solid(120, 260, 90, 90, 90).toColourspace('grey16').png().toBuffer(), [90, 90, 90], 2],
    ['PNG RGBA', () => solid(256, 256, 10, 200, 30, 0.5).png().toBuffer(), [10, 200, 30], 1],
    ['JPEG', () => solid(500, 400, 200, 100, 50).jpeg({ quality: 95 }).toBuffer(), [200, 100, 50], 3],
    ['JPEG grey', () => solid(500, 400, 77, 77, 77).greyscale().jpeg({ quality: 95 }).toBuffer(), [77, 77, 77], 3],
    ['WebP lossless', () => solid(333, 222, 200, 100, 50).webp({ lossless: true }).toBuffer(), [200, 100, 50], 1],
    ['WebP RGBA', () => solid(333, 222, 200, 100, 50, 0.3).webp({ lossless: true, exact: true }).toBuffer(), [200, 100, 50], 3], // alpha 0.3: premultiplication rounding
    ['TIFF', () => solid(240, 240, 200, 100, 50).tiff().toBuffer(), [200, 100, 50], 1],
    ['TIFF 16-bit', () => solid(240, 240, 200, 100, 50).toColourspace('rgb16').tiff().toBuffer(), [200, 100, 50], 2],
  ];
  it.each(cases)('%s → 224×224×3 with the right colour', async (name, make, rgb, tol) => {
    const buf = await make();
    const img = await decodeImage(buf, name);
    expect([img.width, img.height, img.channels, img.data.length]).toEqual([224, 224, 3, 224 * 224 * 3]);
    for (let c = 0; c < 3; c++) expect(Math.abs(meanC(img, c) - rgb[c]!)).toBeLessThanOrEqual(tol);
  });

  it('reads 16-bit PNG values at 8-bit precision', async () => {
    const raw = new Uint16Array(64 * 64 * 3).fill(40000);
    const buf = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(buf).metadata()).depth).toBe('ushort');
    const img = await decodeImage(buf, '16bit', { inputSize: 32, resize: 32 });
    expect(Math.abs(meanC(img, 0) - (40000 / 65535) * 255)).toBeLessThan(2);
  });
});

describe('geometry', () => {
  it('resizes the shorter side and centre-crops (configurable)', async () => {
    // 400×200: left quarter red, rest blue. Shorter side → 256: 512×256; crop 224 from the centre: x 144..368
    // of 512 ↔ source x 112.5..184 → all blue. A 100×100 crop after resize 100 keeps the red quarter.
    const w = 400, h = 200;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < 100 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
    const png = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
    const a = await decodeImage(png, 'a');
    expect(px(a, 5, 112)[0]).toBeLessThan(10);
    expect(px(a, 5, 112)[2]).toBeGreaterThan(245);
    const b = await decodeImage(png, 'b', { inputSize: 100, resize: 100 });
    expect([b.width, b.height]).toEqual([100, 100]);
    expect(px(b, 5, 50)[0]).toBeLessThan(10); // crop x 50..150 of 200 ↔ source 100..300: blue
    const c = await decodeImage(png, 'c', { inputSize: 100, resize: 200 });
    // resize 200 → 400×200, crop 100² at x 150..250, y 50..150: blue; no crop offset bug would show red
    expect(px(c, 0, 50)[2]).toBeGreaterThan(245);
    const wide = await decodeImage(png, 'w', { inputSize: 100, resize: 100 });
    expect(wide.data).toEqual(b.data); // deterministic
  });

  it("fit 'stretch' keeps the whole image (aspect not kept); 'pad' fits it inside and pads with the mean colour", async () => {
    // 400×200: left quarter red, rest blue
    const w = 400, h = 200;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < 100 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
    const png = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
    const s = await decodeImage(png, 's', { inputSize: 100, fit: 'stretch' });
    expect([s.width, s.height]).toEqual([100, 100]);
    expect(px(s, 0, 10)[0]).toBeGreaterThan(245); // source x 40: red, at the top row too
    expect(px(s, 10, 99)[0]).toBeGreaterThan(245);
    expect(px(s, 50, 60)[2]).toBeGreaterThan(245); // source x 240: blue
    const p = await decodeImage(png, 'p', { inputSize: 100, fit: 'pad', mean: [0.5, 0.5, 0.5] });
    expect([p.width, p.height]).toEqual([100, 100]);
    expect(px(p, 50, 2)).toEqual([128, 128, 128]); // image is 100×50 at y 25..75: padding above
    expect(px(p, 10, 50)[0]).toBeGreaterThan(245);
    expect(px(p, 50, 60)[2]).toBeGreaterThan(245);
    await expect(decodeImage(png, 'x', { fit: 'bogus' as never })).rejects.toThrow(RangeError);
  });

  it('applies EXIF orientation before cropping', async () => {
    // Stored 300×200, top half red, bottom half blue; orientation 6 (display rotated 90° CW) → displayed 200×300
    // with the red half on the RIGHT.
    const w = 300, h = 200;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(y < 100 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
    const jpg = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpg).metadata()).orientation).toBe(6);
    const img = await decodeImage(jpg, 'exif6.jpg');
    expect(px(img, 212, 112)[0]).toBeGreaterThan(200); // right: red
    expect(px(img, 212, 112)[2]).toBeLessThan(60);
    expect(px(img, 10, 112)[2]).toBeGreaterThan(200); // left: blue
    expect(px(img, 10, 112)[0]).toBeLessThan(60);
  });

  it('defaultResize scales 256/224', () => {
    expect(defaultResize(224)).toBe(256);
    expect(defaultResize(299)).toBe(342);
  });

  it('rejects a resize smaller than the crop', async () => {
    const buf = await solid(50, 50, 1, 2, 3).png().toBuffer();
    await expect(decodeImage(buf, 'x', { inputSize: 224, resize: 100 })).rejects.toThrow(RangeError);
  });
});

describe('toNCHW', () => {
  it('writes planar channels with (v/255 − mean)/std', () => {
    const img: RawImage = { data: Uint8Array.from([255, 0, 51, 0, 255, 102]), width: 2, height: 1, channels: 3 };
    const out = new Float32Array(1 + 6);
    toNCHW(img, out, 1, [0.5, 0, 0], [0.5, 1, 2]);
    // R plane: (1−.5)/.5, (0−.5)/.5; G plane: 0, 1; B plane: .2/2, .4/2
    const want = [1, -1, 0, 1, 0.1, 0.2];
    want.forEach((v, i) => expect(out[1 + i]).toBeCloseTo(v, 6));
    expect(out[0]).toBe(0);
  });
});

describe.skipIf(!hasData)('real files (../shared/data)', () => {
  it('MTD greyscale JPEGs of different sizes', async () => {
    const seen = new Set<string>();
    for (const cls of ['MT_Blowhole', 'MT_Fray', 'MT_Free']) {
      const d = path.join(DATA, 'mtd', cls, 'Imgs');
      for (const f of readdirSync(d).filter((x) => x.endsWith('.jpg')).slice(0, 2)) {
        const p = path.join(d, f);
        const meta = await sharp(p).metadata();
        seen.add(`${meta.width}x${meta.height}`);
        const img = await loadImage(p);
        expect([img.width, img.height]).toEqual([224, 224]);
        expect(px(img, 100, 100)[0]).toBe(px(img, 100, 100)[1]); // grey replicated
      }
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('MVTec bottle PNG (900×900 RGB)', async () => {
    const p = path.join(DATA, 'mvtec-bottle/test/broken_large/000.png');
    const img = await loadImage(p, { inputSize: 224, resize: 256 });
    expect(img.data.length).toBe(224 * 224 * 3);
    expect(meanC(img, 0)).toBeGreaterThan(5);
  });
});

describe('bad inputs → ERR_IMAGE naming the file', () => {
  it('truncated PNG', async () => {
    const png = await solid(300, 300, 1, 2, 3).png({ compressionLevel: 0 }).toBuffer();
    const p = path.join(dir, 'trunc.png');
    writeFileSync(p, png.subarray(0, Math.floor(png.length / 2)));
    await expectImageError(loadImage(p), 'trunc.png');
  });
  it('truncated JPEG', async () => {
    const raw = Buffer.alloc(400 * 400 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
    const jpg = await sharp(raw, { raw: { width: 400, height: 400, channels: 3 } }).jpeg().toBuffer();
    const p = path.join(dir, 'trunc.jpg');
    writeFileSync(p, jpg.subarray(0, Math.floor(jpg.length / 2)));
    await expectImageError(loadImage(p), 'trunc.jpg');
  });
  it('zero-byte file', async () => {
    const p = path.join(dir, 'empty.png');
    writeFileSync(p, '');
    await expectImageError(loadImage(p), 'empty.png');
  });
  it('text file', async () => {
    const p = path.join(dir, 'notes.jpg');
    writeFileSync(p, 'this is not an image\n');
    await expectImageError(loadImage(p), 'notes.jpg');
  });
  it('missing file', async () => {
    await expectImageError(loadImage(path.join(dir, 'nope.png')), 'nope.png');
  });
  it('bytes input with its name', async () => {
    await expectImageError(loadImage({ name: 'upload-7', data: new Uint8Array([1, 2, 3, 4]) }), 'upload-7');
    const ok = await loadImage({ name: 'ok', data: new Uint8Array(await solid(10, 10, 1, 2, 3).png().toBuffer()) }, { inputSize: 8, resize: 8 });
    expect(ok.width).toBe(8);
  });
});
