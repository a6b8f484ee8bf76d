import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import libmime from 'libmime';
import { simpleParser } from 'mailparser';
import { afterAll, describe, expect, it } from 'vitest';
import { SmtpInvalidInputError } from '../../core/errors.js';
import { buildMessage, defaultMessageBuilders, mimeBuilder } from '../../core/message/index.js';
import type { BuiltMessage, MailMessage } from '../../core/message/types.js';
import { bytesOf, headerSection, lineProblems, readableOf } from './helpers.js';

const ctx = { hostname: 'mx.example.test' };
const dir = mkdtempSync(join(tmpdir(), 'mailstage-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const build = (message: MailMessage): Promise<BuiltMessage> => mimeBuilder().build(message, ctx) as Promise<BuiltMessage>;

async function roundTrip(message: MailMessage) {
  const built = await build(message);
  const raw = await bytesOf(built.body);
  // keepCidLinks: compare the html as sent, not with images inlined as data: URIs
  return { built, raw, parsed: await simpleParser(raw, { keepCidLinks: true }) };
}

const subject = Array.from('Grüße aus Köln — Привет, мир! 日本語のテキスト ✉️ ', (c) => c).join('').repeat(10);
const subject240 = Array.from(subject).slice(0, 240).join('');
const text = 'Hallo Jürgen,\n\nthis is the text part with ümlauts and a long line: ' + 'ä'.repeat(300) + '\n-- \nmailstage\n';
const html = '<p>Hallo <b>Jürgen</b>, <img src="cid:logo@mailstage"></p>\n<p>' + 'x'.repeat(2000) + '</p>\n';
const png = randomBytes(3000);
const binary = randomBytes(100_003);

describe('mimeBuilder round trip (mailparser)', () => {
  const message: MailMessage = {
    from: { name: 'Jürgen Müller', address: 'juergen@example.org' },
    to: ['"Doe, Jane" <jane@example.com>', 'bob@example.com'],
    cc: 'Team: carol@example.com, dave@example.com;',
    bcc: ['secret@example.net', 'Hidden Person <hidden@example.net>'],
    subject: subject240,
    text,
    html,
    attachments: [
      { filename: 'logo.png', content: png, cid: 'logo@mailstage' },
      { filename: 'Übersicht für März – Bericht.bin', content: binary },
    ],
  };

  it('parses back to the same subject, text, html, attachment bytes and filenames', async () => {
    expect(Array.from(subject240)).toHaveLength(240);
    const { parsed } = await roundTrip(message);
    expect(parsed.subject).toBe(subject240);
    expect(parsed.text).toBe(text);
    expect(parsed.html).toBe(html);
    expect(parsed.from?.value).toEqual([{ name: 'Jürgen Müller', address: 'juergen@example.org' }]);
    const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to;
    expect(to?.value.map((a) => [a.name, a.address])).toEqual([['Doe, Jane', 'jane@example.com'], ['', 'bob@example.com']]);
    const logo = parsed.attachments.find((a) => a.cid === 'logo@mailstage');
    expect(logo?.content.equals(png)).toBe(true);
    expect(logo?.contentType).toBe('image/png');
    expect(logo?.contentDisposition).toBe('inline');
    const bin = parsed.attachments.find((a) => a.filename === 'Übersicht für März – Bericht.bin');
    expect(bin?.content.equals(binary)).toBe(true);
    expect(bin?.contentType).toBe('application/octet-stream');
  });

  it('writes CRLF only, no line over 998 octets, header lines folded to 78', async () => {
    const { raw } = await roundTrip(message);
    expect(lineProblems(raw)).toEqual([]);
    const head = headerSection(raw).split('\r\n');
    expect(head.filter((l) => Buffer.byteLength(l) > 78)).toEqual([]);
    const subjectLines = headerSection(raw).match(/^Subject:.*(\r\n[ \t].*)*/m)?.[0].split('\r\n') ?? [];
    expect(subjectLines.length).toBeGreaterThan(5);
    for (const word of headerSection(raw).match(/=\?[^?]+\?[BQ]\?[^?]*\?=/g) ?? []) expect(word.length).toBeLessThanOrEqual(75);
    // The body is 7-bit clean: every text part was encoded.
    expect([...raw.subarray(headerSection(raw).length)].every((b) => b < 0x80)).toBe(true);
  });

  it('keeps Bcc out of the message and in the envelope', async () => {
    const { built, raw, parsed } = await roundTrip(message);
    expect(raw.toString()).not.toMatch(/^bcc:/im);
    expect(raw.toString()).not.toContain('secret@example.net');
    expect(raw.toString()).not.toContain('hidden@example.net');
    expect(parsed.bcc).toBeUndefined();
    expect(built.envelope).toEqual({
      from: 'juergen@example.org',
      to: ['jane@example.com', 'bob@example.com', 'carol@example.com', 'dave@example.com', 'secret@example.net', 'hidden@example.net'],
    });
  });

  it('always has a Message-ID on the hostname and a Date', async () => {
    const { built, parsed } = await roundTrip(message);
    expect(built.messageId).toMatch(/^<[0-9a-f-]{36}@mx\.example\.test>$/);
    expect(parsed.messageId).toBe(built.messageId);
    expect(parsed.date).toBeInstanceOf(Date);
    expect(Math.abs(parsed.date!.getTime() - Date.now())).toBeLessThan(60_000);
    const again = await build(message);
    expect(again.messageId).not.toBe(built.messageId);
  });

  it('reports a size equal to the bytes and flags neither SMTPUTF8 nor 8-bit', async () => {
    const { built, raw } = await roundTrip(message);
    expect(built.size).toBe(raw.length);
    expect(built.needsSmtpUtf8).toBe(false);
    expect(built.eightBit).toBe(false);
  });

  it('nests multipart/mixed > related > alternative', async () => {
    const { raw } = await roundTrip(message);
    const types = raw.toString().match(/Content-Type: multipart\/[a-z]+/g);
    expect(types).toEqual(['Content-Type: multipart/mixed', 'Content-Type: multipart/related', 'Content-Type: multipart/alternative']);
    expect(raw.toString()).toMatch(/filename\*0\*=utf-8''/);
    expect(raw.toString()).toMatch(/name="=\?UTF-8\?/);
  });
});

describe('mimeBuilder encodings and layout', () => {
  it('sends pure short-line ASCII as 7bit, single part', async () => {
    const { raw, parsed } = await roundTrip({ from: 'a@example.com', to: 'b@example.com', subject: 'Hello', text: 'Just ASCII.\nTwo lines.\n' });
    expect(raw.toString()).toContain('Content-Transfer-Encoding: 7bit');
    expect(raw.toString()).not.toContain('multipart');
    expect(parsed.text).toBe('Just ASCII.\nTwo lines.\n');
    expect(raw.toString()).toMatch(/^Subject: Hello\r$/m);
    expect(lineProblems(raw)).toEqual([]);
  });

  it('uses quoted-printable for mostly-ASCII and base64 for mostly non-ASCII text', async () => {
    const qp = await roundTrip({ from: 'a@example.com', to: 'b@example.com', text: 'Grüße, this is mostly ASCII' });
    expect(qp.raw.toString()).toContain('Content-Transfer-Encoding: quoted-printable');
    expect(qp.parsed.text?.trimEnd()).toBe('Grüße, this is mostly ASCII');
    const b64 = await roundTrip({ from: 'a@example.com', to: 'b@example.com', text: 'Привет, мир! Как дела?' });
    expect(b64.raw.toString()).toContain('Content-Transfer-Encoding: base64');
    expect(b64.parsed.text?.trimEnd()).toBe('Привет, мир! Как дела?');
  });

  it('turns bare CR and LF in text into CRLF and wraps an ASCII line over 76', async () => {
    const { raw, parsed } = await roundTrip({ from: 'a@example.com', to: 'b@example.com', text: 'one\rtwo\nthree ' + 'y'.repeat(1200) });
    expect(lineProblems(raw)).toEqual([]);
    expect(raw.toString()).toContain('quoted-printable');
    expect(parsed.text).toBe('one\ntwo\nthree ' + 'y'.repeat(1200) + '\n');
  });

  it('builds text + html as multipart/alternative', async () => {
    const { raw, parsed } = await roundTrip({ from: 'a@example.com', to: 'b@example.com', text: 'plain', html: '<b>rich</b>' });
    expect(raw.toString()).toMatch(/^Content-Type: multipart\/alternative;\s+boundary="=_ms_alt_[0-9a-f]+"\r$/m);
    expect(parsed.text?.trimEnd()).toBe('plain');
    expect(parsed.html).toBe('<b>rich</b>');
  });

  it('builds a message of attachments alone, with string content in any encoding and a guessed type', async () => {
    const { parsed, raw } = await roundTrip({
      from: 'a@example.com', to: 'b@example.com',
      attachments: [
        { filename: 'notes.txt', content: 'aGVsbG8gd29ybGQ=', encoding: 'base64' },
        { filename: 'data.json', content: '{"a":1}' },
        { content: Buffer.from([0, 1, 2]), filename: false },
      ],
    });
    expect(lineProblems(raw)).toEqual([]);
    expect(parsed.attachments.map((a) => a.contentType)).toEqual(['text/plain', 'application/json', 'application/octet-stream']);
    expect(parsed.attachments[0].content.toString()).toBe('hello world');
    expect(parsed.attachments[1].content.toString()).toBe('{"a":1}');
    expect(parsed.attachments[2].content.equals(Buffer.from([0, 1, 2]))).toBe(true);
  });

  it('writes custom headers, replyTo, inReplyTo, references, priority, list and date', async () => {
    const { raw, parsed } = await roundTrip({
      from: 'a@example.com', to: 'b@example.com', text: 'x',
      replyTo: 'Support Desk <support@example.com>',
      inReplyTo: 'prev@example.com',
      references: ['<one@example.com>', 'two@example.com'],
      priority: 'high',
      date: new Date('2026-11-03T10:20:30Z'),
      messageId: 'fixed-id@example.com',
      list: { unsubscribe: [{ url: 'https://example.com/u?id=1', comment: 'Unsubscribe' }, 'unsub@example.com'], help: 'help@example.com?subject=help', id: { url: 'news.example.com', comment: 'News' } },
      headers: {
        'X-Campaign': 'autumn',
        'X-Multi': ['one', 'two'],
        'X-Prepared': { prepared: true, value: 'already\r\n folded' },
        'X-Unicode': 'Größe ist relativ',
      },
    });
    const head = headerSection(raw);
    expect(head).toMatch(/^Reply-To: Support Desk <support@example\.com>$/m);
    expect(head).toMatch(/^In-Reply-To: <prev@example\.com>$/m);
    expect(head).toMatch(/^References: <one@example\.com> <two@example\.com>$/m);
    expect(head).toMatch(/^X-Priority: 1 \(Highest\)$/m);
    expect(head).toMatch(/^Importance: High$/m);
    expect(head).toMatch(/^Date: Tue, 03 Nov 2026 10:20:30 \+0000$/m);
    expect(head).toMatch(/^Message-ID: <fixed-id@example\.com>$/m);
    expect(head).toMatch(/^List-Unsubscribe: <https:\/\/example\.com\/u\?id=1> \(Unsubscribe\),\r\n <mailto:unsub@example\.com>$/m);
    expect(head).toMatch(/^List-Help: <mailto:help@example\.com\?subject=help>$/m);
    expect(head).toMatch(/^List-ID: "News" <news\.example\.com>$/m);
    expect(head).toMatch(/^X-Multi: one\r\nX-Multi: two$/m);
    expect(head).toMatch(/^X-Prepared: already\r\n folded$/m);
    expect(libmime.decodeWords(String(parsed.headers.get('x-unicode')))).toBe('Größe ist relativ');
    expect(parsed.date?.toISOString()).toBe('2026-11-03T10:20:30.000Z');
    expect(lineProblems(raw)).toEqual([]);
  });

  it('lets a custom header replace a generated one but never emits a Bcc header', async () => {
    const { raw, built } = await roundTrip({ from: 'a@example.com', to: 'b@example.com', text: 'x', headers: { Subject: 'from headers', Bcc: 'hidden@example.com' } });
    expect(raw.toString().match(/^Subject:.*$/gm)).toEqual(['Subject: from headers']);
    expect(raw.toString()).not.toContain('hidden@example.com');
    expect(built.envelope.to).toEqual(['b@example.com', 'hidden@example.com']);
  });

  it('keeps a UTF-8 address as UTF-8 and flags SMTPUTF8', async () => {
    const { built, raw, parsed } = await roundTrip({ from: 'Jörg <jörg@bücher.example>', to: 'b@example.com', text: 'x' });
    expect(raw.toString('utf8')).toContain('<jörg@bücher.example>');
    expect(headerSection(raw)).toMatch(/^From: =\?UTF-8\?Q\?J=C3=B6rg\?= <jörg@bücher\.example>$/m);
    expect(built.needsSmtpUtf8).toBe(true);
    expect(built.eightBit).toBe(true);
    expect(built.envelope.from).toBe('jörg@bücher.example');
    expect(parsed.from?.value[0].name).toBe('Jörg');
  });

  it('reads text and attachments from Readable and { path }', async () => {
    const file = join(dir, 'small.bin');
    const bytes = randomBytes(4321);
    writeFileSync(file, bytes);
    const streamed = randomBytes(7777);
    const built = await build({
      from: 'a@example.com', to: 'b@example.com',
      text: readableOf(Buffer.from('streamed text\n')),
      attachments: [{ path: file }, { filename: 's.bin', content: readableOf(streamed, 1001) }],
    });
    expect(built.size).toBeUndefined(); // a Readable's length is unknown
    const raw = await bytesOf(built.body);
    expect(lineProblems(raw)).toEqual([]);
    const parsed = await simpleParser(raw);
    expect(parsed.text).toBe('streamed text\n');
    expect(parsed.attachments.map((a) => a.filename)).toEqual(['small.bin', 's.bin']);
    expect(parsed.attachments[0].content.equals(bytes)).toBe(true);
    expect(parsed.attachments[1].content.equals(streamed)).toBe(true);
  });

  it('knows the exact size of a message with a file attachment, and can be read twice', async () => {
    for (const n of [0, 1, 56, 57, 58, 114, 1000, 65_536 * 3 + 7]) {
      const file = join(dir, `f${n}.bin`);
      writeFileSync(file, randomBytes(n));
      const built = await build({ from: 'a@example.com', to: 'b@example.com', text: 'x', attachments: [{ path: file }] });
      const first = await bytesOf(built.body);
      expect(built.size).toBe(first.length);
      expect((await bytesOf(built.body)).equals(first)).toBe(true);
      expect(lineProblems(first)).toEqual([]);
    }
  });

  it('chooses raw before the default builder', async () => {
    const raw = 'From: a@example.com\r\nTo: b@example.com\r\nSubject: raw\r\n\r\nbody\r\n';
    const viaRaw = await buildMessage({ raw }, defaultMessageBuilders(), ctx);
    expect(viaRaw.body).toBe(raw);
    const viaMime = await buildMessage({ from: 'a@example.com', to: 'b@example.com', text: 'x' }, defaultMessageBuilders(), ctx);
    expect(Buffer.isBuffer(viaMime.body)).toBe(true);
    await expect(buildMessage({ text: 'x' }, [], ctx)).rejects.toThrow(/no message builder/);
  });
});

describe('injection and bad input are refused, naming the field', () => {
  const base: MailMessage = { from: 'a@example.com', to: 'b@example.com', text: 'x' };
  const cases: [string, MailMessage, string][] = [
    ['subject', { ...base, subject: 'hi\r\nBcc: victim@example.com' }, 'subject'],
    ['subject LF', { ...base, subject: 'hi\nX: y' }, 'subject'],
    ['header value', { ...base, headers: { 'X-A': 'v\r\nX-Injected: 1' } }, 'headers.X-A'],
    ['header name', { ...base, headers: { 'X A': 'v' } }, 'headers.X A'],
    ['header name colon', { ...base, headers: { 'X-A:B': 'v' } }, 'headers.X-A:B'],
    ['prepared bare LF', { ...base, headers: { 'X-P': { prepared: true, value: 'a\nb' } } }, 'headers.X-P'],
    ['prepared CRLF without fold', { ...base, headers: { 'X-P': { prepared: true, value: 'a\r\nX-Injected: 1' } } }, 'headers.X-P'],
    ['protected header', { ...base, headers: { 'Content-Type': 'text/html' } }, 'headers.Content-Type'],
    ['to name', { ...base, to: { name: 'Eve\r\nBcc: x@y.z', address: 'e@example.com' } }, 'to'],
    ['to address', { ...base, to: 'e@example.com\r\nRCPT TO:<x@y.z>' }, 'to'],
    ['from address NUL', { ...base, from: 'a\0@example.com' }, 'from'],
    ['cc object address', { ...base, cc: [{ address: 'c@example.com\n' }] }, 'cc'],
    ['bcc', { ...base, bcc: 'x@y.z\r\n' }, 'bcc'],
    ['replyTo', { ...base, replyTo: 'x@y.z\r\nX: 1' }, 'replyTo'],
    ['filename', { ...base, attachments: [{ filename: 'a\r\nContent-Type: text/html', content: 'x' }] }, 'attachments[0].filename'],
    ['cid', { ...base, html: '<p/>', attachments: [{ filename: 'a.png', content: 'x', cid: 'a\r\nb' }] }, 'attachments[0].cid'],
    ['contentType', { ...base, attachments: [{ filename: 'a', content: 'x', contentType: 'text/plain\r\nX: 1' }] }, 'attachments[0].contentType'],
    ['attachment header', { ...base, attachments: [{ filename: 'a', content: 'x', headers: { 'X-A': 'v\nw' } }] }, 'attachments[0].headers.X-A'],
    ['messageId', { ...base, messageId: '<a@b>\r\nX: 1' }, 'messageId'],
    ['inReplyTo', { ...base, inReplyTo: 'a@b\r\n' }, 'inReplyTo'],
    ['references', { ...base, references: ['a@b', 'c@d\nX: 1'] }, 'references'],
    ['list', { ...base, list: { unsubscribe: 'https://x\r\nBcc: y@z' } }, 'list.unsubscribe'],
    ['bad date', { ...base, date: 'not a date' }, 'date'],
    ['bad address', { ...base, to: 'not an address' }, 'to'],
  ];
  it.each(cases)('%s', async (_label, message, field) => {
    const error = await build(message).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(SmtpInvalidInputError);
    expect((error as SmtpInvalidInputError).field).toBe(field);
  });
});
