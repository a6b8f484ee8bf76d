/**
 * DKIM signatures checked by an independent verifier: Debian's dkimpy (python3-dkim), run with
 * /usr/bin/python3 and a DNS function that serves the test keys' TXT records (no DNS server).
 * Every message here is built by the default builder, run through the transforms the way core will
 * (test/plugins/dkim-helpers.ts), sent by SmtpClient to an in-process smtp-server, and the bytes the
 * server received are what dkimpy verifies.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, type Plugin } from '../../api.js';
import { SmtpClient } from '../../index.js';
import type { MailMessage } from '../../core/message/types.js';
import dkim, { type DkimOptions, type DkimPlugin } from '../../plugins/dkim/index.js';
import { bodyCanonicalizer, LineEndNormaliser } from '../../plugins/dkim/canonicalize.js';
import listUnsubscribe from '../../plugins/list-unsubscribe/index.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { GOLDEN, transformMessage } from '../plugins/dkim-helpers.js';
import { SYSTEM_PYTHON } from './servers/common.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HAVE_DKIMPY = spawnSync(SYSTEM_PYTHON, ['-c', 'import dkim'], { stdio: 'ignore' }).status === 0;

/** dkimpy: verifies every DKIM-Signature of each message file, and canonicalizes bodies on request. */
const VERIFIER = `
import sys, json, base64, dkim
from dkim.canonicalization import Simple, Relaxed
job = json.load(open(sys.argv[1]))
dns = job.get("dns", {})
def lookup(name, timeout=5):
    value = dns.get(name.decode() if isinstance(name, bytes) else name)
    return value.encode() if value is not None else None
out = {"verify": [], "canon": []}
for path in job.get("messages", []):
    msg = open(path, "rb").read()
    d = dkim.DKIM(msg, minkey=1024)
    count = len([1 for (k, v) in d.headers if k.lower() == b"dkim-signature"])
    results = []
    for i in range(count):
        try:
            results.append(bool(d.verify(idx=i, dnsfunc=lookup)))
        except dkim.DKIMException as e:
            results.append("error: %s" % e)
    out["verify"].append(results)
for mode, body in job.get("canon", []):
    algorithm = Relaxed if mode == "relaxed" else Simple
    out["canon"].append(base64.b64encode(algorithm.canonicalize_body(base64.b64decode(body))).decode())
print(json.dumps(out))
`;

interface Job {
  readonly dns?: Record<string, string>;
  readonly messages?: readonly string[];
  readonly canon?: readonly (readonly [string, string])[];
}

const work = mkdtempSync(path.join(os.tmpdir(), 'mailstage-dkim-interop-'));
let jobs = 0;

function dkimpy(job: Job): Promise<{ verify: (boolean | string)[][]; canon: string[] }> {
  const file = path.join(work, `job-${++jobs}.json`);
  writeFileSync(file, JSON.stringify(job));
  return new Promise((resolve, reject) => {
    execFile(SYSTEM_PYTHON, ['-c', VERIFIER, file], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024, env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`dkimpy failed: ${error.message}\n${stderr}`));
      resolve(JSON.parse(stdout));
    });
  });
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

/** The TXT records of a plugin's keys, a `'*'` key published under `starDomain`. */
async function dnsOf(plugin: DkimPlugin, starDomain = 'example.com'): Promise<Record<string, string>> {
  return Object.fromEntries((await plugin.records()).map((r) => [r.name.replace('<from-domain>', starDomain), r.txt]));
}

/** The message text with header folds undone, for matching tags that may sit on two lines. */
const unfolded = (data: Buffer): string => data.toString('utf8').replace(/\r\n[ \t]+/g, ' ');

const BASE: MailMessage = {
  from: 'Stagecoach <news@example.com>',
  to: 'Bob <bob@example.org>',
  subject: 'Your weekly digest',
  text: 'Hello Bob,\n\nthis week   in brief.\t\nBye  \n',
};

