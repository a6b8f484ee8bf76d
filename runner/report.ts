/**
 * The report stage: totals, durations, the first few failures as a table for people, and a JSON
 * report (`--report FILE`) with one entry per row. Rows are streamed into the file as they are
 * produced — never collected — so a million-row report costs the disk, not the heap.
 *
 * A send run's report is built from its journal (every session of the run, not just the last):
 * pass 1 finds each row's last outcome record, pass 2 writes those records in journal order.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { readJournal, type RowRecord } from './journal.js';
import { formatDuration } from './progress.js';

export type ReportOutcome = 'sent' | 'refused' | 'failed' | 'invalid' | 'unknown' | 'valid';

export interface ReportRow {
  readonly row: number;
  readonly outcome: ReportOutcome;
  readonly messageId?: string;
  readonly to?: readonly string[];
  readonly reply?: string;
  readonly rejected?: readonly string[];
  readonly reason?: string;
  readonly ms?: number;
}

export interface Totals {
  rows: number;
  sent: number;
  /** Sent rows where some (not all) recipients were refused. */
  partial: number;
  refused: number;
  failed: number;
  invalid: number;
  unknown: number;
  valid: number;
}

export interface Durations {
  readonly totalMs: number;
  readonly message?: { readonly avgMs: number; readonly maxMs: number };
}

export interface Summary {
  readonly run: string;
  readonly mode: 'send' | 'dry-run';
  readonly status: 'completed' | 'interrupted';
  readonly source: string;
  readonly totals: Totals;
  readonly durations: Durations;
  /** The first failures, for the table. */
  readonly problems: readonly ReportRow[];
}

export function emptyTotals(): Totals {
  return { rows: 0, sent: 0, partial: 0, refused: 0, failed: 0, invalid: 0, unknown: 0, valid: 0 };
}

const MAX_PROBLEMS = 10;

/** Collects totals and the first problems; optionally streams every row into a JSON file. */
export interface ReportSink {
  add(row: ReportRow): Promise<void>;
  readonly totals: Totals;
  readonly problems: readonly ReportRow[];
  readonly messageMs: { sum: number; count: number; max: number };
  /** Writes the closing fields and closes the file. */
  finish(summary: Omit<Summary, 'totals' | 'problems'>): Promise<void>;
}

export function createReportSink(file: string | undefined, head: { readonly run: string; readonly mode: string; readonly source: string }): ReportSink {
  const totals = emptyTotals();
  const problems: ReportRow[] = [];
  const messageMs = { sum: 0, count: 0, max: 0 };
  let out: WriteStream | undefined;
  let first = true;
  const write = async (text: string): Promise<void> => {
    if (out && !out.write(text)) await once(out, 'drain');
  };
  if (file !== undefined) {
    out = createWriteStream(file);
    out.write(`{"run":${JSON.stringify(head.run)},"mode":${JSON.stringify(head.mode)},"source":${JSON.stringify(head.source)},\n"rows":[\n`);
  }
  return {
    totals,
    problems,
    messageMs,
    async add(row) {
      totals.rows++;
      totals[row.outcome]++;
      if (row.outcome === 'sent' && row.rejected && row.rejected.length > 0) totals.partial++;
      if (row.ms !== undefined && (row.outcome === 'sent' || row.outcome === 'refused')) {
        messageMs.sum += row.ms;
        messageMs.count++;
        messageMs.max = Math.max(messageMs.max, row.ms);
      }
      const problem = row.outcome !== 'sent' && row.outcome !== 'valid' || (row.rejected?.length ?? 0) > 0;
      if (problem && problems.length < MAX_PROBLEMS) problems.push(row);
      await write(`${first ? '' : ',\n'}${JSON.stringify(row)}`);
      first = false;
    },
    async finish(summary) {
      if (!out) return;
      const tail = { status: summary.status, totals, durations: summary.durations, generatedAt: new Date().toISOString() };
      const text = JSON.stringify(tail);
      out.end(`\n],\n${text.slice(1)}\n`);
      await once(out, 'finish');
    },
  };
}

/** Growable per-row index of a journal record's sequence number (4 bytes a row). */
function lastRecordIndex(): { get(row: number): number; set(row: number, seq: number): void } {
  let seqs = new Uint32Array(1024);
  return {
    get: (row) => seqs[row] ?? 0,
    set(row, seq) {
      if (row >= seqs.length) {
        const bigger = new Uint32Array(Math.max(row + 1, seqs.length * 2));
        bigger.set(seqs);
        seqs = bigger;
      }
      seqs[row] = seq;
    },
  };
}

function isOutcome(r: { e: string }): r is RowRecord {
  return r.e !== 'queued' && r.e !== 'run' && r.e !== 'session' && r.e !== 'end';
}

