/**
 * @file Progress display for the CLI on stderr: one bar per stage with rate and ETA on a TTY (redrawn in place,
 * at most ~12 times a second), plain log lines otherwise (start, every 25 %, end), nothing when quiet.
 * @module cli/progress
 */
import type { Progress } from '../pipeline/types.js';

/** Where progress goes. */
export interface ProgressSink {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** A progress display. */
export interface ProgressDisplay {
  /** Feed an event (pass as `onProgress`). */
  update(p: Progress): void;
  /** Ends the current line (call once at the end, or before printing anything else). */
  done(): void;
}

/** Terminal width, or `fallback` when unknown or reported as 0 (a pseudo-terminal without a size). */
export function columnsOf(sink: { columns?: number }, fallback: number): number {
  const c = sink.columns;
  return typeof c === 'number' && Number.isFinite(c) && c > 0 ? c : fallback;
}

/** `1m05s`, `12s`, `850ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

interface Row {
  key: string;
  p: Progress;
  start: number;
  elapsed: number;
  quarter: number;
  finished: boolean;
}

/** Rows are keyed by stage, with the clustered and the normal images' stages apart. */
const keyOf = (p: Progress) => `${p.stage}${p.message?.startsWith('normal') ? ' (normals)' : ''}`;

/**
 * Creates a progress display. Stages can interleave (decoding of batch i+1 runs while batch i is inferred): on a
 * TTY each stage keeps its own line, redrawn in place; otherwise each stage logs at 0/25/50/75/100 %.
 * @param sink usually `process.stderr`
 * @param options `quiet` shows nothing; `tty` overrides `sink.isTTY`; `now` injects a clock (tests)
 */
export function createProgress(sink: ProgressSink, options: { quiet?: boolean; tty?: boolean; now?: () => number } = {}): ProgressDisplay {
  const { quiet = false, now = () => performance.now() } = options;
  const tty = options.tty ?? Boolean(sink.isTTY);
  const rows: Row[] = [];
  let drawn = 0; // lines of the live block on screen
  let lastDraw = -Infinity;

  const line = (r: Row): string => {
    const { p } = r;
    const label = (p.stage === 'model' ? 'model download' : r.key).padEnd(tty ? 19 : 0);
    // the model download counts bytes: show megabytes
    const count = (x: number) => (p.stage === 'model' ? `${(x / 1e6).toFixed(0)}${x === p.total ? ' MB' : ''}` : String(x));
    const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
    const eta = p.done > 0 && p.done < p.total && r.elapsed > 500 ? formatDuration((r.elapsed / p.done) * (p.total - p.done)) : '';
    const msg = p.message && !p.message.startsWith('normal') ? ` · ${p.message}` : '';
    if (!tty) return `${label}: ${count(p.done)}/${count(p.total)} (${Math.round(frac * 100)}%)${r.finished ? ` in ${formatDuration(r.elapsed)}` : eta ? `, ETA ${eta}` : ''}${msg}`;
    const width = Math.max(8, Math.min(24, columnsOf(sink, 80) - 58));
    const filled = Math.round(frac * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const tail = r.finished ? `done in ${formatDuration(r.elapsed)}` : eta ? `ETA ${eta}` : '';
    const text = `${label} ${bar} ${String(Math.round(frac * 100)).padStart(3)}%  ${count(p.done)}/${count(p.total)}  ${tail}${msg}`;
    const cols = columnsOf(sink, 100);
    return text.length > cols - 1 ? text.slice(0, cols - 1) : text;
  };

  const draw = () => {
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const r of rows) out += `\r\x1b[2K${line(r)}\n`;
    sink.write(out);
    drawn = rows.length;
  };

  return {
    update(p) {
      if (quiet) return;
      const t = now();
      const key = keyOf(p);
      let r = rows.find((x) => x.key === key && !x.finished) ?? rows.find((x) => x.key === key);
      const fresh = !r;
      if (!r || (r.finished && p.done < r.p.done)) {
        r = { key, p, start: t, elapsed: 0, quarter: -1, finished: false };
        rows.push(r);
      }
      r.p = p;
      r.elapsed = t - r.start;
      const finishedNow = !r.finished && p.done >= p.total;
      if (finishedNow) r.finished = true;
      if (tty) {
        if (!fresh && !finishedNow && t - lastDraw < 80) return;
        lastDraw = t;
        draw();
      } else {
        const q = p.total > 0 ? Math.min(4, Math.floor((4 * p.done) / p.total)) : 4;
        if (q === r.quarter && !finishedNow) return;
        if (q === 4 && r.quarter === 4) return;
        r.quarter = q;
        sink.write(`${line(r)}\n`);
      }
    },
    done() {
      if (quiet || !tty || rows.length === 0) return;
      draw();
      rows.length = 0;
      drawn = 0;
    },
  };
}
