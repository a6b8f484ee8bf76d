/**
 * The batch: source → render → (dry run: validate, preview | send: journal, pace, send, journal)
 * → report. Rows flow through one at a time with at most `concurrency` in flight; nothing per row
 * is kept once its outcome is journaled, so memory stays flat however long the source is.
 *
 * Stopping (the signal: Ctrl-C, SIGTERM) ends reading; the rows in flight finish and are journaled,
 * then the journal gets its `end interrupted` line and `--resume` picks the run up from there.
 */
import path from 'node:path';
import type { ResolvedConfig } from '../core/config/index.js';
import { SmtpError, SmtpInvalidInputError, SmtpRecipientsRefusedError, SmtpResponseError } from '../core/errors.js';
import { BatchInputError, oneLine } from './errors.js';
import {
  findInterruptedRun, journalPath, loadRunState, newRunId, openJournal, type JournalWriter, type RowBits,
} from './journal.js';
import { createPace } from './pace.js';
import { preparePreviewDir, writePreview } from './preview.js';
import { createProgress, type Counts, type ProgressOptions } from './progress.js';
import { createRenderer, messageIdFor, RowError, type RenderedRow } from './render.js';
import { createReportSink, formatSummary, summarizeJournal, type Summary } from './report.js';
import type { Sender } from './sender.js';
import { checkSource, estimateRows, readRows, type Row } from './source.js';

export interface BatchOptions {
  readonly config: ResolvedConfig;
  /** Relative paths in `config.batch` are taken from here (the config file's folder). */
  readonly baseDir: string;
  /** Really send (else a dry run). */
  readonly send: boolean;
  /** Required with `send`. */
  readonly sender?: Sender;
  /** Only the first N rows of the source. */
  readonly limit?: number;
  readonly resume?: boolean;
  readonly skipUnknown?: boolean;
  /** JSON report file (relative to the current directory). */
  readonly report?: string;
  /** Stops the run cleanly when aborted. */
  readonly signal?: AbortSignal;
  readonly progress?: Partial<Omit<ProgressOptions, 'mode' | 'total'>>;
  /** Where the summary and notices go (default stdout). */
  readonly log?: (line: string) => void;
  /** A full garbage collection, run every `GC_EVERY` rows when given (the CLI passes V8's). V8
   *  lets short-lived per-row garbage that survived a scavenge pile up in the old generation — about
   *  100 MB on a long run, under CPU contention more — before it runs a full GC. The live heap stays
   *  near 17 MB; this keeps RSS near it too. */
  readonly collectGarbage?: () => void;
}

const GC_EVERY = 50_000;

export interface BatchResult {
  readonly summary: Summary;
  /** 0 all good, 1 delivery failures, 2 bad input rows, 130 interrupted. */
  readonly exitCode: 0 | 1 | 2 | 130;
  readonly journal?: string;
  readonly previewDir?: string;
  readonly report?: string;
  readonly text: string;
}

export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const batch = options.config.batch;
  if (batch === undefined) throw new BatchInputError('the config has no `batch` section (source, templates, from, …)');
  if (options.send && options.sender === undefined) throw new Error('runBatch: `send` needs a sender');
  if (options.resume && !options.send) throw new BatchInputError('--resume continues a sending run: add --send');
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new BatchInputError(`--limit must be a positive integer, got ${options.limit}`);
  }
  const source = { ...batch.source, path: path.resolve(options.baseDir, batch.source.path) };
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  await checkSource(source);
  return options.send ? sendRun(options, source, log) : dryRun(options, source, log);
}

type Source = Parameters<typeof readRows>[0];

// ---- dry run -------------------------------------------------------------------------------------

