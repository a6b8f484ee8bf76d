import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailer, isDeliveryUnknown } from '../../index.js';
import { runBatch } from '../../runner/batch.js';
import { BatchInputError } from '../../runner/errors.js';
import { readJournal } from '../../runner/journal.js';
import { mailerSender, type Sender } from '../../runner/sender.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { batchConfig, header, tempDir, writeCsv } from './helpers.js';

const quiet = { progress: { silent: true }, log: () => {} } as const;

/** A sender that must not be called (dry runs). */
const forbidden: Sender = {
  send: () => Promise.reject(new Error('a dry run must not send')),
  isDeliveryUnknown: () => false,
  close: async () => {},
};

describe('batch against smtp-server', () => {
  let server: TestSmtpServer;
  beforeAll(async () => {
    server = await startSmtpServer();
  });
  afterAll(() => server.close());

  it('sends a 10 000-row CSV: every row arrives exactly once with its own rendered content', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 10_000 });
    const config = batchConfig(dir, {
      transport: { port: server.port, pool: { maxConnections: 4, maxMessages: 1000 } },
      batch: { concurrency: 8 },
    });
    const mailer = createMailer(config);
    const started = performance.now();
    const result = await runBatch({ config, baseDir: dir, send: true, sender: mailerSender(mailer, isDeliveryUnknown), report: path.join(dir, 'report.json'), ...quiet });
    const seconds = (performance.now() - started) / 1000;
    await mailer.close();
    console.log(`10 000-row batch: ${seconds.toFixed(2)} s (${Math.round(10_000 / seconds)} msg/s), ${server.connections()} connections`);

    expect(result.exitCode).toBe(0);
    expect(result.summary.totals).toMatchObject({ rows: 10_000, sent: 10_000, failed: 0, refused: 0, unknown: 0, invalid: 0 });
    expect(server.messages).toHaveLength(10_000);
    const seen = new Map<number, string>();
    for (const m of server.messages) {
      const raw = m.data.toString('utf8');
      const n = Number(/Row (\d+) for/.exec(raw)?.[1]);
      expect(seen.has(n), `row ${n} arrived twice`).toBe(false);
      expect(m.rcptTo.map((r) => r.address)).toEqual([`user${n}@example.test`]);
      expect(header(raw, 'Subject')).toBe(`Hello User ${n}`);
      expect(raw).toContain(`Row ${n} for User ${n} <user${n}@example.test>`);
      const id = header(raw, 'Message-ID')!;
      expect(id).toMatch(new RegExp(`^<${result.summary.run}\\.${n}\\.[0-9a-f]{12}@example\\.test>$`));
      seen.set(n, id);
    }
    expect(seen.size).toBe(10_000);
    // The pool reuses connections: far fewer than one per message.
    expect(server.connections()).toBeLessThan(100);
    const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8'));
    expect(report.rows).toHaveLength(10_000);
    expect(report.totals.sent).toBe(10_000);
    expect(report.rows[0]).toMatchObject({ outcome: 'sent', reply: expect.stringMatching(/^250/) });
    expect(new Set(report.rows.map((r: { row: number }) => r.row)).size).toBe(10_000);
  }, 120_000);

  it('journals refused recipients and server failures per row and exits 1', async () => {
    const picky = await startSmtpServer({
      onRcptTo(address, _session, cb) {
        if (address.address === 'user2@example.test') return cb(Object.assign(new Error('no such user'), { responseCode: 550 }));
        cb();
      },
    });
    try {
      const dir = tempDir();
      writeCsv(path.join(dir, 'rows.csv'), { rows: 4 });
      const config = batchConfig(dir, { transport: { port: picky.port, retry: { attempts: 0 } } });
      const mailer = createMailer(config);
      const result = await runBatch({ config, baseDir: dir, send: true, sender: mailerSender(mailer, isDeliveryUnknown), ...quiet });
      await mailer.close();
      expect(result.exitCode).toBe(1);
      expect(result.summary.totals).toMatchObject({ sent: 3, refused: 1 });
      expect(result.summary.problems[0]).toMatchObject({ row: 2, outcome: 'refused' });
      expect(result.summary.problems[0]!.reason).toMatch(/550/);
      expect(picky.messages).toHaveLength(3);
    } finally {
      await picky.close();
    }
  });
});