describe.skipIf(!HAVE_DKIMPY)(`dkimpy verifies what the dkim plugin signs${HAVE_DKIMPY ? '' : ' (skipped: /usr/bin/python3 cannot import dkim; apt-get install python3-dkim)'}`, () => {
  let server: TestSmtpServer;
  let client: SmtpClient;
  beforeAll(async () => {
    server = await startSmtpServer({ hideSTARTTLS: true, size: 64 * 1024 * 1024 });
    client = new SmtpClient({ host: '127.0.0.1', port: server.port, tls: 'none' });
  });
  afterAll(async () => {
    await client?.quit().catch(() => undefined);
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** Transforms, sends, and returns the file holding exactly what the server received. */
  async function deliver(plugins: readonly Plugin[], message: MailMessage, extra = {}): Promise<{ file: string; data: Buffer }> {
    const { envelope, stream } = await transformMessage(plugins, message, extra);
    const before = server.messages.length;
    await client.sendmail(envelope.from, [...envelope.to], stream);
    const data = server.messages[before]!.data;
    const file = path.join(work, `message-${before}.eml`);
    writeFileSync(file, data);
    return { file, data };
  }

  async function signAndVerify(options: Partial<DkimOptions>, message: MailMessage = BASE, starDomain?: string) {
    const plugin = dkim({ keys: [{ domain: 'example.com', selector: 'rsa', privateKey: rsa }], ...options });
    const { file, data } = await deliver([plugin], message);
    const { verify } = await dkimpy({ dns: await dnsOf(plugin, starDomain), messages: [file] });
    return { results: verify[0]!, data, plugin };
  }

  it('the byte-exact golden message of the unit tests verifies', async () => {
    const file = path.join(work, 'golden.eml');
    writeFileSync(file, `${[GOLDEN.signature, ...GOLDEN.headers].join('\r\n')}\r\n\r\n${GOLDEN.body}`);
    expect((await dkimpy({ dns: GOLDEN.dns, messages: [file] })).verify).toEqual([[true]]);
  });

  it.each(['relaxed/relaxed', 'simple/simple', 'relaxed/simple', 'simple/relaxed'] as const)('RSA 2048, %s', async (canonicalization) => {
    const { results, data } = await signAndVerify({ canonicalization });
    expect(results).toEqual([true]);
    expect(data.toString()).toMatch(new RegExp(`^DKIM-Signature: v=1; a=rsa-sha256; c=${canonicalization}; d=example\\.com; s=rsa;`));
  });

  it('RSA 1024 (the RFC 8301 floor) and Ed25519 alone', async () => {
    expect((await signAndVerify({ keys: [{ domain: 'example.com', selector: 'r1024', privateKey: rsa1024 }] })).results).toEqual([true]);
    expect((await signAndVerify({ keys: [{ domain: 'example.com', selector: 'ed', privateKey: ed }] })).results).toEqual([true]);
  });

  it('RSA + Ed25519 together: two signatures, both verify', async () => {
    const { results, data } = await signAndVerify({ keys: [
      { domain: 'example.com', selector: 'rsa', privateKey: rsa },
      { domain: 'example.com', selector: 'ed', privateKey: ed },
    ] });
    expect(results).toEqual([true, true]);
    expect(data.toString().match(/^DKIM-Signature: v=1; a=[a-z0-9-]+/gm)).toEqual(['DKIM-Signature: v=1; a=rsa-sha256', 'DKIM-Signature: v=1; a=ed25519-sha256']);
  });

  it('a parent-domain key and a "*" key sign a subdomain\'s mail', async () => {
    const { results, data } = await signAndVerify({ keys: [
      { domain: 'example.com', selector: 'rsa', privateKey: rsa },
      { domain: '*', selector: 'any', privateKey: ed },
    ] }, { ...BASE, from: 'news@mail.example.com' }, 'mail.example.com');
    expect(results).toEqual([true, true]);
    expect(unfolded(data)).toMatch(/d=example\.com; s=rsa;/);
    expect(unfolded(data)).toMatch(/d=mail\.example\.com; s=any;/);
  });

  it('UTF-8 headers: encoded words, a UTF-8 address (RFC 6532) with an IDN domain signed as its A-label', async () => {
    const plugin = dkim({ keys: [{ domain: 'b\u00fccher.example', selector: 'idn', privateKey: rsa, identity: 'j\u00f6rg@b\u00fccher.example' }] });
    const { file, data } = await deliver([plugin], {
      from: 'J\u00f6rg M\u00fcller <j\u00f6rg@b\u00fccher.example>',
      to: 'Ren\u00e9e <renee@example.org>',
      subject: 'Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u{1F600}',
      headers: { 'X-Note': { prepared: true, value: 'Sch\u00f6ne   Gr\u00fc\u00dfe' } },
      text: 'K\u00f6ln\n',
    });
    expect(data.toString('utf8')).toContain('From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <j\u00f6rg@b\u00fccher.example>');
    expect(unfolded(data)).toMatch(/d=xn--bcher-kva\.example; s=idn; i=j=C3=B6rg@xn--bcher-kva\.example;/);
    const { verify } = await dkimpy({ dns: await dnsOf(plugin), messages: [file] });
    expect(verify[0]).toEqual([true]);
  });

  it('folded long headers (subject, recipient list, a hand-folded field with tabs) under both header canonicalizations', async () => {
    const to = Array.from({ length: 12 }, (_, i) => `Recipient Number ${i} <recipient.number.${i}@example.org>`);
    const message: MailMessage = {
      ...BASE,
      to,
      subject: 'A subject long enough to be folded over several lines by the builder, because it keeps going and going',
      headers: { 'X-Folded': { prepared: true, value: 'first  part\r\n\t second\t part \r\n   third' } },
    };
    for (const canonicalization of ['relaxed/relaxed', 'simple/simple'] as const) {
      const { results, data } = await signAndVerify({ canonicalization, headers: ['From', 'To', 'Subject', 'X-Folded'] }, message);
      expect(results).toEqual([true]);
      expect(data.toString()).toContain('X-Folded: first  part\r\n\t second\t part \r\n   third');
      expect(unfolded(data)).toMatch(/h=from:to:subject:x-folded: ?from;/);
    }
  });

  it('a message with alternatives, an inline image and attachments (multipart/mixed > related > alternative)', async () => {
    const { results, data } = await signAndVerify({ keys: [
      { domain: 'example.com', selector: 'rsa', privateKey: rsa },
      { domain: 'example.com', selector: 'ed', privateKey: ed },
    ] }, {
      ...BASE,
      html: '<p>Hello <img src="cid:logo@example.com"></p>',
      attachments: [
        { filename: 'logo.png', content: randomBytes(3000), cid: 'logo@example.com' },
        { filename: 'report \u00e9t\u00e9.pdf', content: randomBytes(70_000) },
        { filename: 'notes.txt', content: 'line one\nline two\n' },
      ],
    });
    expect(results).toEqual([true, true]);
    expect(data.toString()).toMatch(/Content-Type: multipart\/mixed/);
    expect(data.toString()).toMatch(/multipart\/alternative/);
  });

  it('tampering: one body byte, the Subject, an added From, a re-folded signed field → fail', async () => {
    const plugin = dkim({ canonicalization: 'relaxed/relaxed', keys: [
      { domain: 'example.com', selector: 'rsa', privateKey: rsa },
      { domain: 'example.com', selector: 'ed', privateKey: ed },
    ] });
    const { data } = await deliver([plugin], BASE);
    const text = data.toString('latin1');
    const bodyAt = text.indexOf('\r\n\r\n') + 4;
    const variants = {
      original: text,
      bodyByte: `${text.slice(0, bodyAt + 2)}${text[bodyAt + 2] === 'x' ? 'y' : 'x'}${text.slice(bodyAt + 3)}`,
      subject: text.replace('Subject: Your weekly digest', 'Subject: Your weekly digesT'),
      secondFrom: text.replace('\r\nFrom: ', '\r\nFrom: Mallory <m@example.net>\r\nFrom: '),
      // relaxed ignores whitespace changes inside a field; simple would not: this one must still pass.
      refolded: text.replace('Subject: Your weekly digest', 'Subject:  Your\r\n  weekly digest'),
    };
    const files = Object.entries(variants).map(([name, content]) => {
      const file = path.join(work, `tamper-${name}.eml`);
      writeFileSync(file, Buffer.from(content, 'latin1'));
      return file;
    });
    const { verify } = await dkimpy({ dns: await dnsOf(plugin), messages: files });
    // dkimpy answers false or raises (a body hash mismatch): both are a failed verification.
    expect(Object.fromEntries(Object.keys(variants).map((name, i) => [name, verify[i]!.map((r) => r === true)]))).toEqual({
      original: [true, true],
      bodyByte: [false, false],
      subject: [false, false],
      secondFrom: [false, false],
      refolded: [true, true],
    });
  });

  it('x= in the past fails; in the future passes', async () => {
    const past = await signAndVerify({ now: () => Date.now() - 2 * 86_400_000, expiresIn: 3600 });
    expect(past.results).toEqual([expect.stringMatching(/x= value is past/)]);
    const future = await signAndVerify({ expiresIn: 7 * 86_400 });
    expect(future.results).toEqual([true]);
    expect(future.data.toString()).toMatch(/x=\d+;/);
  });

  it('list-unsubscribe before dkim: both List-Unsubscribe fields are signed (RFC 8058 §4); changing the URL breaks it', async () => {
    const secret = 'unsubscribe-secret-0123456789abcdef';
    const plugin = dkim({ keys: [{ domain: 'example.com', selector: 'rsa', privateKey: rsa }] });
    const { file, data } = await deliver(
      [listUnsubscribe({ url: 'https://example.com/unsubscribe/{token}', mailto: 'unsubscribe@example.com', secret }), plugin],
      { ...BASE, to: ['bob@example.org', 'boss@example.org'] },
      { recipient: 'bob@example.org', runId: 'run-1', row: { email: 'bob@example.org' } },
    );
    const text = data.toString();
    expect(unfolded(data)).toMatch(/h=from:to:subject:date:message-id:mime-version:content-type: ?list-unsubscribe: ?list-unsubscribe-post: ?from;/);
    expect(text).toContain('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
    const tampered = path.join(work, 'tampered-unsubscribe.eml');
    writeFileSync(tampered, text.replace('https://example.com/unsubscribe/', 'https://evil.example/unsubscribe/'));
    const { verify } = await dkimpy({ dns: await dnsOf(plugin), messages: [file, tampered] });
    expect(verify).toEqual([[true], [false]]);
  });

  it('a third-party transform written with definePlugin from the public API: its header is signed', async () => {
    const campaign = definePlugin({
      name: 'campaign-tag',
      transforms: [{
        name: 'campaign-tag',
        message: (msg) => ({ ...msg, subject: `[Weekly] ${msg.subject}` }),
        built: (built, ctx) => ({ headers: [...built.headers, `X-Campaign: ${ctx.runId}`], body: built.body }),
      }],
    });
    const plugin = dkim({ headers: ['From', 'Subject', 'X-Campaign'], keys: [{ domain: 'example.com', selector: 'ed', privateKey: ed }] });
    const { file, data } = await deliver([campaign, plugin], BASE, { runId: 'spring-2026' });
    expect(data.toString()).toContain('Subject: [Weekly] Your weekly digest');
    expect(data.toString()).toContain('X-Campaign: spring-2026');
    expect(unfolded(data)).toMatch(/h=from:subject:x-campaign: ?from;/);
    expect((await dkimpy({ dns: await dnsOf(plugin), messages: [file] })).verify).toEqual([[true]]);
  });

  it('body canonicalization equals dkimpy\'s for 300 random bodies cut into random chunks', async () => {
    const piece = fc.constantFrom('a', 'Z', ' ', '\t', '   ', '\r\n', '\r\n\r\n', '\n', '\r', '.', '\u00e9', 'x \t y');
    const samples = fc.sample(fc.tuple(fc.array(piece, { maxLength: 50 }), fc.array(fc.nat(), { maxLength: 6 })), { numRuns: 300, seed: 1301 });
    const ours: string[] = [];
    const canon: [string, string][] = [];
    for (const [pieces, cuts] of samples) {
      const body = Buffer.from(pieces.join(''), 'utf8');
      const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((x, y) => x - y);
      const chunks = [...points, body.length].map((end, i, all) => body.subarray(i === 0 ? 0 : all[i - 1], end));
      for (const mode of ['simple', 'relaxed'] as const) {
        const normaliser = new LineEndNormaliser();
        const normalised = Buffer.concat([...chunks.map((c) => normaliser.push(c)), normaliser.end()]);
        const parts: Buffer[] = [];
        const sink = { update: (b: Buffer) => { parts.push(Buffer.from(b)); return sink; } };
        const c = bodyCanonicalizer(mode, sink as never);
        c.update(normalised);
        c.end();
        ours.push(Buffer.concat(parts).toString('base64'));
        canon.push([mode, normalised.toString('base64')]);
      }
    }
    const theirs = (await dkimpy({ canon })).canon;
    expect(ours).toEqual(theirs);
  });

  it('a 20 MB message: signed with RSA + Ed25519 in a child process under 150 MB peak RSS, both verify', async () => {
    // 15 MB of attachment → about 20.3 MB of base64 in the message.
    const attachment = path.join(work, 'big.bin');
    const out = createWriteStream(attachment);
    for (let i = 0; i < 15; i++) out.write(randomBytes(1024 * 1024));
    await new Promise((resolve) => out.end(resolve));
    const spoolDir = mkdtempSync(path.join(os.tmpdir(), 'mailstage-dkim-spool-'));
    const before = server.messages.length;
    const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
    const child = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'test/plugins/dkim-big-child.ts'), String(server.port), attachment, spoolDir], {
      env: { ...process.env, DKIM_RSA: rsa, DKIM_ED: ed },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code, stderr).toBe(0);
    const figures = JSON.parse(stdout.trim()) as { code: number; maxRssKb: number; cpuMs: number };
    console.log(`20 MB message, signed and sent: peak RSS ${(figures.maxRssKb / 1024).toFixed(1)} MB, CPU ${figures.cpuMs.toFixed(0)} ms`);
    expect(figures.code).toBe(250);
    expect(figures.maxRssKb).toBeLessThan(150 * 1024);
    expect(readdirSync(spoolDir)).toEqual([]);
    rmSync(spoolDir, { recursive: true });

    const data = server.messages[before]!.data;
    expect(data.length).toBeGreaterThan(20 * 1000 * 1000);
    const file = path.join(work, 'big.eml');
    writeFileSync(file, data);
    const plugin = dkim({ keys: [
      { domain: 'example.com', selector: 'rsa', privateKey: rsa },
      { domain: 'example.com', selector: 'ed', privateKey: ed },
    ] });
    expect((await dkimpy({ dns: await dnsOf(plugin), messages: [file] })).verify).toEqual([[true, true]]);
  }, 300_000);
});
