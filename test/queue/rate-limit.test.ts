import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQueueUrl } from '../../queue/connection.js';
import { openRunStore } from '../../queue/state.js';
import { runCli } from '../cli/run.js';
import { tempDir } from '../runner/helpers.js';
import { haveRedis, runCompleted, startRedis, startSink, startWorkerProcess, until, writeRun, type RedisProcess, type WorkerProcess } from './harness.js';

const ROWS = 300;
const LIMIT = 50; // messages per second, for the whole queue

describe.skipIf(!haveRedis)('global rate limit across workers (real redis-server)', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('3 workers with a limit of 50 msg/s deliver at most 50 msg/s together', async () => {
    const sink = await startSink();
    const workers: WorkerProcess[] = [];
    try {
      const dir = tempDir('mailstage-queue-rate-');
      writeRun(dir, { rows: ROWS, port: sink.port, batch: { rateLimit: { messages: LIMIT, interval: 1000 } } });
      for (let i = 0; i < 3; i++) workers.push(await startWorkerProcess(dir, redis.url, ['--concurrency', '8']));
      const enqueue = await runCli(['batch', '--queue', redis.url, '--send', '--run', 'rate'], { cwd: dir });
      expect(enqueue.code, enqueue.stderr + enqueue.stdout).toBe(0);
      expect(enqueue.stdout).toMatch(/rate\s+50 per 1000 ms across all workers/);
      await until(() => runCompleted(redis.url, 'rate'), 30_000, 'every row to have an outcome');
      for (const w of workers) expect(await w.stop(), w.output()).toBe(0);

      const times = sink.arrivals.map((a) => a.at).sort((a, b) => a - b);
      expect(times).toHaveLength(ROWS);
      const t0 = times[0]!;
      // BullMQ's limiter is a fixed window: up to LIMIT jobs start at once when a window opens. So
      // the first second may carry a whole window at once; after that, by any time t at most
      // LIMIT per second more. 0.2 s of slack for the first message's connection set-up.
      for (let k = 0; k < times.length; k++) {
        const allowed = LIMIT + LIMIT * ((times[k]! - t0) / 1000 + 0.2);
        expect(k + 1, `${k + 1} messages ${Math.round(times[k]! - t0)} ms after the first`).toBeLessThanOrEqual(allowed);
      }
      const seconds = (times.at(-1)! - t0) / 1000;
      const rate = (ROWS - LIMIT) / seconds;
      // Not throttled to a crawl either: the limit is what bounds it, not something else.
      expect(rate).toBeGreaterThan(LIMIT * 0.8);
      expect(rate).toBeLessThanOrEqual(LIMIT * 1.05);

      // The work was shared: every worker sent some of it.
      const store = openRunStore(parseQueueUrl(redis.url));
      const outcomes = await store.outcomes('rate', Array.from({ length: ROWS }, (_, i) => i + 1));
      await store.close();
      const byWorker = new Map<string, number>();
      for (const o of outcomes) byWorker.set(o!.by ?? '?', (byWorker.get(o!.by ?? '?') ?? 0) + 1);
      expect(byWorker.size).toBe(3);
      console.log(`queue rate test: ${ROWS} messages in ${seconds.toFixed(2)} s, ${rate.toFixed(1)} msg/s after the first window (limit ${LIMIT}); per worker ${[...byWorker.values()].join('/')}`);
    } finally {
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await sink.close();
    }
  }, 90_000);
});
