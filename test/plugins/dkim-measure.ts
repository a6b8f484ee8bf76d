/**
 * Measurements behind the dkim plugin's design (README.md "Figures"); not a test, run by hand:
 *   npx tsx test/plugins/dkim-measure.ts [--only cpu,spool,mailauth]
 * (pinning to one CPU steadies the figures: taskset -c 1 npx tsx …)
 *
 * cpu      per-message CPU over 2 000 templated messages (the example batch's templates and its
 *          attachment): build alone, build + split/join (the transform plumbing), build + RSA-2048
 *          signing. The budget: signing costs at most 2× the CPU of building.
 * spool    holding a 1 KB and a 20 MB body while its hash is computed: in memory / an unlinked
 *          temporary file, against rebuilding the body a second time (the builder's body is
 *          re-iterable: hash one pass, send another).
 * mailauth the same signing with mailauth 4.9.5's dkimSign, when MAILAUTH_DIR names a folder where
 *          `npm install mailauth@4.9.5` was run (it is not a dependency of mailstage).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buildMimeMessage } from '../../core/message/build.js';
import type { MailMessage } from '../../core/message/types.js';
import { createRenderer } from '../../runner/render.js';
import dkim from '../../plugins/dkim/index.js';
import { bodyCanonicalizer, LineEndNormaliser } from '../../plugins/dkim/canonicalize.js';
import { spoolBody } from '../../plugins/dkim/spool.js';
import { joinMessage, splitMessage } from './dkim-helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const only = (() => {
  const i = process.argv.indexOf('--only');
  return new Set((i >= 0 ? process.argv[i + 1]! : 'cpu,spool,mailauth').split(','));
})();
const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
const ctx = { envelope: { from: 'hello@example.com', to: ['ada@example.org'] } };

async function drain(body: unknown): Promise<number> {
  if (Buffer.isBuffer(body)) return body.length;
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) n += chunk.length;
  return n;
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

async function measure(label: string, n: number, one: (i: number) => Promise<unknown>): Promise<{ cpu: number; wall: number }> {
  for (let i = 0; i < Math.min(200, n); i++) await one(i); // warm-up
  const c = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < n; i++) await one(i);
  const result = { cpu: cpuMs(c) / n, wall: (performance.now() - t) / n };
  console.log(`  ${label.padEnd(44)} ${(result.cpu * 1000).toFixed(0).padStart(7)} µs CPU/msg ${(result.wall * 1000).toFixed(0).padStart(7)} µs wall/msg`);
  return result;
}

// ---- the templated batch message ----------------------------------------------------------------

const render = createRenderer({
  baseDir: ROOT,
  runId: 'measure',
  batch: {
    source: { path: 'examples/recipients.csv', format: 'csv' },
    templates: { subject: { path: 'examples/templates/welcome.subject.hbs' }, text: { path: 'examples/templates/welcome.text.hbs' }, html: { path: 'examples/templates/welcome.html.hbs' } },
    attachments: [{ path: 'examples/attachments/plan-{{plan}}.txt', filename: 'your-plan.txt' }],
    from: 'Stagecoach <hello@example.com>', to: 'email', concurrency: 4, previewDir: 'p', previewCount: 0, journalDir: 'j',
  } as never,
});
const templated = (i: number): MailMessage =>
  render({ index: i, line: i + 1, data: { email: `user${i}@example.org`, name: `Ada ${i}`, plan: ['free', 'pro', 'team'][i % 3], trial_days: 30, signup_date: '2026-11-02' } }).message;

async function cpuBudget(): Promise<void> {
  const N = 2000;
  const plugin = dkim({ keys: [{ domain: 'example.com', selector: 'rsa', privateKey: rsaPem }] });
  await plugin.records(); // keys loaded once, as in a long run
  console.log(`cpu: ${N} templated messages (${await drain((await buildMimeMessage(templated(0), { hostname: 'h' })).body)} bytes each)`);
  const build = await measure('build', N, async (i) => drain((await buildMimeMessage(templated(i), { hostname: 'h' })).body));
  const plumbing = await measure('build + split/join', N, async (i) => {
    const built = await splitMessage((await buildMimeMessage(templated(i), { hostname: 'h' })).body);
    return drain(joinMessage(built));
  });
  const signed = await measure('build + split + RSA-2048 sign + join', N, async (i) => {
    const built = await splitMessage((await buildMimeMessage(templated(i), { hostname: 'h' })).body);
    return drain(joinMessage(await plugin.transforms[0]!.built!(built, ctx)));
  });
  console.log(`  signing adds ${((signed.cpu - plumbing.cpu) * 1000).toFixed(0)} µs CPU/msg; build+sign = ${(signed.cpu / build.cpu).toFixed(2)}× build (budget 2×)`);
}

// ---- spool or rebuild -----------------------------------------------------------------------------

async function spoolVersusRebuild(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'mailstage-dkim-measure-'));
  const big = path.join(work, 'big.bin');
  const out = createWriteStream(big);
  for (let i = 0; i < 15; i++) out.write(Buffer.alloc(1024 * 1024, i * 7 + 1));
  await new Promise((resolve) => out.end(resolve));
  const cases: [string, MailMessage, number][] = [
    ['1 KB', { from: 'a@example.com', to: 'b@example.org', subject: 's', text: 'x'.repeat(700) }, 2000],
    ['20 MB', { from: 'a@example.com', to: 'b@example.org', subject: 's', text: 'x', attachments: [{ path: big }] }, 5],
  ];
  for (const [label, message, n] of cases) {
    const built = await buildMimeMessage(message, { hostname: 'h' });
    console.log(`spool: ${label} body (${await drain(built.body)} bytes), hash it then send it:`);
    const hashPass = async (source: AsyncIterable<Buffer> | Buffer) => {
      const c = bodyCanonicalizer('relaxed', createHash('sha256'));
      const normaliser = new LineEndNormaliser();
      for await (const chunk of Buffer.isBuffer(source) ? [source] : source) c.update(normaliser.push(chunk));
      c.update(normaliser.end());
      return c.end().digest('base64');
    };
    const viaSpool = (threshold: number) => async () => {
      const b = await buildMimeMessage(message, { hostname: 'h' });
      const c = bodyCanonicalizer('relaxed', createHash('sha256'));
      const source = Buffer.isBuffer(b.body) ? Readable.from([b.body], { objectMode: false }) : Readable.from(b.body as AsyncIterable<Buffer>, { objectMode: false });
      const spooled = await spoolBody(source, (chunk) => c.update(chunk), { threshold, tmpDir: work });
      c.end().digest('base64');
      return drain(spooled.stream());
    };
    await measure('spool in memory', n, viaSpool(Number.MAX_SAFE_INTEGER));
    await measure('spool to an unlinked temp file', n, viaSpool(0));
    await measure('rebuild: build, hash pass, build again, send', n, async () => {
      await hashPass((await buildMimeMessage(message, { hostname: 'h' })).body as Buffer);
      return drain((await buildMimeMessage(message, { hostname: 'h' })).body);
    });
    if (!Buffer.isBuffer(built.body)) {
      await measure('replay: one build, its body iterated twice', n, async () => {
        const b = await buildMimeMessage(message, { hostname: 'h' });
        await hashPass(b.body as AsyncIterable<Buffer>);
        return drain(b.body);
      });
    }
  }
  rmSync(work, { recursive: true, force: true });
}

// ---- mailauth 4.9.5 -------------------------------------------------------------------------------

async function mailauth(): Promise<void> {
  const dir = process.env.MAILAUTH_DIR;
  if (!dir) {
    console.log('mailauth: skipped (set MAILAUTH_DIR to a folder with mailauth@4.9.5 installed)');
    return;
  }
  const require = createRequire(path.join(dir, 'package.json'));
  const { dkimSign } = require('mailauth/lib/dkim/sign') as { dkimSign(input: Buffer, o: unknown): Promise<{ signatures: string; errors: unknown[] }> };
  const version = (require('mailauth/package.json') as { version: string }).version;
  const N = 2000;
  const plugin = dkim({ keys: [{ domain: 'example.com', selector: 'rsa', privateKey: rsaPem }] });
  await plugin.records();
  console.log(`mailauth ${version}: the same templated messages, RSA 2048, relaxed/relaxed`);
  await measure('ours: build + split + sign + join', N, async (i) => {
    const built = await splitMessage((await buildMimeMessage(templated(i), { hostname: 'h' })).body);
    return drain(joinMessage(await plugin.transforms[0]!.built!(built, ctx)));
  });
  await measure('mailauth: build + buffer + dkimSign + concat', N, async (i) => {
    const body = (await buildMimeMessage(templated(i), { hostname: 'h' })).body;
    const chunks: Buffer[] = [];
    if (!Buffer.isBuffer(body)) for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
    const whole = Buffer.isBuffer(body) ? body : Buffer.concat(chunks);
    const { signatures, errors } = await dkimSign(whole, { canonicalization: 'relaxed/relaxed', signatureData: [{ signingDomain: 'example.com', selector: 'rsa', privateKey: rsaPem }] });
    if (errors.length > 0) throw new Error(String(errors));
    return Buffer.concat([Buffer.from(signatures), whole]).length;
  });
  const bigBody = Buffer.alloc(20 * 1024 * 1024, 'abcdefghij\r\n');
  const headers = Buffer.from('From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\n');
  const c1 = process.cpuUsage();
  await dkimSign(Buffer.concat([headers, bigBody]), { signatureData: [{ signingDomain: 'example.com', selector: 'rsa', privateKey: rsaPem }] });
  const theirs = cpuMs(c1);
  const c2 = process.cpuUsage();
  const out = await plugin.transforms[0]!.built!({ headers: ['From: a@example.com', 'To: b@example.org', 'Subject: s'], body: Readable.from([bigBody], { objectMode: false }) }, ctx);
  await drain(out.body);
  const ours = cpuMs(c2);
  console.log(`  20 MB body, one signature: ours ${ours.toFixed(0)} ms CPU, mailauth ${theirs.toFixed(0)} ms CPU (it needs the whole message in memory)`);
}

if (only.has('cpu')) await cpuBudget();
if (only.has('spool')) await spoolVersusRebuild();
if (only.has('mailauth')) await mailauth();