async function dryRun(options: BatchOptions, source: Source, log: (line: string) => void): Promise<BatchResult> {
  const batch = options.config.batch!;
  const started = performance.now();
  const runId = newRunId();
  const render = createRenderer({ batch, defaults: options.config.message, baseDir: options.baseDir, runId });
  const previewDir = path.resolve(options.baseDir, batch.previewDir);
  const previewCount = Math.min(batch.previewCount, options.limit ?? Infinity);
  if (previewCount > 0) await preparePreviewDir(previewDir);
  const sink = createReportSink(options.report, { run: runId, mode: 'dry-run', source: source.path });
  const progress = createProgress({ ...options.progress, mode: 'dry', total: cap(await estimateRows(source), options.limit) });
  const counts = { processed: 0, sent: 0, failed: 0, skipped: 0 };
  let previews = 0;
  let interrupted = false;
  try {
    for await (const row of readRows(source)) {
      if (options.limit !== undefined && row.index > options.limit) break;
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      let rendered: RenderedRow;
      try {
        rendered = render(row);
      } catch (error) {
        if (!(error instanceof RowError)) throw error;
        counts.processed++;
        counts.failed++;
        await sink.add({ row: row.index, outcome: 'invalid', reason: error.reason });
        progress.update(counts);
        continue;
      }
      if (previews < previewCount) {
        await writePreview(previewDir, rendered);
        previews++;
      }
      counts.processed++;
      counts.sent++;
      await sink.add({ row: row.index, outcome: 'valid', messageId: rendered.messageId, to: rendered.recipients });
      if (row.index % GC_EVERY === 0) options.collectGarbage?.();
      progress.update(counts);
    }
  } finally {
    progress.stop(counts);
  }
  const durations = { totalMs: Math.round(performance.now() - started) };
  const status = interrupted ? 'interrupted' : 'completed';
  await sink.finish({ run: runId, mode: 'dry-run', status, source: source.path, durations });
  const summary: Summary = { run: runId, mode: 'dry-run', status, source: source.path, totals: sink.totals, durations, problems: sink.problems };
  const text = [
    formatSummary(summary, { report: options.report, ...(previews > 0 ? { previews: previewDir, previewCount: previews } : {}) }),
    'Nothing was sent (dry run). Add --send to send.',
  ].join('\n');
  log(text);
  return {
    summary,
    exitCode: interrupted ? 130 : summary.totals.invalid > 0 ? 2 : 0,
    ...(previews > 0 ? { previewDir } : {}),
    ...(options.report ? { report: options.report } : {}),
    text,
  };
}

function cap(estimate: number | undefined, limit: number | undefined): number | undefined {
  if (limit === undefined) return estimate;
  return estimate === undefined ? limit : Math.min(estimate, limit);
}

// ---- send run ------------------------------------------------------------------------------------

interface RunSetup {
  readonly runId: string;
  readonly journal: JournalWriter;
  readonly done?: RowBits;
  readonly domain?: string;
  readonly limit?: number;
  readonly resumed: boolean;
}

async function startRun(options: BatchOptions, source: Source, log: (line: string) => void, domainFor: () => string): Promise<RunSetup> {
  const batch = options.config.batch!;
  const journalDir = path.resolve(options.baseDir, batch.journalDir);
  if (!options.resume) {
    const runId = newRunId();
    const journal = await openJournal(journalPath(journalDir, runId));
    const limit = options.limit;
    await journal.append({ e: 'run', run: runId, at: new Date().toISOString(), source: source.path, domain: domainFor(), ...(limit ? { limit } : {}) });
    await journal.append({ e: 'session', at: new Date().toISOString(), resume: false });
    return { runId, journal, limit, resumed: false };
  }
  const file = await findInterruptedRun(journalDir);
  if (file === undefined) throw new BatchInputError(`no interrupted run to resume in ${journalDir}`);
  const state = await loadRunState(file);
  if (state.header.source !== source.path) {
    throw new BatchInputError(`run ${state.header.run} read ${state.header.source}, but the config now names ${source.path}; resume with the same source`);
  }
  const journal = await openJournal(file);
  await journal.append({ e: 'session', at: new Date().toISOString(), resume: true });
  // Rows queued without an outcome were in flight at the stop: the server may or may not have them.
  let unknown = 0;
  for (const row of state.inFlight.members()) {
    unknown++;
    // Same derivation as the renderer: run, row and domain, not the row's data.
    const id = messageIdFor(state.header.run, row, state.header.domain);
    const resend = !options.skipUnknown;
    await journal.append({ e: 'unknown', row, id, reason: 'in flight when the run stopped', resend });
    if (!resend) state.done.set(row);
  }
  log(
    `Resuming run ${state.header.run} (${file})` +
      (unknown > 0 ? `: ${unknown} row(s) were in flight at the stop; ${options.skipUnknown ? 'left as unknown (--skip-unknown)' : 'resending them with the same Message-ID'}` : ''),
  );
  const limit = options.limit ?? state.header.limit;
  return { runId: state.header.run, journal, done: state.done, domain: state.header.domain, ...(limit ? { limit } : {}), resumed: true };
}