describe('dry run', () => {
  it('renders every row, writes previews for the first N and sends nothing', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 50 });
    const config = batchConfig(dir);
    const result = await runBatch({ config, baseDir: dir, send: false, sender: forbidden, report: path.join(dir, 'dry.json'), ...quiet });
    expect(result.exitCode).toBe(0);
    expect(result.summary.totals).toMatchObject({ rows: 50, valid: 50, invalid: 0 });
    expect(result.text).toMatch(/Nothing was sent/);
    const previews = readdirSync(path.join(dir, 'preview')).sort();
    expect(previews).toEqual(['row-000001.eml', 'row-000002.eml', 'row-000003.eml']);
    const parsed = await simpleParser(readFileSync(path.join(dir, 'preview', 'row-000002.eml')));
    expect(parsed.subject).toBe('Hello User 2');
    expect(parsed.text?.trim()).toBe('Row 2 for User 2 <user2@example.test>');
    expect(parsed.to && 'text' in parsed.to ? parsed.to.text : '').toBe('user2@example.test');
    expect(parsed.messageId).toMatch(new RegExp(`^<${result.summary.run}\\.2\\.`));
    // No journal for a dry run: there is nothing to resume.
    expect(existsSync(path.join(dir, 'runs'))).toBe(false);
    const report = JSON.parse(readFileSync(path.join(dir, 'dry.json'), 'utf8'));
    expect(report.mode).toBe('dry-run');
    expect(report.rows).toHaveLength(50);
  });

  it('--limit stops after N rows', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 50 });
    const result = await runBatch({ config: batchConfig(dir), baseDir: dir, send: false, limit: 7, ...quiet });
    expect(result.summary.totals.rows).toBe(7);
  });

  it('reports a missing variable naming the variable and the row, and exits 2', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'rows.csv'), 'email,name\na@example.test,A\nb@example.test,\nc@example.test,C\n');
    const config = batchConfig(dir, { batch: { templates: { subject: 'Hi {{name}}', text: 'Your code is {{code}}' } } });
    const result = await runBatch({ config, baseDir: dir, send: false, ...quiet });
    expect(result.exitCode).toBe(2);
    expect(result.summary.totals).toMatchObject({ rows: 3, invalid: 3 });
    expect(result.summary.problems[0]!.reason).toMatch(/missing variable "code"/);
    expect(result.text).toMatch(/row 1 .*missing variable "code"/);
  });

  it('flags a bad address and a missing recipient per row', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'rows.csv'), 'email,name,n\nnot-an-address,A,1\n,B,2\nok@example.test,C,3\n');
    const result = await runBatch({ config: batchConfig(dir), baseDir: dir, send: false, ...quiet });
    expect(result.exitCode).toBe(2);
    expect(result.summary.totals).toMatchObject({ valid: 1, invalid: 2 });
    expect(result.summary.problems.map((p) => p.row)).toEqual([1, 2]);
    expect(result.summary.problems[1]!.reason).toMatch(/no to \(field "email"\)/);
  });

  it('refuses a template that does not compile before reading any row', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 2 });
    const config = batchConfig(dir, { batch: { templates: { subject: 'Hi {{#if name}}' } } });
    await expect(runBatch({ config, baseDir: dir, send: false, ...quiet })).rejects.toThrow(BatchInputError);
  });

  it('fails with one clear line on a missing source', async () => {
    const dir = tempDir();
    const err = await runBatch({ config: batchConfig(dir), baseDir: dir, send: false, ...quiet }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(BatchInputError);
    expect((err as Error).message).toMatch(/^source file not found: .*rows\.csv$/);
  });
});

