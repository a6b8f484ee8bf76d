/**
 * `mailstage batch --status RUN --queue URL`: a queued run's progress from its state in Redis, on
 * any host, and (`--report FILE`) the same JSON report the in-process runner writes from its
 * journal — built from the per-row outcomes, read in row order, a chunk at a time.
 */
import { Queue } from 'bullmq';
import { BatchInputError } from '../runner/errors.js';
import { createReportSink, type ReportRow, type Summary } from '../runner/report.js';
import { connectionOptions, parseQueueUrl, QUEUE_NAME } from './connection.js';
import { RUN_ID } from './job.js';
import { openRunStore, type Doubt, type OutcomeCounts, type OutcomeRecord, type RunMeta, type RunStore } from './state.js';

export interface RunStatus {
  readonly meta: RunMeta;
  readonly counts: OutcomeCounts;
  /** Rows with an outcome. */
  readonly processed: number;
  /** Rows being sent right now. */
  readonly inFlight: number;
  /** Rows whose delivery was once unknown and that went out again (possible duplicates). */
  readonly doubts: number;
  readonly completed: boolean;
  /** The whole queue's jobs (every run), for context. */
  readonly queue: Readonly<Record<string, number>>;
}

export interface StatusOptions {
  readonly queue: string;
  readonly run: string;
  readonly report?: string;
  readonly log?: (line: string) => void;
}

export interface StatusResult {
  readonly status: RunStatus;
  readonly summary?: Summary;
  /** 0 no problems so far, 1 some rows failed, were refused or are unknown, 2 invalid rows. */
  readonly exitCode: 0 | 1 | 2;
  readonly text: string;
}

export async function runStatus(options: StatusOptions): Promise<StatusResult> {
  const target = parseQueueUrl(options.queue);
  if (!RUN_ID.test(options.run)) throw new BatchInputError(`--status expects a run id, got ${JSON.stringify(options.run)}`);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const store = openRunStore(target);
  const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(target) });
  queue.on('error', () => {});
  try {
    const meta = await store.getMeta(options.run).catch((error: unknown) => {
      throw new BatchInputError(`cannot reach Redis at ${target.display}: ${(error as Error).message}`);
    });
    if (meta === undefined) throw new BatchInputError(`no run ${options.run} on ${target.display}`);
    const [counts, inFlight, doubts, jobs] = await Promise.all([
      store.counts(meta.run), store.inFlight(meta.run), store.doubtCount(meta.run),
      queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
    ]);
    const processed = counts.sent + counts.refused + counts.failed + counts.invalid + counts.unknown;
    const completed = meta.status === 'enqueued' && processed >= meta.rows;
    const status: RunStatus = { meta, counts, processed, inFlight, doubts, completed, queue: jobs };
    const summary = options.report === undefined ? undefined : await writeReport(store, status, options.report);
    const text = formatStatus(status, options.report);
    log(text);
    const problems = counts.failed + counts.refused + counts.unknown + counts.partial;
    return { status, ...(summary ? { summary } : {}), exitCode: counts.invalid > 0 ? 2 : problems > 0 ? 1 : 0, text };
  } finally {
    await queue.close().catch(() => {});
    await store.close();
  }
}