async function sendRun(options: BatchOptions, source: Source, log: (line: string) => void): Promise<BatchResult> {
  const batch = options.config.batch!;
  const sender = options.sender!;
  const started = performance.now();
  // Templates and source are checked before the journal is created: a typo leaves no empty run.
  const probeRender = createRenderer({ batch, defaults: options.config.message, baseDir: options.baseDir, runId: 'check' });
  if (sender.verify) {
    // Fails fast, with one line, when the server cannot be reached or refuses the login —
    // before a run is journaled and before any row is marked failed.
    try {
      await sender.verify();
    } catch (error) {
      throw new BatchInputError(`cannot use the server: ${oneLine(error)}`, { cause: error });
    }
  }
  const setup = await startRun(options, source, log, () => probeRender.domain);
  const { runId, journal } = setup;
  const render = createRenderer({
    batch, defaults: options.config.message, baseDir: options.baseDir, runId,
    ...(setup.domain ? { messageIdDomain: setup.domain } : {}),
  });
  const limit = setup.limit;
  const pace = createPace(batch.rateLimit);
  const concurrency = batch.concurrency;
  const retry = batch.retry;
  const progress = createProgress({ ...options.progress, mode: 'send', total: cap(await estimateRows(source), limit) });
  const counts = { processed: 0, sent: 0, failed: 0, skipped: 0 };
  const inFlight = new Set<Promise<void>>();
  let stop: 'signal' | 'unreachable' | 'breaker' | 'input' | undefined;
  let fatal: Error | undefined;
  let delivered = 0;
  let consecutiveTransient = 0;
  const breakerAt = Math.max(20, concurrency * 3);
  const onAbort = (): void => {
    stop ??= 'signal';
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  const finishRow = (c: Counts): void => progress.update(c);

  const sendOne = async (r: RenderedRow): Promise<void> => {
    const row = r.row.index;
    await journal.append({ e: 'queued', row, id: r.messageId });
    const t0 = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const info = await sender.send(r.message);
        const ms = Math.round(performance.now() - t0);
        await journal.append({
          e: 'sent', row, id: r.messageId, to: r.recipients, reply: info.response, ms,
          ...(info.rejected.length > 0 ? { rejected: info.rejected } : {}),
        });
        delivered++;
        consecutiveTransient = 0;
        counts.sent++;
        return;
      } catch (error) {
        const ms = Math.round(performance.now() - t0);
        if (sender.isDeliveryUnknown(error)) {
          // Not retried here: a blind resend could deliver twice. A resume resends it with its id.
          await journal.append({ e: 'unknown', row, id: r.messageId, reason: oneLine(error), resend: true });
          counts.failed++;
          return;
        }
        const permanent = error instanceof SmtpError ? error.permanent : false;
        if (!permanent && retry && attempt < retry.attempts && stop === undefined) {
          await sleep(Math.min(retry.maxDelay, retry.minDelay * retry.factor ** attempt));
          continue;
        }
        if (error instanceof SmtpInvalidInputError) {
          // The message itself is unsendable (the builder refused it): bad input, not delivery.
          await journal.append({ e: 'invalid', row, reason: oneLine(error) });
        } else if (error instanceof SmtpRecipientsRefusedError) {
          await journal.append({ e: 'refused', row, id: r.messageId, to: r.recipients, reason: oneLine(error), ms });
        } else {
          await journal.append({ e: 'failed', row, id: r.messageId, to: r.recipients, reason: oneLine(error), permanent, ms });
        }
        counts.failed++;
        if (!permanent) {
          consecutiveTransient++;
          // Nothing got through yet and the server cannot be reached: a config problem, not a
          // mailing problem. Stop before every row is marked failed.
          if (delivered === 0 && isUnreachable(error)) {
            fatal ??= new BatchInputError(`cannot reach the server: ${oneLine(error)}`);
            stop ??= 'unreachable';
          } else if (consecutiveTransient >= breakerAt) {
            fatal ??= new Error(`stopped after ${consecutiveTransient} failures in a row; last: ${oneLine(error)}`);
            stop ??= 'breaker';
          }
        } else consecutiveTransient = 0;
        return;
      }
    }
  };

  try {
    const rows = readRows(source);
    try {
      for await (const row of rows) {
        if (stop !== undefined) break;
        if (limit !== undefined && row.index > limit) break;
        if (row.index % GC_EVERY === 0) options.collectGarbage?.();
        if (setup.done?.has(row.index)) {
          counts.processed++;
          counts.skipped++;
          continue;
        }
        const rendered = await renderOrJournal(render, row, journal);
        if (rendered === undefined) {
          counts.processed++;
          counts.failed++;
          finishRow(counts);
          continue;
        }
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        if (stop !== undefined) break;
        await pace(options.signal);
        if (stop !== undefined) break;
        const task = sendOne(rendered).then(() => {
          counts.processed++;
          finishRow(counts);
        });
        const tracked = task.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
      }
    } catch (error) {
      // A bad source row (CSV syntax, JSON) ends reading; rows already in flight still finish.
      if (!(error instanceof BatchInputError)) throw error;
      fatal = error;
      stop = 'input';
    }
    await Promise.all(inFlight);
    if (stop === undefined) await journal.append({ e: 'end', at: new Date().toISOString(), status: 'completed' });
    else await journal.append({ e: 'end', at: new Date().toISOString(), status: 'interrupted' });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    progress.stop(counts);
    await Promise.allSettled(inFlight);
    await journal.close();
  }

  const summary = await summarizeJournal(journal.file, { file: options.report, totalMs: Math.round(performance.now() - started) });
  const lines = [formatSummary(summary, { journal: journal.file, report: options.report })];
  if (stop !== undefined) {
    const why = stop === 'signal' ? 'interrupted' : oneLine(fatal);
    lines.push(`Stopped: ${why}. The rows in flight finished; continue with: mailstage batch --send --resume`);
  }
  const text = lines.join('\n');
  log(text);
  if (fatal instanceof BatchInputError) throw Object.assign(fatal, { summary: text });
  const t = summary.totals;
  const exitCode = stop === 'signal' ? 130 : t.invalid > 0 ? 2 : t.failed + t.refused + t.unknown + t.partial > 0 || stop ? 1 : 0;
  return { summary, exitCode, journal: journal.file, ...(options.report ? { report: options.report } : {}), text };
}

async function renderOrJournal(render: (row: Row) => RenderedRow, row: Row, journal: JournalWriter): Promise<RenderedRow | undefined> {
  try {
    return render(row);
  } catch (error) {
    if (!(error instanceof RowError)) throw error;
    await journal.append({ e: 'invalid', row: row.index, reason: error.reason });
    return undefined;
  }
}

/** Connection-level failures: nothing was said by a server (refused, DNS, timeout on connect, TLS). */
function isUnreachable(error: unknown): boolean {
  if (error instanceof SmtpResponseError) return false;
  if (error instanceof SmtpError) return error.stage === 'connect' || error.stage === 'greeting' || error.stage === 'starttls';
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