describe('send run bookkeeping', () => {
  it('journals queued before sent for each row, with the reply and Message-ID', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 5 });
    const sent: string[] = [];
    const sender: Sender = {
      send: async (m) => {
        sent.push(String(m.messageId));
        return { accepted: [String(m.to)], rejected: [], response: '250 2.0.0 queued' };
      },
      isDeliveryUnknown: () => false,
      close: async () => {},
    };
    const result = await runBatch({ config: batchConfig(dir), baseDir: dir, send: true, sender, ...quiet });
    expect(result.exitCode).toBe(0);
    const records = [];
    for await (const r of readJournal(result.journal!)) records.push(r);
    expect(records[0]).toMatchObject({ e: 'run', run: result.summary.run });
    expect(records.at(-1)).toMatchObject({ e: 'end', status: 'completed' });
    for (let row = 1; row <= 5; row++) {
      const q = records.findIndex((r) => r.e === 'queued' && r.row === row);
      const s = records.findIndex((r) => r.e === 'sent' && r.row === row);
      expect(q).toBeGreaterThan(0);
      expect(s).toBeGreaterThan(q);
      expect(records[s]).toMatchObject({ reply: '250 2.0.0 queued', id: sent[row - 1] });
    }
  });

  it('resume sends only what is left; in-flight rows get their old Message-ID; --skip-unknown leaves them', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 20 });
    const config = batchConfig(dir, { batch: { concurrency: 1 } });
    const controller = new AbortController();
    const first: { row: number; id: string }[] = [];
    // Session 1: row 6 never answers — the process "dies" with it in flight (abort + a hung send).
    let release: () => void = () => {};
    const hung = new Promise<void>((r) => (release = r));
    const sender1: Sender = {
      send: async (m) => {
        const row = Number(/Row (\d+)/.exec(String(m.text))![1]);
        first.push({ row, id: String(m.messageId) });
        if (row === 6) {
          controller.abort();
          await hung;
          throw Object.assign(new Error('connection lost after the final dot'), { stage: 'final-reply' });
        }
        return { accepted: [String(m.to)], rejected: [], response: '250 ok' };
      },
      isDeliveryUnknown: (e) => (e as { stage?: string }).stage === 'final-reply',
      close: async () => {},
    };
    const run1 = runBatch({ config, baseDir: dir, send: true, sender: sender1, signal: controller.signal, ...quiet });
    setTimeout(release, 50);
    const r1 = await run1;
    expect(r1.exitCode).toBe(130);
    expect(first.map((f) => f.row)).toEqual([1, 2, 3, 4, 5, 6]);

    const second: { row: number; id: string }[] = [];
    const sender2: Sender = {
      send: async (m) => {
        second.push({ row: Number(/Row (\d+)/.exec(String(m.text))![1]), id: String(m.messageId) });
        return { accepted: [String(m.to)], rejected: [], response: '250 ok' };
      },
      isDeliveryUnknown: () => false,
      close: async () => {},
    };
    const r2 = await runBatch({ config, baseDir: dir, send: true, sender: sender2, resume: true, ...quiet });
    expect(r2.exitCode).toBe(0);
    expect(r2.summary.run).toBe(r1.summary.run);
    expect(second.map((s) => s.row)).toEqual([6, ...Array.from({ length: 14 }, (_, i) => i + 7)]);
    expect(second[0]!.id).toBe(first[5]!.id);
    expect(r2.summary.totals).toMatchObject({ rows: 20, sent: 20, unknown: 0 });

    // A run with nothing left to resume is refused with one line.
    await expect(runBatch({ config, baseDir: dir, send: true, sender: sender2, resume: true, ...quiet })).rejects.toThrow(/no interrupted run/);
  });

  it('--skip-unknown reports rows in flight at a crash as unknown and does not resend them', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 4 });
    const config = batchConfig(dir);
    // A crashed session: row 2 queued without an outcome, row 1 sent.
    const { openJournal, journalPath } = await import('../../runner/journal.js');
    const j = await openJournal(journalPath(path.join(dir, 'runs'), '20260101-000000-beef'));
    const source = path.join(dir, 'rows.csv');
    await j.append({ e: 'run', run: '20260101-000000-beef', at: '', source, domain: 'example.test' });
    await j.append({ e: 'session', at: '', resume: false });
    await j.append({ e: 'queued', row: 1, id: 'x' });
    await j.append({ e: 'sent', row: 1, id: 'x', to: [], reply: '250', ms: 1 });
    await j.append({ e: 'queued', row: 2, id: 'y' });
    await j.close();
    const rows: number[] = [];
    const sender: Sender = {
      send: async (m) => {
        rows.push(Number(/Row (\d+)/.exec(String(m.text))![1]));
        return { accepted: [], rejected: [], response: '250 ok' };
      },
      isDeliveryUnknown: () => false,
      close: async () => {},
    };
    const r = await runBatch({ config, baseDir: dir, send: true, sender, resume: true, skipUnknown: true, ...quiet });
    expect(rows).toEqual([3, 4]);
    expect(r.summary.totals).toMatchObject({ sent: 3, unknown: 1 });
    expect(r.summary.problems[0]).toMatchObject({ row: 2, outcome: 'unknown', messageId: expect.stringMatching(/^<20260101-000000-beef\.2\./) });
    expect(r.exitCode).toBe(1);
  });
});