export function formatStatus(s: RunStatus, report?: string): string {
  const c = s.counts;
  const pending = Math.max(0, s.meta.rows - s.processed);
  const pct = s.meta.rows > 0 ? Math.floor((s.processed / s.meta.rows) * 100) : 0;
  const state = s.completed ? 'completed' : s.meta.status === 'enqueueing' ? 'enqueueing' : 'in progress';
  const rows: [string, number][] = [
    ['sent', c.sent], ['  with refused recipients', c.partial], ['refused', c.refused], ['failed', c.failed],
    ['unknown', c.unknown], ['invalid', c.invalid], ['pending', pending], ['  sending now', s.inFlight],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const num = Math.max(String(s.meta.rows).length, 4);
  const lines = [
    `Run ${s.meta.run}: ${state} — ${s.processed}/${s.meta.rows} rows (${pct}%)`,
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${String(v).padStart(num)}`),
    `  ${'total'.padEnd(width)}  ${String(s.meta.rows).padStart(num)}`,
  ];
  if (s.doubts > 0) {
    lines.push(`  ${s.doubts} row(s) went out again after an unknown delivery (same Message-ID): possible duplicates, listed in the report`);
  }
  const elapsed = s.meta.lastAt && s.meta.createdAt ? Date.parse(s.meta.lastAt) - Date.parse(s.meta.createdAt) : 0;
  if (elapsed > 0 && s.processed > 0) lines.push(`  time ${(elapsed / 1000).toFixed(1)} s from enqueue to the last outcome · ${Math.round(s.processed / (elapsed / 1000))} rows/s`);
  const q = s.queue;
  lines.push(`  queue (all runs): waiting ${(q.waiting ?? 0) + (q.prioritized ?? 0)}, active ${q.active ?? 0}, delayed ${q.delayed ?? 0}, failed ${q.failed ?? 0}`);
  lines.push(`  source ${s.meta.source}`);
  if (report) lines.push(`  report ${report}`);
  return lines.join('\n');
}

const CHUNK = 1000;

/** The in-process runner's report shape; rows without an outcome yet are left out. */
async function writeReport(store: RunStore, s: RunStatus, file: string): Promise<Summary> {
  const run = s.meta.run;
  const sink = createReportSink(file, { run, mode: 'send', source: s.meta.source });
  for (let first = 1; first <= s.meta.rows; first += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, s.meta.rows - first + 1) }, (_, i) => first + i);
    const [outcomes, doubts] = await Promise.all([store.outcomes(run, rows), store.doubts(run, rows)]);
    for (let i = 0; i < rows.length; i++) {
      const r = outcomes[i];
      if (r !== undefined) await sink.add(toReportRow(r, doubts[i]));
    }
  }
  const totalMs = s.meta.lastAt ? Math.max(0, Date.parse(s.meta.lastAt) - Date.parse(s.meta.createdAt)) : 0;
  const durations = {
    totalMs,
    ...(sink.messageMs.count > 0
      ? { message: { avgMs: Math.round((sink.messageMs.sum / sink.messageMs.count) * 10) / 10, maxMs: sink.messageMs.max } }
      : {}),
  };
  // The report's status is the runner's: a run not finished yet reads as interrupted.
  const status: Summary['status'] = s.completed ? 'completed' : 'interrupted';
  await sink.finish({ run, mode: 'send', status, source: s.meta.source, durations });
  return { run, mode: 'send', status, source: s.meta.source, totals: sink.totals, durations, problems: sink.problems };
}

/** The journal's record → the report row; a row that went out again after an unknown delivery
 *  carries `resent` (how often, and why): it may have arrived more than once. */
function toReportRow(r: OutcomeRecord, doubt: Doubt | undefined): ReportRow & { readonly resent?: { readonly count: number; readonly reason: string } } {
  const resent = doubt ? { resent: { count: doubt.count, reason: doubt.reason } } : {};
  switch (r.e) {
    case 'sent':
      return { row: r.row, outcome: 'sent', messageId: r.id, to: r.to, reply: r.reply, ...(r.rejected ? { rejected: r.rejected } : {}), ms: r.ms, ...resent };
    case 'refused':
      return { row: r.row, outcome: 'refused', messageId: r.id, to: r.to, reason: r.reason, ms: r.ms, ...resent };
    case 'failed':
      return { row: r.row, outcome: 'failed', ...(r.id ? { messageId: r.id } : {}), ...(r.to ? { to: r.to } : {}), reason: r.reason, ...(r.ms === undefined ? {} : { ms: r.ms }), ...resent };
    case 'invalid':
      return { row: r.row, outcome: 'invalid', reason: r.reason };
    case 'unknown':
      return { row: r.row, outcome: 'unknown', messageId: r.id, reason: r.reason, ...resent };
  }
}

