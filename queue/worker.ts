/**
 * `mailstage worker`: a BullMQ Worker that sends queued rows through the configured Mailer (pool,
 * plugins, its own retries) and records each row's outcome in the run state.
 *
 * Per job: `begin` (skip a row that has its outcome; mark it as being sent, noting a mark left by
 * a worker that died mid-send) → send → record. What the queue does with a failure:
 * - transient (4xx, connection lost before the body's end): thrown, BullMQ retries with backoff;
 * - permanent (5xx, unsendable input): recorded, `UnrecoverableError`: never retried;
 * - unknown (the body's `.` went out, the reply was lost): recorded as a doubt, thrown, and BullMQ
 *   sends it again with the same Message-ID — the receiver may see it twice, the report says so;
 * - a worker killed mid-send: its lock expires, BullMQ's stalled-job check gives the job to another
 *   worker, whose `begin` finds the dead worker's mark and records the doubt likewise.
 */
import os from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { SmtpError, SmtpInvalidInputError, SmtpRecipientsRefusedError } from '../core/errors.js';
import { oneLine } from '../runner/errors.js';
import type { Sender } from '../runner/sender.js';
import { connectionOptions, parseQueueUrl, QUEUE_NAME } from './connection.js';
import type { SendJob } from './job.js';
import { openRunStore, type OutcomeRecord, type RunStore } from './state.js';

export interface WorkerOptions {
  /** `redis://host:port/db` */
  readonly queue: string;
  readonly sender: Sender;
  /** Jobs in flight in this process. */
  readonly concurrency: number;
  /** How long a job stays with a worker that stopped renewing its lock (a killed worker) before
   *  another takes it. Also the stalled-check period. Default 30 s (BullMQ's). */
  readonly lockMs?: number;
  readonly log?: (line: string) => void;
}

export interface RunningWorker {
  readonly name: string;
  /** Jobs finished by this process (any outcome). */
  processed(): number;
  /** Stops taking jobs, lets the ones in flight finish, closes the Mailer and Redis. */
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const target = parseQueueUrl(options.queue);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const name = `${os.hostname()}:${process.pid}`;
  const store = openRunStore(target);
  const sender = options.sender;
  let processed = 0;
  const lockMs = options.lockMs ?? 30_000;

  const worker = new Worker<SendJob>(QUEUE_NAME, (job) => processJob(job, store, sender, name).finally(() => processed++), {
    connection: connectionOptions(target),
    concurrency: options.concurrency,
    name,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    // One kill should not fail a job; a job that keeps killing its workers should.
    maxStalledCount: 3,
  });
  worker.on('error', (error) => log(`worker ${name}: ${oneLine(error)}`));
  worker.on('failed', (job, error) => {
    // A job given up by the stalled check never reached our processor's catch: record it here.
    if (job && /stalled more than/i.test(error.message)) {
      void store.record(job.data.run, { e: 'unknown', row: job.data.row, id: job.data.id, reason: oneLine(error), resend: false, by: name }).catch(() => {});
    }
  });
  await worker.waitUntilReady();
  return {
    name,
    processed: () => processed,
    async close() {
      await worker.close();
      await sender.close();
      await store.close();
    },
  };
}

async function processJob(job: Job<SendJob>, store: RunStore, sender: Sender, name: string): Promise<string> {
  const { run, row, id, to, message } = job.data;
  const begin = await store.begin(run, row, name);
  if (begin === 'done') return 'already recorded';
  if (begin !== null) {
    await store.doubt(run, row, id, `in flight on ${begin} when it stopped; sent again with the same Message-ID`);
  }
  const t0 = performance.now();
  const ms = (): number => Math.round(performance.now() - t0);
  const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  const record = (r: OutcomeRecord): Promise<void> => store.record(run, r);
  try {
    const info = await sender.send(message);
    await record({
      e: 'sent', row, id, to, reply: info.response, ms: ms(),
      ...(info.rejected.length > 0 ? { rejected: info.rejected } : {}), by: name,
    });
    return info.response;
  } catch (error) {
    const reason = oneLine(error);
    if (sender.isDeliveryUnknown(error)) {
      await store.doubt(run, row, id, reason);
      if (lastAttempt) {
        await record({ e: 'unknown', row, id, reason, resend: false, by: name });
        throw new UnrecoverableError(reason);
      }
      await store.release(run, row);
      throw error;
    }
    const permanent = error instanceof SmtpError ? error.permanent : false;
    if (!permanent && !lastAttempt) {
      await store.release(run, row);
      throw error;
    }
    if (error instanceof SmtpInvalidInputError) await record({ e: 'invalid', row, reason, by: name });
    else if (error instanceof SmtpRecipientsRefusedError) await record({ e: 'refused', row, id, to, reason, ms: ms(), by: name });
    else await record({ e: 'failed', row, id, to, reason, permanent, ms: ms(), by: name });
    throw permanent ? new UnrecoverableError(reason) : error;
  }
}
