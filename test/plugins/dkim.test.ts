/**
 * The DKIM plugin without an outside verifier (test/interop/dkim.test.ts runs dkimpy over what it
 * signs): canonicalization against RFC 6376's own example and a naive reference, key loading and
 * its errors, key choice by From domain, the signature field's tags, and the body spool's clean-up
 * on every path, a SIGKILL included.
 */
import { spawn } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, verify, createHash, type Hash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { definePlugin, env, SmtpInvalidInputError } from '../../index.js';
import dkim, { DEFAULT_SIGNED_HEADERS, DkimKeyError, DkimSigningError, DkimSpoolError } from '../../plugins/dkim/index.js';
import { bodyCanonicalizer, canonicalHeader, LineEndNormaliser } from '../../plugins/dkim/canonicalize.js';
import { fromDomain } from '../../plugins/dkim/domain.js';
import { GOLDEN, readAll, splitMessage } from './dkim-helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const RSA_PKCS1 = rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
const RSA_PKCS8 = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const ED_PEM = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

const made: string[] = [];
const tmp = (prefix = 'mailstage-dkim-test-'): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const ctx = { envelope: { from: 'news@example.com', to: ['bob@example.org'] } };

/** A Hash stand-in that records what it is fed, to see the canonical bytes themselves. */
function recorder(): Hash & { text(): string } {
  const parts: Buffer[] = [];
  const h = {
    update(data: Buffer) {
      parts.push(Buffer.from(data));
      return h;
    },
    text: () => Buffer.concat(parts).toString('latin1'),
  };
  return h as unknown as Hash & { text(): string };
}

function canonicalBody(mode: 'simple' | 'relaxed', chunks: readonly string[]): string {
  const h = recorder();
  const c = bodyCanonicalizer(mode, h);
  const n = new LineEndNormaliser();
  for (const chunk of chunks) c.update(n.push(Buffer.from(chunk, 'latin1')));
  c.update(n.end());
  c.end();
  return h.text();
}

/** RFC 6376 §3.4.3/§3.4.4 written the obvious way over a whole string (CRLF line ends). */
function naiveBody(mode: 'simple' | 'relaxed', body: string): string {
  let lines = body.split('\r\n');
  if (mode === 'relaxed') lines = lines.map((l) => l.replace(/[ \t]+$/, '').replace(/[ \t]+/g, ' '));
  let text = lines.join('\r\n');
  while (text.endsWith('\r\n')) text = text.slice(0, -2);
  if (mode === 'simple') return `${text}\r\n`;
  return text === '' ? '' : `${text}\r\n`;
}

function message(headers: string[], body: string | Buffer | Readable = 'Hello\r\n') {
  return { headers, body: body instanceof Readable ? body : Readable.from([Buffer.from(body)], { objectMode: false }) };
}

const HEADERS = [
  'From: News <news@example.com>',
  'To: bob@example.org',
  'Subject: Hello',
  'Date: Tue, 01 Dec 2026 10:00:00 +0000',
  'Message-ID: <1@example.com>',
  'X-Mailer: test',
];