/** Totals and (with `file`) the JSON report of a send run, from its journal. */
export async function summarizeJournal(
  journal: string,
  options: { readonly file?: string; readonly totalMs: number },
): Promise<Summary> {
  // Pass 1: the last outcome record of each row (sequence numbers start at 1; 0 = none).
  const last = lastRecordIndex();
  let seq = 0;
  let run = '';
  let source = '';
  let status: Summary['status'] = 'interrupted';
  for await (const r of readJournal(journal)) {
    seq++;
    if (r.e === 'run') {
      run = r.run;
      source = r.source;
    } else if (r.e === 'end') status = r.status;
    else if (r.e === 'session') status = 'interrupted';
    else if (isOutcome(r)) last.set(r.row, seq);
  }
  // Pass 2: those records, in journal order.
  const sink = createReportSink(options.file, { run, mode: 'send', source });
  seq = 0;
  for await (const r of readJournal(journal)) {
    seq++;
    if (!isOutcome(r) || last.get(r.row) !== seq) continue;
    await sink.add(toReportRow(r));
  }
  const durations: Durations = {
    totalMs: options.totalMs,
    ...(sink.messageMs.count > 0
      ? { message: { avgMs: Math.round((sink.messageMs.sum / sink.messageMs.count) * 10) / 10, maxMs: sink.messageMs.max } }
      : {}),
  };
  await sink.finish({ run, mode: 'send', status, source, durations });
  return { run, mode: 'send', status, source, totals: sink.totals, durations, problems: sink.problems };
}

function toReportRow(r: RowRecord): ReportRow {
  switch (r.e) {
    case 'sent':
      return { row: r.row, outcome: 'sent', messageId: r.id, to: r.to, reply: r.reply, ...(r.rejected ? { rejected: r.rejected } : {}), ms: r.ms };
    case 'refused':
      return { row: r.row, outcome: 'refused', messageId: r.id, to: r.to, reason: r.reason, ms: r.ms };
    case 'failed':
      return { row: r.row, outcome: 'failed', ...(r.id ? { messageId: r.id } : {}), ...(r.to ? { to: r.to } : {}), reason: r.reason, ...(r.ms === undefined ? {} : { ms: r.ms }) };
    case 'invalid':
      return { row: r.row, outcome: 'invalid', reason: r.reason };
    case 'unknown':
      return { row: r.row, outcome: 'unknown', messageId: r.id, reason: r.reason };
    case 'queued':
      throw new Error('unreachable');
  }
}

/** The closing table for people. */
export function formatSummary(s: Summary, extra: { readonly journal?: string; readonly report?: string; readonly previews?: string; readonly previewCount?: number } = {}): string {
  const t = s.totals;
  const rows: [string, number][] = s.mode === 'send'
    ? [['sent', t.sent], ['  with refused recipients', t.partial], ['refused', t.refused], ['failed', t.failed], ['unknown', t.unknown], ['invalid', t.invalid]]
    : [['valid', t.valid], ['invalid', t.invalid]];
  const width = Math.max(...rows.map(([k]) => k.length), 5);
  const num = Math.max(String(t.rows).length, 4);
  const lines = [
    `${s.mode === 'send' ? 'Run' : 'Dry run'} ${s.run}: ${s.status}`,
    `  ${'outcome'.padEnd(width)}  ${'rows'.padStart(num)}`,
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${String(v).padStart(num)}`),
    `  ${'total'.padEnd(width)}  ${String(t.rows).padStart(num)}`,
  ];
  const secs = s.durations.totalMs / 1000;
  const counted = s.mode === 'send' ? t.sent + t.refused + t.failed : t.rows;
  const perMessage = s.durations.message ? ` · ${s.durations.message.avgMs} ms/message avg, ${s.durations.message.maxMs} ms max` : '';
  lines.push(`  time ${formatDuration(s.durations.totalMs)}${secs > 0 && counted > 0 ? ` · ${Math.round(counted / secs)} ${s.mode === 'send' ? 'msg' : 'rows'}/s` : ''}${perMessage}`);
  if (extra.journal) lines.push(`  journal ${extra.journal}`);
  if (extra.report) lines.push(`  report  ${extra.report}`);
  if (extra.previews) lines.push(`  previews of the first ${extra.previewCount ?? 0} rows in ${extra.previews}`);
  if (s.problems.length > 0) {
    lines.push(`Problems (first ${s.problems.length}):`);
    for (const p of s.problems) {
      const what = p.reason ?? (p.rejected ? `refused recipients: ${p.rejected.join(', ')}` : '');
      lines.push(`  row ${p.row}  ${p.outcome}  ${what}`);
    }
  }
  return lines.join('\n');
}
