/**
 * One benchmark run in its own process: `node worker.mjs '<json task>'`. Prints one JSON line
 * `{ ok, messages, bytes, wallMs, cpuUs, maxRssKB, note? }`. CPU is process.cpuUsage() around the
 * measured part only (start-up, module loading and connection set-up are excluded); RSS is the
 * process's peak (process.resourceUsage().maxRSS) and so includes everything.
 *
 * Bundled by run.ts with esbuild so the child is plain node (no tsx loader thread in RSS/CPU).
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { SmtpClient } from '../core/client.js';
import * as payload from './payload.js';

export interface Task {
  readonly scenario: 1 | 2 | 3 | 4 | 5 | 6;
  readonly client: 'mailstage' | 'nodemailer';
  readonly host: string;
  readonly port: number;
  readonly messages: number;
  readonly connections: number;
  /** scenario 5: body size in bytes; scenario 6: the file to stream. */
  readonly bodyBytes?: number;
  readonly file?: string;
  /** scenario 3/4: absolute paths of modules that may exist (mailer, runner). */
  readonly repoRoot: string;
  readonly workDir: string;
}

export interface WorkerResult {
  readonly ok: boolean;
  readonly messages: number;
  readonly bytes: number;
  readonly wallMs: number;
  readonly cpuUs: number;
  readonly maxRssKB: number;
  readonly note?: string;
  readonly error?: string;
}

const FROM = 'bench@example.org';
const TO = 'sink@example.net';

type Measured = { messages: number; bytes: number; note?: string };

async function measure(setup: () => Promise<() => Promise<Measured>>): Promise<WorkerResult> {
  const run = await setup();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const m = await run();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return {
    ok: true, messages: m.messages, bytes: m.bytes, wallMs, cpuUs: cpu.user + cpu.system,
    maxRssKB: process.resourceUsage().maxRSS, note: m.note,
  };
}