/** The tags of a DKIM-Signature field. */
function tags(field: string): Record<string, string> {
  const value = field.slice(field.indexOf(':') + 1).replace(/\r\n[ \t]/g, ' ');
  return Object.fromEntries(value.split(';').map((t) => t.trim()).filter(Boolean).map((t) => {
    const eq = t.indexOf('=');
    return [t.slice(0, eq).trim(), t.slice(eq + 1).replace(/\s+/g, '')];
  }));
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('canonicalization (RFC 6376 §3.4)', () => {
  it('the RFC\'s own example (§3.4.5), header and body, both algorithms', () => {
    const a = 'A: X';
    const b = 'B : Y\t\r\n\tZ  ';
    expect(canonicalHeader(a, 'relaxed')).toBe('a:X');
    expect(canonicalHeader(b, 'relaxed')).toBe('b:Y Z');
    expect(canonicalHeader(b, 'simple')).toBe(b);
    const body = ' C \r\nD \t E\r\n\r\n\r\n';
    expect(canonicalBody('relaxed', [body])).toBe(' C\r\nD E\r\n');
    expect(canonicalBody('simple', [body])).toBe(' C \r\nD \t E\r\n');
  });

  it('empty bodies: simple is one CRLF, relaxed is empty; a last line without CRLF gets one', () => {
    expect(canonicalBody('simple', [])).toBe('\r\n');
    expect(canonicalBody('relaxed', [])).toBe('');
    expect(canonicalBody('relaxed', ['\r\n \t\r\n'])).toBe('');
    expect(canonicalBody('simple', ['\r\n\r\n'])).toBe('\r\n');
    expect(canonicalBody('simple', ['x'])).toBe('x\r\n');
    expect(canonicalBody('relaxed', ['x  '])).toBe('x\r\n');
  });

  it('any body, cut into any chunks, canonicalizes like the naive whole-string reference', () => {
    const piece = fc.constantFrom('a', 'b', ' ', '\t', '  ', '\r\n', '\r\n\r\n', 'x y', '.', '\u00e9', '\r', '\n');
    fc.assert(fc.property(fc.array(piece, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 8 }), (pieces, cuts) => {
      const body = pieces.join('');
      const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((x, y) => x - y);
      const chunks = [0, ...points, body.length].slice(1).map((end, i, all) => body.slice(i === 0 ? 0 : all[i - 1], end));
      for (const mode of ['simple', 'relaxed'] as const) {
        expect(canonicalBody(mode, chunks)).toBe(naiveBody(mode, body.replace(/\r\n|\r|\n/g, '\r\n')));
      }
    }), { numRuns: 1500 });
  });

  it('bare CR and bare LF become CRLF, also when a CRLF is cut between chunks; a last line gets its CRLF', () => {
    const n = new LineEndNormaliser();
    const out = Buffer.concat([n.push(Buffer.from('a\nb\r')), n.push(Buffer.from('\nc\r')), n.push(Buffer.from('d\r')), n.end()]).toString();
    expect(out).toBe('a\r\nb\r\nc\r\nd\r\n');
    const unterminated = new LineEndNormaliser();
    expect(Buffer.concat([unterminated.push(Buffer.from('abc')), unterminated.end()]).toString()).toBe('abc\r\n');
    expect(new LineEndNormaliser().end()).toHaveLength(0); // an empty body stays empty
    const clean = Buffer.from('x\r\ny\r\n');
    expect(new LineEndNormaliser().push(clean)).toBe(clean); // untouched chunks are not copied
  });
});

describe('the From domain', () => {
  it.each([
    ['news@example.com', 'example.com'],
    ['"Doe, John" <john@Example.COM>', 'Example.COM'],
    ['John (the <boss>, really) <j@sub.example.com> (work)', 'sub.example.com'],
    ['=?UTF-8?B?w4lsaXNl?= <e@b\u00fccher.example>', 'b\u00fccher.example'],
    ['"a@evil.example" <real@example.com>', 'example.com'],
    ['News\r\n <news@example.com>', 'example.com'],
  ])('%j → %s', (value, domain) => {
    expect(fromDomain(value)).toEqual({ domain });
  });

  it.each([
    ['a@example.com, b@example.org', /2 mailboxes/],
    ['undisclosed: a@example.com;', /group/],
    ['no-at-sign', /no domain/],
    ['"unclosed <a@b>', /unclosed quoted/],
    ['<a@b', /unclosed "<"/],
    ['', /no address/],
  ])('%j is refused', (value, reason) => {
    expect((fromDomain(value) as { error: string }).error).toMatch(reason);
  });
});

