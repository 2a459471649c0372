// Command-line arguments of the benchmark and maintenance scripts: `--help` / `-h` prints the script's leading
// comment (its usage) and exits 0; an unknown or malformed option prints the error and that usage on stderr and
// exits 2, before anything runs (no stack trace, no benchmark started by a typo).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The leading comment block of the script at `url` (after the shebang), without comment markers. */
export function usage(url) {
  const lines = readFileSync(fileURLToPath(url), 'utf8').split('\n');
  const out = [];
  for (const line of lines.slice(lines[0]?.startsWith('#!') ? 1 : 0)) {
    const t = line.trim();
    if (t.startsWith('//')) out.push(t.replace(/^\/\/ ?/, ''));
    else if (t.startsWith('/**') || t.startsWith('/*')) out.push(t.replace(/^\/\*\*? ?/, '').replace(/\*\/$/, '').trimEnd());
    else if (t.startsWith('*/')) break;
    else if (t.startsWith('*')) out.push(t.replace(/^\* ?/, '').replace(/\*\/$/, '').trimEnd());
    else break;
    if (t.endsWith('*/')) break;
  }
  return `${out.map((l) => l.replace(/^@file /, '')).join('\n').trim()}\n`;
}

/**
 * `parseArgs` of node:util over process.argv with the script's own options, plus `--help`.
 * @param {string} url the script's `import.meta.url`
 * @param {import('node:util').ParseArgsConfig['options']} options
 * @param {{allowPositionals?: boolean, argv?: string[]}} [config]
 */
export function scriptArgs(url, options = {}, config = {}) {
  const argv = config.argv ?? process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage(url));
    process.exit(0);
  }
  try {
    return parseArgs({ args: argv, options, allowPositionals: config.allowPositionals ?? false, strict: true });
  } catch (e) {
    process.stderr.write(`${e.message}\n\n${usage(url)}`);
    process.exit(2);
  }
}
