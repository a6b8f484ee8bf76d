import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQueueUrl } from '../../queue/connection.js';
import { openRunStore } from '../../queue/state.js';
import { runCli } from '../cli/run.js';
import { tempDir } from '../runner/helpers.js';
import { haveRedis, runCompleted, startRedis, startSink, startWorkerProcess, until, writeRun, type RedisProcess, type WorkerProcess } from './harness.js';

const ROWS = 5000;
const CONCURRENCY = 8;

describe.skipIf(!haveRedis)('queue workers under SIGKILL (real redis-server)', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('5 000 rows, 3 workers, one killed midway: every row delivered; duplicates only for rows in flight, each recorded', async () => {
    // The reply comes 15 ms after the data: at the kill, the killed worker has messages whose
    // body arrived but whose reply it never read — delivered without the sender knowing.
    const sink = await startSink({ replyDelayMs: 15 });
    const workers: WorkerProcess[] = [];
    try {
      const dir = tempDir('mailstage-queue-crash-');
      writeRun(dir, { rows: ROWS, port: sink.port });
      for (let i = 0; i < 3; i++) workers.push(await startWorkerProcess(dir, redis.url, ['--concurrency', String(CONCURRENCY)]));
      const victim = workers[0]!;
      let killedAt = 0;
      sink.onArrival = (count) => {
        if (count === 2000) {
          victim.child.kill('SIGKILL');
          killedAt = count;
        }
      };
      const enqueue = await runCli(['batch', '--queue', redis.url, '--send', '--run', 'crash'], { cwd: dir });
      expect(enqueue.code, enqueue.stderr + enqueue.stdout).toBe(0);
      expect((await victim.exited).signal).toBe('SIGKILL');
      expect(killedAt).toBe(2000);
      await until(() => runCompleted(redis.url, 'crash'), 90_000, 'every row to have an outcome');

      // The survivors stop gracefully.
      for (const w of workers.slice(1)) expect(await w.stop(), w.output()).toBe(0);

      const store = openRunStore(parseQueueUrl(redis.url));
      const rows = Array.from({ length: ROWS }, (_, i) => i + 1);
      const [counts, outcomes, doubts] = await Promise.all([store.counts('crash'), store.outcomes('crash', rows), store.doubts('crash', rows)]);
      await store.close();
      expect(counts).toMatchObject({ sent: ROWS, failed: 0, refused: 0, unknown: 0, invalid: 0 });

      // At the sink: every row, by its Message-ID; a row seen twice kept its Message-ID.
      const expected = new Map(outcomes.map((o, i) => [i + 1, o!.e === 'sent' ? o!.id : '']));
      const byRow = new Map<number, string[]>();
      for (const a of sink.arrivals) byRow.set(a.row, [...(byRow.get(a.row) ?? []), a.messageId]);
      for (const row of rows) {
        const ids = byRow.get(row);
        expect(ids, `row ${row} never arrived`).toBeDefined();
        for (const id of ids!) expect(id, `row ${row}`).toBe(expected.get(row));
      }
      const twice = [...byRow].filter(([, ids]) => ids.length > 1).map(([row]) => row);
      const doubted = new Set(rows.filter((_, i) => doubts[i] !== undefined));
      // Duplicates only where the run state says the delivery was in doubt, and no more rows in
      // doubt than the killed worker had in flight.
      for (const row of twice) expect(doubted.has(row), `row ${row} arrived twice but is not recorded`).toBe(true);
      expect(doubted.size).toBeGreaterThan(0);
      expect(doubted.size).toBeLessThanOrEqual(CONCURRENCY);
      for (const row of doubted) expect(doubts[row - 1]!.reason).toMatch(/in flight on .* when it stopped/);
      expect(sink.arrivals.length).toBe(ROWS + twice.reduce((n, row) => n + byRow.get(row)!.length - 1, 0));

      // The status and report say so too.
      const status = await runCli(['batch', '--status', 'crash', '--queue', redis.url, '--report', 'report.json'], { cwd: dir });
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(new RegExp(`${doubted.size} row\\(s\\) went out again after an unknown delivery`));
      console.log(`queue crash test: killed a worker at arrival ${killedAt}; ${doubted.size} row(s) in flight on it, ${twice.length} delivered twice (same Message-ID); ${sink.arrivals.length} arrivals for ${ROWS} rows`);
    } finally {
      for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await sink.close();
    }
  }, 150_000);
});