describe('keys', () => {
  it('PKCS#1 and PKCS#8 PEM, Buffers, env() (with \\n escapes) and { path } all load; RSA and Ed25519 records', async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'keys'));
    writeFileSync(path.join(dir, 'keys/ed.pem'), ED_PEM);
    const plugin = dkim({
      baseDir: dir,
      environ: { DKIM_RSA: RSA_PKCS8.replace(/\n/g, '\\n') },
      keys: [
        { domain: 'example.com', selector: 'pkcs1', privateKey: RSA_PKCS1 },
        { domain: 'example.com', selector: 'buffer', privateKey: Buffer.from(RSA_PKCS8) },
        { domain: 'example.com', selector: 'env', privateKey: env('DKIM_RSA') },
        { domain: 'b\u00fccher.example', selector: 'ed', privateKey: { path: 'keys/ed.pem' } },
      ],
    });
    const records = await plugin.records();
    const spki = createPublicKey(rsa.privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
    expect(records.slice(0, 3).map((r) => r.txt)).toEqual(Array(3).fill(`v=DKIM1; k=rsa; p=${spki}`));
    expect(records[0]).toMatchObject({ algorithm: 'rsa-sha256', bits: 2048, name: 'pkcs1._domainkey.example.com.' });
    const edRaw = Buffer.from(String(createPublicKey(ed.privateKey).export({ format: 'jwk' }).x), 'base64url');
    expect(records[3]).toMatchObject({
      algorithm: 'ed25519-sha256',
      name: 'ed._domainkey.xn--bcher-kva.example.',
      txt: `v=DKIM1; k=ed25519; p=${edRaw.toString('base64')}`,
      zoneLine: `ed._domainkey.xn--bcher-kva.example. IN TXT "v=DKIM1; k=ed25519; p=${edRaw.toString('base64')}"`,
    });
    expect(edRaw).toHaveLength(32);
  });

  it('a 2048-bit record is split into strings of at most 255 characters', async () => {
    const [record] = await dkim({ keys: [{ domain: 'example.com', selector: 's', privateKey: RSA_PKCS1 }] }).records();
    const strings = [...record!.zoneLine.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    expect(strings.length).toBe(2);
    expect(strings[0]).toHaveLength(255);
    expect(strings.join('')).toBe(record!.txt);
  });

  it('refuses RSA under 1024 bits, EC keys, non-keys, missing variables and files — naming the key, never showing it', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 768 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const dir = tmp();
    const cases: [unknown, RegExp][] = [
      [small, /^dkim\.keys\[0\]\.privateKey: s\._domainkey\.example\.com: an RSA key of 768 bits is too small; RFC 8301 requires at least 1024/],
      [ec, /an ec key cannot sign DKIM; use RSA \(rsa-sha256, at least 1024 bits\) or Ed25519/],
      ['-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n', /not a PEM private key \(PKCS#1 or PKCS#8\)/],
      [createPublicKey(rsa.privateKey).export({ type: 'spki', format: 'pem' }), /not a PEM private key/],
      [env('DKIM_NOT_SET'), /environment variable DKIM_NOT_SET is not set/],
      [{ path: 'missing.pem' }, new RegExp(`cannot read ${path.join(dir, 'missing.pem').replace(/[.]/g, '\\.')}: ENOENT`)],
      [{ path: '.' }, /not a regular file/],
    ];
    for (const [privateKey, message] of cases) {
      const plugin = dkim({ baseDir: dir, environ: {}, keys: [{ domain: 'example.com', selector: 's', privateKey: privateKey as string }] });
      const error = await plugin.records().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(DkimKeyError);
      expect(error).toBeInstanceOf(SmtpInvalidInputError);
      expect((error as Error).message).toMatch(message);
      if (typeof privateKey === 'string') {
        const body = privateKey.split('\n')[1]!;
        expect((error as Error).message).not.toContain(body.slice(0, 16));
      }
    }
  });

  it('checkKeys reports every key, good and bad, without stopping at the first', async () => {
    const plugin = dkim({ environ: {}, keys: [
      { domain: 'example.com', selector: 'a', privateKey: env('NOPE') },
      { domain: 'example.com', selector: 'b', privateKey: ED_PEM },
    ] });
    const results = await plugin.checkKeys();
    expect('error' in results[0]! && results[0].error.field).toBe('dkim.keys[0].privateKey');
    expect('record' in results[1]! && results[1].record.selector).toBe('b');
  });

  it('a relative path is read from configure()\'s folder, env() from its environment, when the options do not say', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'k.pem'), ED_PEM);
    const plugin = dkim({ keys: [
      { domain: 'example.com', selector: 's', privateKey: { path: 'k.pem' } },
      { domain: 'example.com', selector: 'e', privateKey: env('DKIM_FROM_LOADER') },
    ] });
    const before = await plugin.checkKeys();
    expect(before.map((r) => ('error' in r ? r.error.message : 'ok'))).toEqual([
      expect.stringMatching(new RegExp(`cannot read ${path.join(process.cwd(), 'k.pem').replace(/[.]/g, '\\.')}`)),
      expect.stringMatching(/environment variable DKIM_FROM_LOADER is not set/),
    ]);
    plugin.configure({ baseDir: dir, environ: { DKIM_FROM_LOADER: ED_PEM } });
    await expect(plugin.records()).resolves.toHaveLength(2);
  });

  it.each([
    [{ keys: [] }, /dkim\.keys: expected at least one key/],
    [{ keys: [{ domain: 'exa mple.com', selector: 's', privateKey: 'x' }] }, /dkim\.keys\[0\]\.domain: expected a domain name or '\*'/],
    [{ keys: [{ domain: 'example.com', selector: 's_1', privateKey: 'x' }] }, /dkim\.keys\[0\]\.selector/],
    [{ keys: [{ domain: 'example.com', selector: 's', privateKey: 42 }] }, /dkim\.keys\[0\]\.privateKey: expected a PEM string or Buffer/],
    [{ keys: [{ domain: 'example.com', selector: 's', privateKey: 'x', identity: 'x@' }] }, /dkim\.keys\[0\]\.identity/],
    [{ keys: [{ domain: 'example.com', selector: 's', privateKey: 'x' }, { domain: 'EXAMPLE.com', selector: 'S', privateKey: 'y' }] }, /dkim\.keys\[1\]: the same selector and domain as keys\[0\]/],
    [{ canonicalization: 'relaxed' }, /dkim\.canonicalization: expected one of relaxed\/relaxed, simple\/simple/],
    [{ headers: ['To', 'Subject'] }, /dkim\.headers: must include From/],
    [{ headers: ['From', 'DKIM-Signature'] }, /cannot sign DKIM-Signature/],
    [{ headers: ['From', 'Bad Name'] }, /dkim\.headers\[1\]: not a header field name/],
    [{ expiresIn: 0 }, /dkim\.expiresIn: expected a positive whole number/],
    [{ expiresIn: 60, timestamp: false }, /needs timestamp: true/],
    [{ onNoKey: 'skip' }, /dkim\.onNoKey/],
    [{ spoolThreshold: -1 }, /dkim\.spoolThreshold/],
    [{ lenght: 100 }, /dkim\.lenght: unknown option/],
  ])('bad options are refused when the plugin is made: %j', (options, message) => {
    const full = { keys: [{ domain: 'example.com', selector: 's', privateKey: 'x' }], ...options };
    expect(() => dkim(full as never)).toThrow(message);
  });
});

