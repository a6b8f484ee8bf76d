/**
 * `mailstage batch --queue URL --send`: the rows of a run rendered here, once, and put on the
 * BullMQ queue as one job per row; workers on any host send them. Rendering up front means a bad
 * row is found before anything goes out and a worker needs no templates or source, only the
 * transport config (attachments travel as paths: workers must see the same files).
 *
 * Idempotent: job ids are run + row, so BullMQ ignores a job it holds already, and rows that have
 * an outcome (their completed jobs are removed) are skipped. Enqueueing the same `--run` again
 * — after a crash of the enqueuer, or by accident — adds nothing twice.
 */
import path from 'node:path';
import { Queue, type JobsOptions } from 'bullmq';
import type { ResolvedConfig } from '../core/config/index.js';
import { BatchInputError } from '../runner/errors.js';
import { newRunId } from '../runner/journal.js';
import { createRenderer, RowError, type RenderedRow } from '../runner/render.js';
import { checkSource, readRows } from '../runner/source.js';
import { connectionOptions, parseQueueUrl, QUEUE_NAME } from './connection.js';
import { jobIdFor, RUN_ID, type SendJob } from './job.js';
import { openRunStore } from './state.js';

export interface EnqueueOptions {
  readonly config: ResolvedConfig;
  /** Relative paths in `config.batch` are taken from here (the config file's folder). */
  readonly baseDir: string;
  /** `redis://host:port/db` */
  readonly queue: string;
  /** Run id to use (or continue); default a new one. */
  readonly run?: string;
  readonly limit?: number;
  readonly log?: (line: string) => void;
}

export interface EnqueueResult {
  readonly run: string;
  /** Rows read from the source. */
  readonly rows: number;
  /** Rows handed to the queue this time (a job BullMQ already held is not added again). */
  readonly queued: number;
  /** Rows skipped because they already have an outcome. */
  readonly done: number;
  readonly invalid: number;
  readonly exitCode: 0 | 2;
  readonly text: string;
}

const CHUNK = 500;

/** Job options from `batch.retry`: transient failures come back with exponential backoff. */
export function jobOptions(config: ResolvedConfig): JobsOptions {
  const retry = config.batch?.retry;
  return {
    // BullMQ counts the first try; the config counts retries after it. Without `batch.retry` the
    // queue still retries a little: a resend after an unknown delivery needs an attempt.
    attempts: (retry?.attempts ?? 3) + 1,
    backoff: { type: 'exponential', delay: retry?.minDelay ?? 1000, jitter: retry?.jitter ?? 0.1 },
    // The outcome is in the run state; the job (with its rendered message) is no longer needed.
    removeOnComplete: true,
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

export async function enqueueRun(options: EnqueueOptions): Promise<EnqueueResult> {
  const batch = options.config.batch;
  if (batch === undefined) throw new BatchInputError('the config has no `batch` section (source, templates, from, …)');
  const target = parseQueueUrl(options.queue);
  if (options.run !== undefined && !RUN_ID.test(options.run)) {
    throw new BatchInputError(`--run must be letters, digits, - and _ (at most 64), got ${JSON.stringify(options.run)}`);
  }
  const source = { ...batch.source, path: path.resolve(options.baseDir, batch.source.path) };
  await checkSource(source);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  // Templates compile before anything is written to Redis: a typo leaves no empty run.
  const probe = createRenderer({ batch, defaults: options.config.message, baseDir: options.baseDir, runId: 'check' });

  const store = openRunStore(target);
  const queue = new Queue<SendJob>(QUEUE_NAME, { connection: connectionOptions(target) });
  queue.on('error', () => {});
  try {
    const run = options.run ?? newRunId();
    const existing = await store.getMeta(run).catch((error: unknown) => {
      throw new BatchInputError(`cannot reach Redis at ${target.display}: ${(error as Error).message}`);
    });
    if (existing && existing.source !== source.path) {
      throw new BatchInputError(`run ${run} read ${existing.source}, but the config now names ${source.path}; use another --run`);
    }
    // A run enqueued again keeps its Message-ID domain, so its ids do not change with the config.
    const domain = existing?.domain ?? probe.domain;
    if (!existing) await store.putMeta(run, { run, source: source.path, domain, createdAt: new Date().toISOString(), status: 'enqueueing', rows: 0 });
    // The queue-wide limit (BullMQ keeps it in Redis; every worker obeys it): the mailing's rate.
    const rate = batch.rateLimit;
    if (rate) await queue.setGlobalRateLimit(rate.messages, rate.interval);
    else await queue.removeGlobalRateLimit();

    const render = createRenderer({ batch, defaults: options.config.message, baseDir: options.baseDir, runId: run, messageIdDomain: domain });
    const opts = jobOptions(options.config);
    let rows = 0;
    let queued = 0;
    let done = 0;
    let invalid = 0;
    let pending: RenderedRow[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const chunk = pending;
      pending = [];
      const recorded = await store.recorded(run, chunk.map((r) => r.row.index));
      const jobs = chunk.filter((r) => !recorded.has(r.row.index)).map((r) => ({
        name: run,
        data: { run, row: r.row.index, id: r.messageId, to: r.recipients, message: r.message },
        opts: { ...opts, jobId: jobIdFor(run, r.row.index) },
      }));
      done += chunk.length - jobs.length;
      if (jobs.length > 0) await queue.addBulk(jobs);
      queued += jobs.length;
      await store.putMeta(run, { rows: chunk[chunk.length - 1]!.row.index });
    };
    for await (const row of readRows(source)) {
      if (options.limit !== undefined && row.index > options.limit) break;
      rows++;
      try {
        pending.push(render(row));
      } catch (error) {
        if (!(error instanceof RowError)) throw error;
        invalid++;
        await store.record(run, { e: 'invalid', row: row.index, reason: error.reason });
        await store.putMeta(run, { rows: row.index });
        continue;
      }
      if (pending.length >= CHUNK) await flush();
    }
    await flush();
    await store.putMeta(run, { status: 'enqueued', enqueuedAt: new Date().toISOString() });
    const text = [
      `Run ${run}: ${rows} row(s) read from ${source.path}`,
      `  queued   ${queued}${done > 0 ? ` (${done} already done, skipped)` : ''} on ${target.display} (queue "${QUEUE_NAME}")`,
      ...(invalid > 0 ? [`  invalid  ${invalid} (recorded in the run; see --status)`] : []),
      ...(rate ? [`  rate     ${rate.messages} per ${rate.interval} ms across all workers`] : []),
      `Start workers with: mailstage worker --queue ${target.display}`,
      `Follow it with:     mailstage batch --status ${run} --queue ${target.display}`,
    ].join('\n');
    log(text);
    return { run, rows, queued, done, invalid, exitCode: invalid > 0 ? 2 : 0, text };
  } finally {
    await queue.close().catch(() => {});
    await store.close();
  }
}
