import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { readJournal } from '../../runner/journal.js';
import { tempDir, writeCsv } from '../runner/helpers.js';
import { collect, runCli, spawnCli } from './run.js';

interface Arrival { readonly row: number; readonly messageId: string }

/** smtp-server with a small delay per message, so a batch is still running when it is killed. */
async function slowSink(delayMs: number, onArrival: (count: number) => void): Promise<{ port: number; arrivals: Arrival[]; close(): Promise<void> }> {
  const arrivals: Arrival[] = [];
  const server = new SMTPServer({
    logger: false, disableReverseLookup: true, authOptional: true, disabledCommands: ['STARTTLS'],
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        arrivals.push({ row: Number(/Row (\d+) /.exec(raw)![1]), messageId: /^Message-ID: (.*)$/im.exec(raw)![1]!.trim() });
        onArrival(arrivals.length);
        setTimeout(() => cb(null), delayMs);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  return { port, arrivals, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('crash and resume', () => {
  it('SIGKILL mid-batch, then --resume: no row lost, only rows in flight sent twice, with the same Message-ID', async () => {
    const ROWS = 2000;
    const CONCURRENCY = 8;
    // The reply comes 20 ms after the data: at the kill, some messages have arrived but their
    // reply has not — the real "delivered, but the sender does not know" case.
    let kill: (count: number) => void = () => {};
    const sink = await slowSink(20, (count) => kill(count));
    try {
      const dir = tempDir();
      writeCsv(path.join(dir, 'rows.csv'), { rows: ROWS });
      writeFileSync(path.join(dir, 'mailstage.config.json'), JSON.stringify({
        transport: { host: '127.0.0.1', port: sink.port, tls: 'none', pool: { maxConnections: 4 }, retry: { attempts: 0 } },
        message: { from: 'sender@example.test' },
        batch: { source: 'rows.csv', templates: { subject: 'Hi {{name}}', text: 'Row {{n}} for {{name}}' }, concurrency: CONCURRENCY },
      }));

      const child = spawnCli(['batch', '--send', '--no-progress'], { cwd: dir });
      const first = collect(child);
      // Killed the moment message 400 has arrived, before its reply goes out: at least that one
      // is delivered without the sender knowing.
      await new Promise<void>((resolve, reject) => {
        kill = (count) => {
          if (count !== 400) return;
          child.kill('SIGKILL');
          resolve();
        };
        child.on('exit', () => {
          if (sink.arrivals.length < 400) reject(new Error('the batch ended before it could be killed'));
        });
      });
      kill = () => {};
      const killed = await first;
      expect(killed.signal).toBe('SIGKILL');
      const beforeResume = sink.arrivals.length;
      expect(beforeResume).toBeLessThan(ROWS);

      const resumed = await runCli(['batch', '--send', '--resume', '--no-progress', '--report', 'report.json'], { cwd: dir });
      expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
      expect(resumed.stdout).toMatch(/Resuming run .*in flight at the stop; resending them with the same Message-ID/);

      // Every row arrived; the ones that arrived twice were in flight at the kill.
      const byRow = new Map<number, string[]>();
      for (const a of sink.arrivals) byRow.set(a.row, [...(byRow.get(a.row) ?? []), a.messageId]);
      expect(byRow.size).toBe(ROWS);
      for (let row = 1; row <= ROWS; row++) expect(byRow.has(row), `row ${row} lost`).toBe(true);
      const twice = [...byRow].filter(([, ids]) => ids.length > 1);
      for (const [row, ids] of twice) {
        expect(ids.length, `row ${row}`).toBe(2);
        expect(ids[1], `row ${row} resent with another Message-ID`).toBe(ids[0]);
      }
      // The journal names the rows it did not know about; duplicates are among them, and there are
      // no more of them than could be in flight.
      const runs = readdirSync(path.join(dir, '.mailstage/runs'));
      expect(runs).toHaveLength(1);
      const unknown = new Set<number>();
      for await (const r of readJournal(path.join(dir, '.mailstage/runs', runs[0]!))) if (r.e === 'unknown') unknown.add(r.row);
      expect(unknown.size).toBeGreaterThan(0);
      expect(unknown.size).toBeLessThanOrEqual(CONCURRENCY);
      for (const [row] of twice) expect(unknown.has(row), `row ${row} sent twice but not in flight`).toBe(true);
      expect(twice.length, 'no message was caught between arrival and reply').toBeGreaterThan(0);
      expect(sink.arrivals.length).toBe(ROWS + twice.length);
      console.log(`crash test: killed after ${beforeResume} arrivals; ${unknown.size} rows in flight, ${twice.length} delivered twice (same Message-ID)`);
    } finally {
      await sink.close();
    }
  }, 120_000);
});