describe('signing', () => {
  const sign = async (options: Partial<Parameters<typeof dkim>[0]>, headers = HEADERS, body: string | Readable = 'Hello\r\n') => {
    const plugin = dkim({ keys: [{ domain: 'example.com', selector: 'rsa', privateKey: RSA_PKCS1 }], ...options });
    const out = await plugin.transforms[0]!.built!(message([...headers], body), ctx);
    return { headers: out.headers, body: await readAll(out.body) };
  };

  it('the field, byte for byte: fixed key and clock (what dkimpy verifies in the interop suite)', async () => {
    const plugin = dkim({ now: () => GOLDEN.now, keys: [{ domain: 'example.com', selector: 'ed2026', privateKey: GOLDEN.key }] });
    const out = await plugin.transforms[0]!.built!(message([...GOLDEN.headers], GOLDEN.body), ctx);
    expect(out.headers).toEqual([GOLDEN.signature, ...GOLDEN.headers]);
    expect((await readAll(out.body)).toString()).toBe(GOLDEN.body);
    expect((await plugin.records())[0]!.txt).toBe(GOLDEN.dns['ed2026._domainkey.example.com.']);
  });

  it('one DKIM-Signature on top: the contract\'s h= list (present fields only), From over-signed, t=, no l=', async () => {
    const { headers, body } = await sign({ now: () => 1_800_000_000_000 });
    expect(headers.slice(1)).toEqual(HEADERS);
    expect(body.toString()).toBe('Hello\r\n');
    const t = tags(headers[0]!);
    expect(Object.keys(t)).toEqual(['v', 'a', 'c', 'd', 's', 't', 'h', 'bh', 'b']);
    expect(t).toMatchObject({ v: '1', a: 'rsa-sha256', c: 'relaxed/relaxed', d: 'example.com', s: 'rsa', t: '1800000000' });
    expect(t.h).toBe('from:to:subject:date:message-id:from');
    expect(t.bh).toBe(createHash('sha256').update('Hello\r\n').digest('base64'));
    // Every line of the field within 78 octets.
    expect(headers[0]!.split('\r\n').every((l) => l.length <= 78)).toBe(true);
  });

  it('the signature is over the canonical header fields h= names, then the field itself with b= empty', async () => {
    const { headers } = await sign({});
    const field = headers[0]!;
    const b = tags(field).b!;
    const unsigned = field.slice(0, field.lastIndexOf('b=') + 2);
    const signedFields = ['From: News <news@example.com>', 'To: bob@example.org', 'Subject: Hello', 'Date: Tue, 01 Dec 2026 10:00:00 +0000', 'Message-ID: <1@example.com>'];
    const data = [...signedFields.map((f) => `${canonicalHeader(f, 'relaxed')}\r\n`), canonicalHeader(unsigned, 'relaxed')].join('');
    expect(verify('sha256', Buffer.from(data), createPublicKey(rsa.privateKey), Buffer.from(b, 'base64'))).toBe(true);
  });

  it('x= is t= plus expiresIn; i= in dkim-quoted-printable with an A-label domain', async () => {
    const plugin = dkim({ now: () => 1_800_000_000_000, expiresIn: 86_400, keys: [
      { domain: 'b\u00fccher.example', selector: 'ed', privateKey: ED_PEM, identity: 'n\u00e9ws;x@mail.b\u00fccher.example' },
    ] });
    const out = await plugin.transforms[0]!.built!(message(['From: n@mail.b\u00fccher.example', 'Subject: x']), ctx);
    const t = tags(out.headers[0]!);
    expect(t).toMatchObject({ a: 'ed25519-sha256', d: 'xn--bcher-kva.example', i: 'n=C3=A9ws=3Bx@mail.xn--bcher-kva.example', t: '1800000000', x: '1800086400' });
    expect(t.l).toBeUndefined();
  });

  it('keys for the From domain and its parents sign, in key order; others and "*" as configured', async () => {
    const plugin = dkim({ keys: [
      { domain: 'example.com', selector: 'parent', privateKey: RSA_PKCS1 },
      { domain: 'other.example', selector: 'other', privateKey: RSA_PKCS1 },
      { domain: 'news.example.com', selector: 'exact', privateKey: ED_PEM },
      { domain: '*', selector: 'any', privateKey: ED_PEM },
    ] });
    const out = await plugin.transforms[0]!.built!(message(['From: a@NEWS.example.com', 'To: b@example.org']), ctx);
    expect(out.headers.slice(0, 3).map((f) => [tags(f).s, tags(f).d])).toEqual([
      ['parent', 'example.com'], ['exact', 'news.example.com'], ['any', 'news.example.com'],
    ]);
    expect(out.headers[3]).toBe('From: a@NEWS.example.com');
  });

  it('repeated fields are all signed; every field the default list names is signed when present', async () => {
    const all = [
      'From: a@example.com', 'To: b@example.org', 'To: c@example.org', 'Cc: d@example.org', 'Subject: s', 'Date: d',
      'Message-ID: <m@example.com>', 'Reply-To: r@example.com', 'MIME-Version: 1.0', 'Content-Type: text/plain',
      'List-Unsubscribe: <mailto:u@example.com>', 'List-Unsubscribe-Post: List-Unsubscribe=One-Click', 'Received: x',
    ];
    const { headers } = await sign({}, all);
    expect(tags(headers[0]!).h).toBe('from:to:to:cc:subject:date:message-id:reply-to:mime-version:content-type:list-unsubscribe:list-unsubscribe-post:from');
    expect(DEFAULT_SIGNED_HEADERS).toHaveLength(11);
  });

  it('keys are read when a message first needs one: a broken key fails its own domain\'s mail, not another\'s', async () => {
    const plugin = dkim({ environ: {}, keys: [
      { domain: 'tenant-a.example', selector: 's', privateKey: env('TENANT_A_KEY') },
      { domain: 'tenant-b.example', selector: 's', privateKey: ED_PEM },
    ] });
    const b = await plugin.transforms[0]!.built!(message(['From: x@tenant-b.example']), ctx);
    expect(tags(b.headers[0]!).d).toBe('tenant-b.example');
    const body = Readable.from([Buffer.from('x')]);
    await expect(plugin.transforms[0]!.built!(message(['From: x@tenant-a.example'], body), ctx))
      .rejects.toThrow('dkim.keys[0].privateKey: s._domainkey.tenant-a.example: environment variable TENANT_A_KEY is not set');
    expect(body.destroyed).toBe(true);
  });

  it('a message with no key for its From domain is refused, or passed through untouched with onNoKey', async () => {
    const body = Readable.from([Buffer.from('x')]);
    await expect(sign({}, ['From: a@example.org'], body)).rejects.toThrow(/From: no DKIM key for example\.org \(keys: example\.com\); add one or set onNoKey/);
    expect(body.destroyed).toBe(true);
    const plugin = dkim({ onNoKey: 'send-unsigned', keys: [{ domain: 'example.com', selector: 's', privateKey: RSA_PKCS1 }] });
    const input = message(['From: a@example.org']);
    expect(await plugin.transforms[0]!.built!(input, ctx)).toBe(input);
  });

  it.each([
    [['To: b@example.org'], /the message has 0 From fields/],
    [['From: a@example.com', 'From: b@example.com'], /the message has 2 From fields/],
    [['From: a@example.com, b@example.com'], /From has 2 mailboxes/],
    [['From: a@[192.0.2.1]'], /"\[192\.0\.2\.1\]" is not a domain name DKIM can sign for/],
    [['From: a@example.com', 'Subject: x\ny'], /headers\[1\]: not a header field/],
    [['From: a@example.com', 'Subject: x\r\ny: z'], /headers\[1\]: not a header field/],
    [['From: a@example.com', 'NoColon'], /headers\[1\]: not a header field/],
  ])('refuses %j', async (headers, reason) => {
    const body = Readable.from([Buffer.from('x')]);
    const error = await sign({}, headers, body).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(DkimSigningError);
    expect((error as Error).message).toMatch(reason);
    expect(body.destroyed).toBe(true);
  });

  it('refuses a body with NUL octets (binary) instead of signing what the data stage would send differently', async () => {
    await expect(sign({}, HEADERS, 'a\0b\r\n')).rejects.toThrow(/body: has NUL octets/);
  });

  it('normalises bare LF in the body, so the bytes sent are the bytes hashed', async () => {
    const { headers, body } = await sign({ canonicalization: 'simple/simple' }, HEADERS, 'a\nb\r\n');
    expect(body.toString()).toBe('a\r\nb\r\n');
    expect(tags(headers[0]!).bh).toBe(createHash('sha256').update('a\r\nb\r\n').digest('base64'));
  });
});

