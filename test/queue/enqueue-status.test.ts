import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAME } from '../../queue/connection.js';
import { runCli } from '../cli/run.js';
import { LOOPBACK } from '../interop/servers/common.js';
import { tempDir } from '../runner/helpers.js';
import { haveRedis, runCompleted, startRedis, startWorkerProcess, until, writeRun, type RedisProcess } from './harness.js';

const ROWS = 100;

/** Row n%25==0: RCPT refused (550); n%25==13: 554 after the body (permanent); n%25==7: 451 after
 *  the body the first time only (transient, then accepted); n%25==19: the first time, no reply
 *  to the body until the client gave up (delivered, but the sender cannot know). */
async function pickySink(): Promise<{ port: number; tries: Map<number, number>; close(): Promise<void> }> {
  const tries = new Map<number, number>();
  const server = new SMTPServer({
    logger: false, disableReverseLookup: true, authOptional: true, disabledCommands: ['STARTTLS'],
    onRcptTo(address, _session, cb) {
      const n = Number(/^user(\d+)@/.exec(address.address)?.[1]);
      if (n % 25 === 0) return cb(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
      cb();
    },
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const n = Number(/Row (\d+) /.exec(Buffer.concat(chunks).toString())![1]);
        const t = (tries.get(n) ?? 0) + 1;
        tries.set(n, t);
        if (n % 25 === 13) return cb(Object.assign(new Error('5.7.1 content rejected'), { responseCode: 554 }));
        if (n % 25 === 7 && t === 1) return cb(Object.assign(new Error('4.3.0 try again later'), { responseCode: 451 }));
        if (n % 25 === 19 && t === 1) return void setTimeout(() => cb(null), 2_000);
        cb(null);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, LOOPBACK, () => r()));
  const port = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  return { port, tries, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe.skipIf(!haveRedis)('batch --queue / --status (BullMQ on a real redis-server)', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('enqueues idempotently, retries transient failures, records permanent ones once, reports from Redis', async () => {
    const sink = await pickySink();
    const queue = new Queue(QUEUE_NAME, { connection: { url: redis.url } });
    try {
      const dir = tempDir('mailstage-queue-');
      writeRun(dir, { rows: ROWS, port: sink.port, transport: { timeouts: { data: 700 } } });
      const jobs = async (): Promise<number> => {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
        return Object.values(c).reduce((a, b) => a + b, 0);
      };

      // Enqueue the same run twice: the second adds nothing.
      const first = await runCli(['batch', '--queue', redis.url, '--send', '--run', 'news-1'], { cwd: dir });
      expect(first.code, first.stderr + first.stdout).toBe(0);
      expect(first.stdout).toMatch(/^Run news-1: 100 row\(s\) read/m);
      expect(await jobs()).toBe(ROWS);
      const again = await runCli(['batch', '--queue', redis.url, '--send', '--run', 'news-1'], { cwd: dir });
      expect(again.code, again.stderr).toBe(0);
      expect(await jobs()).toBe(ROWS);

      // Without --send: a dry run, nothing enqueued.
      const dry = await runCli(['batch', '--queue', redis.url, '--no-progress'], { cwd: dir });
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/Nothing was enqueued \(dry run\)/);
      expect(await jobs()).toBe(ROWS);

      const before = await runCli(['batch', '--status', 'news-1', '--queue', redis.url], { cwd: dir });
      expect(before.code, before.stderr).toBe(0);
      expect(before.stdout).toMatch(/Run news-1: in progress — 0\/100 rows \(0%\)/);
      expect(before.stdout).toMatch(/pending\s+100/);

      const worker = await startWorkerProcess(dir, redis.url, ['--concurrency', '4']);
      try {
        await until(() => runCompleted(redis.url, 'news-1'), 30_000, 'the run to complete');
      } finally {
        expect(await worker.stop(), worker.output()).toBe(0);
      }
      expect(worker.output()).toMatch(/stopped after \d+ job\(s\)/);

      const status = await runCli(['batch', '--status', 'news-1', '--queue', redis.url, '--report', 'report.json'], { cwd: dir });
      expect(status.code, 'refused and failed rows: exit 1').toBe(1);
      expect(status.stdout).toMatch(/Run news-1: completed — 100\/100 rows \(100%\)/);
      expect(status.stdout).toMatch(/^\s+sent\s+92$/m);
      expect(status.stdout).toMatch(/^\s+refused\s+4$/m);
      expect(status.stdout).toMatch(/^\s+failed\s+4$/m);
      expect(status.stdout).toMatch(/^\s+pending\s+0$/m);

      const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as {
        run: string; mode: string; status: string; rows: { row: number; outcome: string; messageId?: string; reason?: string; reply?: string }[];
        totals: Record<string, number>; durations: { totalMs: number };
      };
      expect(report).toMatchObject({ run: 'news-1', mode: 'send', status: 'completed' });
      expect(report.totals).toMatchObject({ rows: 100, sent: 92, refused: 4, failed: 4, unknown: 0, invalid: 0 });
      expect(report.rows.map((r) => r.row)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
      expect(report.rows[6]).toMatchObject({ row: 7, outcome: 'sent', messageId: expect.stringMatching(/^<news-1\.7\.[0-9a-f]+@example\.test>$/) });
      expect(report.rows[24]).toMatchObject({ row: 25, outcome: 'refused' });
      expect(report.rows[12]).toMatchObject({ row: 13, outcome: 'failed', reason: expect.stringMatching(/554/) });
      // Transient: retried by the queue; permanent: tried once.
      expect(sink.tries.get(7)).toBe(2);
      expect(sink.tries.get(13)).toBe(1);
      expect(sink.tries.get(25)).toBeUndefined();
      expect(sink.tries.get(1)).toBe(1);
      // Reply lost: in doubt, sent again with the same Message-ID, and the report says so.
      expect(sink.tries.get(19)).toBe(2);
      expect(report.rows[18]).toMatchObject({ row: 19, outcome: 'sent', resent: { count: 1, reason: expect.stringMatching(/unknown|reply/i) } });
      expect(report.rows.filter((r) => 'resent' in r).map((r) => r.row)).toEqual([19, 44, 69, 94]);
      expect(status.stdout).toMatch(/4 row\(s\) went out again after an unknown delivery/);

      // Enqueued once more after it finished: every row has its outcome, nothing is added.
      const late = await runCli(['batch', '--queue', redis.url, '--send', '--run', 'news-1'], { cwd: dir });
      expect(late.code, late.stderr).toBe(0);
      expect(late.stdout).toMatch(/queued\s+0 \(100 already done, skipped\)/);
      expect(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).toMatchObject({ waiting: 0, active: 0, delayed: 0, prioritized: 0 });

      const missing = await runCli(['batch', '--status', 'nope', '--queue', redis.url], { cwd: dir });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/no run nope/);
    } finally {
      await queue.close();
      await sink.close();
    }
  });
});