/** Runs `count` jobs with at most `width` in flight. */
async function window(count: number, width: number, job: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lane = async () => {
    while (next < count && failed === undefined) {
      const i = next++;
      try { await job(i); } catch (e) { failed ??= e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
  if (failed !== undefined) throw failed;
}

// ---- mailstage -----------------------------------------------------------------------------------

async function msClients(t: Task): Promise<SmtpClient[]> {
  const clients = Array.from({ length: t.connections }, () => new SmtpClient({ host: t.host, port: t.port, localHostname: 'bench.example', plugins: [] }));
  for (const c of clients) { await c.connect(); await c.ehloOrHeloIfNeeded(); }
  return clients;
}

async function msQuit(clients: SmtpClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
}

/** Raw messages: each connection sends its share (pipelined batch when the client offers one). */
async function msRaw(t: Task) {
  const msg = payload.rawMessage(1024);
  const clients = await msClients(t);
  return async (): Promise<Measured> => {
    const per = splitCount(t.messages, clients.length);
    let note: string | undefined;
    await Promise.all(clients.map(async (c, k) => {
      const batch = (c as unknown as { sendBatch?: SendBatch }).sendBatch;
      if (typeof batch === 'function') {
        // Pipelined transactions: MAIL/RCPT/DATA of the next message ride with this one's terminator.
        note = 'SmtpClient.sendBatch (pipelined transactions)';
        const results = await batch.call(c, repeatItems(per[k]!, { from: FROM, to: TO, body: msg }), { window: 4 });
        const bad = results.find((r) => r.status === 'rejected');
        if (bad) throw (bad as PromiseRejectedResult).reason;
      } else {
        note = 'sequential SmtpClient.sendmail';
        for (let i = 0; i < per[k]!; i++) await c.sendmail(FROM, TO, msg);
      }
    }));
    await msQuit(clients);
    return { messages: t.messages, bytes: t.messages * msg.length, note };
  };
}

interface BatchItem { readonly from: string; readonly to: string; readonly body: Buffer }
type SendBatch = (items: Iterable<BatchItem>, options: { window: number }) => Promise<PromiseSettledResult<unknown>[]>;

function* repeatItems(n: number, item: BatchItem): Generator<BatchItem> {
  for (let i = 0; i < n; i++) yield item;
}

async function msBig(t: Task) {
  // Builds the 8 MiB pool outside the measured part; scenario 6 streams a file and never uses it (the
  // pool's construction alone peaks at ~115 MB RSS, which used to be what scenario 6 reported).
  if (!t.file) payload.dottedChunks(0).next();
  const clients = await msClients(t);
  const c = clients[0]!;
  return async (): Promise<Measured> => {
    const body = t.file ? createReadStream(t.file) : Readable.from(payload.dottedChunks(t.bodyBytes!));
    await c.sendmail(FROM, TO, body);
    await msQuit(clients);
    return { messages: 1, bytes: t.file ? (await import('node:fs')).statSync(t.file).size : t.bodyBytes! };
  };
}

/** Scenario 3: the Mailer (pool) with composed messages. */
async function msComposed(t: Task) {
  const mod = await importIfExists(t.repoRoot, 'mailer');
  if (!mod || typeof mod.createMailer !== 'function') throw new Skip('no createMailer (core/mailer.ts not written yet)');
  const createMailer = mod.createMailer as (cfg: unknown) => Promise<MailerLike> | MailerLike;
  const mailer = await createMailer({
    transport: {
      host: t.host, port: t.port, tls: 'none', localHostname: 'bench.example',
      pool: { maxConnections: t.connections, maxMessages: Number.MAX_SAFE_INTEGER },
    },
  });
  const att = payload.attachment();
  // Warm-up: opens the pool's connections outside the measured part, as for nodemailer.
  await window(t.connections * 2, t.connections * 2, () => mailer.sendMail(payload.composed(0, att)));
  return async (): Promise<Measured> => {
    await window(t.messages, t.connections * 8, (i) => mailer.sendMail(payload.composed(i, att)));
    await mailer.close();
    return { messages: t.messages, bytes: 0 };
  };
}

interface MailerLike { sendMail(m: object): Promise<unknown>; close(): Promise<void> | void }

/** Scenario 4: the batch runner (CSV rows → handlebars templates → Mailer pool), journal and all. */
async function msTemplated(t: Task) {
  const runner = await importIfExists(t.repoRoot, 'runner');
  if (!runner) throw new Skip('runner/ not found (batch runner not written yet)');
  const { runBatch, mailerSender, resolveConfig, createMailer } = runner as Record<string, (...a: any[]) => any>;
  if (typeof runBatch !== 'function' || typeof mailerSender !== 'function' || typeof resolveConfig !== 'function' || typeof createMailer !== 'function') {
    throw new Skip(`runner API not as expected (exports: ${Object.keys(runner).join(', ')})`);
  }
  const run = payload.templatedBatchSetup(t.workDir, t.messages);
  const raw = {
    transport: {
      host: t.host, port: t.port, tls: 'none', localHostname: 'bench.example',
      pool: { maxConnections: t.connections, maxMessages: Number.MAX_SAFE_INTEGER },
    },
    batch: {
      source: run.csv, from: FROM, to: 'email',
      templates: { subject: run.subject, text: run.text, html: run.html },
      concurrency: t.connections * 8,
      previewCount: 0,
      journalDir: run.journalDir,
    },
  };
  const { config } = resolveConfig(raw) as { config: unknown };
  const mailer = await createMailer(raw) as MailerLike;
  await window(t.connections * 2, t.connections * 2, () => mailer.sendMail({ from: FROM, to: TO, subject: 'warm', text: 'up' }));
  return async (): Promise<Measured> => {
    const result = await runBatch({ config, baseDir: t.workDir, send: true, sender: mailerSender(mailer), log: () => undefined, progress: { silent: true } }) as { summary: { totals?: Record<string, number> }; exitCode: number };
    await mailer.close();
    if (result.exitCode !== 0) throw new Error(`runBatch exit code ${result.exitCode}: ${JSON.stringify(result.summary.totals ?? result.summary)}`);
    return { messages: t.messages, bytes: 0 };
  };
}

// ---- nodemailer ----------------------------------------------------------------------------------

async function nmTransport(t: Task) {
  const nodemailer = (await import('nodemailer')).default;
  const tr = nodemailer.createTransport({
    host: t.host, port: t.port, secure: false, ignoreTLS: true, name: 'bench.example',
    pool: true, maxConnections: t.connections, maxMessages: Infinity,
  } as never);
  return tr as unknown as { sendMail(m: object): Promise<unknown>; close(): void };
}

async function nmRaw(t: Task) {
  const msg = payload.rawMessage(1024);
  const tr = await nmTransport(t);
  const envelope = { from: FROM, to: [TO] };
  await window(t.connections, t.connections, () => tr.sendMail({ envelope, raw: msg })); // open the pool
  return async (): Promise<Measured> => {
    await window(t.messages, t.connections * Number(process.env.NMW ?? 4), () => tr.sendMail({ envelope, raw: msg }));
    tr.close();
    return { messages: t.messages, bytes: t.messages * msg.length };
  };
}

async function nmBig(t: Task) {
  if (!t.file) payload.dottedChunks(0).next(); // as in msBig
  const tr = await nmTransport(t);
  const envelope = { from: FROM, to: [TO] };
  await tr.sendMail({ envelope, raw: 'Subject: warm\r\n\r\nup\r\n' });
  return async (): Promise<Measured> => {
    const raw = t.file ? { path: t.file } : Readable.from(payload.dottedChunks(t.bodyBytes!));
    await tr.sendMail({ envelope, raw });
    tr.close();
    return { messages: 1, bytes: t.file ? (await import('node:fs')).statSync(t.file).size : t.bodyBytes! };
  };
}

async function nmComposed(t: Task) {
  const tr = await nmTransport(t);
  const att = payload.attachment();
  await window(t.connections * 2, t.connections * 2, () => tr.sendMail(payload.composed(0, att)));
  return async (): Promise<Measured> => {
    await window(t.messages, t.connections * 8, (i) => tr.sendMail(payload.composed(i, att)));
    tr.close();
    return { messages: t.messages, bytes: 0 };
  };
}

/** Scenario 4 for nodemailer: what a user writes by hand — read the CSV, render with handlebars, send. */
async function nmTemplated(t: Task) {
  const Handlebars = (await import('handlebars')).default;
  const { readFileSync } = await import('node:fs');
  const run = payload.templatedBatchSetup(t.workDir, t.messages);
  const tr = await nmTransport(t);
  await window(t.connections, t.connections, () => tr.sendMail({ from: FROM, to: TO, subject: 'warm', text: 'up' }));
  return async (): Promise<Measured> => {
    const subject = Handlebars.compile(run.subject);
    const text = Handlebars.compile(run.text, { noEscape: true });
    const html = Handlebars.compile(run.html);
    const lines = readFileSync(run.csv, 'utf8').split('\n').filter(Boolean);
    const head = lines[0]!.split(',');
    const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
    await window(rows.length, t.connections * 8, (i) => {
      const r = rows[i]!;
      return tr.sendMail({ from: FROM, to: r.email, subject: subject(r), text: text(r), html: html(r) });
    });
    tr.close();
    return { messages: rows.length, bytes: 0 };
  };
}

// ---- plumbing ------------------------------------------------------------------------------------

class Skip extends Error {}

/** Modules run.ts bundled next to this worker when their sources exist (the Mailer, the runner). */
async function importIfExists(_root: string, name: string): Promise<Record<string, unknown> | undefined> {
  const { existsSync } = await import('node:fs');
  const url = new URL(`./${name}.js`, import.meta.url);
  if (!existsSync(url)) return undefined;
  return (await import(url.href)) as Record<string, unknown>;
}

function splitCount(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, k) => Math.floor(total / parts) + (k < total % parts ? 1 : 0));
}

const SETUPS = {
  mailstage: { 1: msRaw, 2: msRaw, 3: msComposed, 4: msTemplated, 5: msBig, 6: msBig },
  nodemailer: { 1: nmRaw, 2: nmRaw, 3: nmComposed, 4: nmTemplated, 5: nmBig, 6: nmBig },
} as const;

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2]!) as Task;
  let out: WorkerResult;
  try {
    out = await measure(() => SETUPS[task.client][task.scenario](task));
  } catch (err) {
    out = { ok: false, messages: 0, bytes: 0, wallMs: 0, cpuUs: 0, maxRssKB: process.resourceUsage().maxRSS, error: err instanceof Skip ? `skipped: ${err.message}` : String((err as Error)?.stack ?? err) };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
}

void main();