describe('the body spool', () => {
  const big = (mb: number) => Readable.from((function* () {
    // 64 lines of 1 022 letters + CRLF per chunk.
    for (let i = 0; i < mb * 16; i++) yield Buffer.alloc(64 * 1024, `${String.fromCharCode(i % 26 + 97).repeat(1022)}\r\n`);
  })(), { objectMode: false });

  it('past the threshold the body goes to a file that is unlinked at once and closed when streamed', async () => {
    const dir = tmp();
    const before = fdCount();
    const plugin = dkim({ tmpDir: dir, spoolThreshold: 1024 * 1024, keys: [{ domain: 'example.com', selector: 's', privateKey: ED_PEM }] });
    const out = await plugin.transforms[0]!.built!(message([...HEADERS], big(3)), ctx);
    expect(readdirSync(dir)).toEqual([]); // nothing on disk by name…
    const open = readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } });
    expect(open.some((target) => target.startsWith(path.join(dir, 'mailstage-dkim-')) && target.endsWith('(deleted)'))).toBe(true); // …but spooled
    const body = await readAll(out.body);
    expect(body.length).toBe(3 * 1024 * 1024);
    expect(body.equals(await readAll(big(3)))).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(fdCount()).toBe(before);
  });

  it('a source that fails half-way: the error comes through, the spool file is closed and gone', async () => {
    const dir = tmp();
    const before = fdCount();
    const failing = Readable.from((function* () {
      for (let i = 0; i < 40; i++) yield Buffer.alloc(64 * 1024, 'a');
      throw new Error('attachment read failed');
    })(), { objectMode: false });
    const plugin = dkim({ tmpDir: dir, spoolThreshold: 1024, keys: [{ domain: 'example.com', selector: 's', privateKey: ED_PEM }] });
    await expect(plugin.transforms[0]!.built!(message([...HEADERS], failing), ctx)).rejects.toThrow('attachment read failed');
    expect(readdirSync(dir)).toEqual([]);
    expect(fdCount()).toBe(before);
  });

  it('a consumer that gives up (destroys the body) closes the spool file', async () => {
    const before = fdCount();
    const plugin = dkim({ tmpDir: tmp(), spoolThreshold: 1024, keys: [{ domain: 'example.com', selector: 's', privateKey: ED_PEM }] });
    const out = await plugin.transforms[0]!.built!(message([...HEADERS], big(1)), ctx);
    out.body.destroy();
    await new Promise((r) => out.body.once('close', r));
    expect(fdCount()).toBe(before);
  });

  it('an unwritable spool folder is a DkimSpoolError (transient) naming the folder', async () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere: use a path under a regular file instead.
      const file = path.join(tmp(), 'file');
      writeFileSync(file, '');
      const plugin = dkim({ tmpDir: path.join(file, 'sub'), spoolThreshold: 10, keys: [{ domain: 'example.com', selector: 's', privateKey: ED_PEM }] });
      const error = await Promise.resolve(plugin.transforms[0]!.built!(message([...HEADERS], big(1)), ctx)).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(DkimSpoolError);
      expect((error as DkimSpoolError).permanent).toBe(false);
      expect((error as Error).message).toMatch(/cannot create a spool file in .*file\/sub: ENOTDIR/);
      return;
    }
    const dir = tmp();
    chmodSync(dir, 0o500);
    const plugin = dkim({ tmpDir: dir, spoolThreshold: 10, keys: [{ domain: 'example.com', selector: 's', privateKey: ED_PEM }] });
    await expect(plugin.transforms[0]!.built!(message([...HEADERS], big(1)), ctx)).rejects.toThrow(DkimSpoolError);
  });

  it('a signer killed with SIGKILL mid-spool leaves nothing in the spool folder', async () => {
    const dir = tmp();
    const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
    const child = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'test/plugins/dkim-spool-child.ts'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('spooling')) resolve(); });
      child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    const fds = readdirSync(`/proc/${child.pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${child.pid}/fd/${fd}`); } catch { return ''; } });
    expect(fds.filter((t) => t.startsWith(dir) && t.endsWith('(deleted)'))).toHaveLength(1);
    expect(readdirSync(dir)).toEqual([]);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('the transform API (core/plugin.ts)', () => {
  it('definePlugin refuses a transform with no message() or built() function, or a hook that is not one', () => {
    expect(() => definePlugin({ name: 'x', transforms: [{ name: 'empty' }] })).toThrow('definePlugin(x): transforms[0] needs a message() or built() function');
    expect(() => definePlugin({ name: 'x', transforms: [{ built: 'nope' as never }] })).toThrow(/transforms\[0\]/);
    expect(definePlugin({ name: 'x', transforms: [{ message: (m) => m }] }).transforms).toHaveLength(1);
  });
});

describe('the split/join test helper', () => {
  it('splits at the first blank line, keeps folds, and continues the body from the same stream', async () => {
    const raw = 'From: a@example.com\r\nSubject: one\r\n two\r\n\r\nbody\r\n\r\nmore\r\n';
    const chunks = [...raw].map((c) => Buffer.from(c)); // one octet a chunk: the blank line is cut every way
    const built = await splitMessage(Readable.from(chunks, { objectMode: false }));
    expect(built.headers).toEqual(['From: a@example.com', 'Subject: one\r\n two']);
    expect((await readAll(built.body)).toString()).toBe('body\r\n\r\nmore\r\n');
  });
});
