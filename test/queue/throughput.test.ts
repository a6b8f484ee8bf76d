/**
 * Throughput of 1, 2 and 4 worker processes against Postfix's smtp-sink, with the CPU each costs
 * per message (workers and redis-server apart). This machine has 2 cores, so wall-clock rates stop
 * scaling at 2 workers; CPU per message shows whether the design (one Redis round trip to begin,
 * one to record, BullMQ's own moves) or the cores are the limit.
 */
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import { QUEUE_NAME } from '../../queue/connection.js';
import { enqueueRun } from '../../queue/enqueue.js';
import { available as haveSmtpSink, startSmtpSink, type SmtpSinkServer } from '../interop/servers/smtp-sink.js';
import { tempDir } from '../runner/helpers.js';
import { cpuMs, haveRedis, runCompleted, startRedis, startWorkerProcess, until, writeRun, type RedisProcess, type WorkerProcess } from './harness.js';

const ROWS = 3000;

describe.skipIf(!haveRedis || !haveSmtpSink())('queue throughput (real redis-server, smtp-sink)', () => {
  let redis: RedisProcess;
  let sink: SmtpSinkServer;
  beforeAll(async () => {
    redis = await startRedis();
    sink = await startSmtpSink();
  });
  afterAll(async () => {
    await sink?.stop();
    await redis?.stop();
  });

  it('1, 2 and 4 worker processes: messages/s and CPU per message', async () => {
    const dir = tempDir('mailstage-queue-bench-');
    writeRun(dir, { rows: ROWS, port: sink.port, batch: { concurrency: 64 }, transport: { pool: { maxConnections: 8 } } });
    const loaded = await loadConfig({ file: path.join(dir, 'mailstage.config.json') });
    const queue = new Queue(QUEUE_NAME, { connection: { url: redis.url } });
    const lines: string[] = [];
    try {
      for (const count of [1, 2, 4]) {
        const run = `bench-${count}`;
        // Enqueued while the queue is paused, so the clock measures sending only.
        await queue.pause();
        await enqueueRun({ config: loaded.config, baseDir: dir, queue: redis.url, run, log: () => {} });
        const workers: WorkerProcess[] = [];
        try {
          for (let i = 0; i < count; i++) workers.push(await startWorkerProcess(dir, redis.url));
          const before = sink.counts().messages;
          const cpu0 = workers.map((w) => cpuMs(w.pid));
          const redis0 = cpuMs(redis.pid);
          const t0 = performance.now();
          await queue.resume();
          await until(() => runCompleted(redis.url, run), 60_000, `${run} to finish`);
          const seconds = (performance.now() - t0) / 1000;
          const workerCpu = workers.reduce((sum, w, i) => sum + cpuMs(w.pid) - cpu0[i]!, 0);
          const redisCpu = cpuMs(redis.pid) - redis0;
          await sink.waitForMessages({ count: before + ROWS, timeoutMs: 5_000 });
          const rate = ROWS / seconds;
          lines.push(
            `${count} worker(s): ${ROWS} msgs in ${seconds.toFixed(2)} s = ${Math.round(rate)} msg/s; ` +
              `CPU/msg: workers ${(workerCpu / ROWS).toFixed(3)} ms, redis-server ${(redisCpu / ROWS).toFixed(3)} ms`,
          );
          expect(rate).toBeGreaterThan(100);
        } finally {
          for (const w of workers) expect(await w.stop(), w.output()).toBe(0);
        }
      }
    } finally {
      await queue.close();
    }
    console.log(`queue throughput (smtp-sink, ~0.4 KB messages, concurrency 64/worker, pool 8, ${ROWS} rows each; 2-core machine):\n  ${lines.join('\n  ')}`);
  }, 150_000);
});
