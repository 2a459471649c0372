/**
 * The loader's one-time warning when the automatic backend choice falls back from native to wasm (or js): run in a
 * child process on the compiled package (dist/) with an addon path that cannot load.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const entry = path.join(root, 'dist', 'src', 'index.js');

function child(env: Record<string, string>) {
  const code = `const ac = await import(${JSON.stringify(pathToFileURL(entry).href)});
    const a = ac.getBackend().name; const b = ac.getBackend().name; ac.pdist(new Float32Array([0, 0, 3, 4]), { d: 2 });
    console.log(a + ' ' + b);`;
  const e: Record<string, string | undefined> = { ...process.env, ANOMALY_CLUSTERING_BACKEND: undefined, ...env };
  if (e.ANOMALY_CLUSTERING_BACKEND === undefined) delete e.ANOMALY_CLUSTERING_BACKEND;
  return spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: e as NodeJS.ProcessEnv });
}

describe.runIf(existsSync(entry))('backend fallback warning', () => {
  it('warns once, naming why native did not load, when the automatic choice falls back to wasm', () => {
    const r = child({ ANOMALY_CLUSTERING_NATIVE_PATH: path.join(root, 'no-such-addon.node') });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('wasm wasm');
    const warnings = r.stderr.split('\n').filter((l) => l.includes('ANOMALY_CLUSTERING_FALLBACK'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/using the wasm backend \(slower\) because native: .*no-such-addon\.node/);
  });
  it('says nothing when native loads or the backend is chosen explicitly', () => {
    const native = child({});
    expect(native.stdout.trim()).toBe('native native');
    expect(native.stderr).not.toContain('ANOMALY_CLUSTERING_FALLBACK');
    const r = child({ ANOMALY_CLUSTERING_NATIVE_PATH: path.join(root, 'no-such-addon.node'), ANOMALY_CLUSTERING_BACKEND: 'wasm' });
    expect(r.stdout.trim()).toBe('wasm wasm');
    expect(r.stderr).not.toContain('ANOMALY_CLUSTERING_FALLBACK');
  });
});
