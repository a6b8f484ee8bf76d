/**
 * The progress stage: a cli-progress bar (rate, ETA, sent/failed) when stderr is a terminal; plain
 * lines every few seconds otherwise (CI logs, pipes), which stay readable when captured. Progress
 * goes to stderr so stdout carries only the results.
 */
import cliProgress from 'cli-progress';

export interface Counts {
  /** Rows finished in this session (any outcome), plus rows skipped as already done. */
  readonly processed: number;
  readonly sent: number;
  readonly failed: number;
  /** Done in an earlier session (resume) — they move the bar but not the rate. */
  readonly skipped: number;
}

export interface Progress {
  update(counts: Counts): void;
  stop(counts: Counts): void;
}

export interface ProgressOptions {
  /** The row count when known (an estimate is fine); without it there is no bar length or ETA. */
  readonly total?: number;
  readonly stream?: NodeJS.WriteStream;
  /** Force the plain mode (or the bar); default: the bar when `stream` is a TTY. */
  readonly tty?: boolean;
  /** Plain mode: one line per interval (default 5 s). */
  readonly intervalMs?: number;
  /** 'send' shows sent/failed; 'dry' shows rendered/invalid. */
  readonly mode: 'send' | 'dry';
  /** Nothing at all (`--quiet`, tests). */
  readonly silent?: boolean;
}

export function createProgress(options: ProgressOptions): Progress {
  if (options.silent) return { update() {}, stop() {} };
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  return tty ? barProgress(options, stream) : lineProgress(options, stream);
}

function labels(mode: 'send' | 'dry'): readonly [string, string] {
  return mode === 'send' ? ['sent', 'failed'] : ['rendered', 'invalid'];
}

function barProgress(options: ProgressOptions, stream: NodeJS.WriteStream): Progress {
  const [ok, bad] = labels(options.mode);
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `{bar} {percentage}% | {value}/{total} rows | {rate} msg/s | ETA {eta_formatted} | ${ok} {sent} | ${bad} {failed}`,
      hideCursor: true,
      fps: 5,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let total = options.total ?? 0;
  bar.start(total, 0, { rate: '0', sent: 0, failed: 0 });
  const update = (c: Counts): void => {
    if (c.processed > total) {
      total = c.processed; // the estimate was low (or absent)
      bar.setTotal(total);
    }
    bar.update(c.processed, { rate: rate(c, started).toFixed(0), sent: c.sent, failed: c.failed });
  };
  return {
    update,
    stop(c) {
      update(c);
      if (total !== c.processed) bar.setTotal(c.processed);
      bar.stop();
    },
  };
}

function lineProgress(options: ProgressOptions, stream: NodeJS.WriteStream): Progress {
  const [ok, bad] = labels(options.mode);
  const interval = options.intervalMs ?? 5000;
  const started = Date.now();
  let last = started;
  const line = (c: Counts): string => {
    const r = rate(c, started);
    const total = options.total !== undefined && options.total >= c.processed ? options.total : undefined;
    const pct = total ? ` (${Math.floor((c.processed / total) * 100)}%)` : '';
    const eta = total && r > 0 ? ` · ETA ${formatDuration(((total - c.processed) / r) * 1000)}` : '';
    return `batch: ${c.processed}${total ? `/${total}` : ''} rows${pct} · ${r.toFixed(0)} msg/s · ${ok} ${c.sent} · ${bad} ${c.failed}${eta}\n`;
  };
  return {
    update(c) {
      const now = Date.now();
      if (now - last < interval) return;
      last = now;
      stream.write(line(c));
    },
    stop(c) {
      stream.write(line(c));
    },
  };
}

function rate(c: Counts, started: number): number {
  const seconds = (Date.now() - started) / 1000;
  return seconds > 0 ? (c.processed - c.skipped) / seconds : 0;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
