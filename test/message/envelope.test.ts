import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SmtpInvalidInputError } from '../../core/errors.js';
import { envelopeFromHeaders, envelopeFromMessage, parseHeaderSection, rawBuilder } from '../../core/message/index.js';
import type { BuiltMessage, MailMessage } from '../../core/message/types.js';
import { bytesOf, readableOf } from './helpers.js';

const fieldOf = (fn: () => unknown): string | undefined => {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(SmtpInvalidInputError); return (e as SmtpInvalidInputError).field; }
  return undefined;
};

describe('envelopeFromMessage', () => {
  it('takes From and To+Cc+Bcc, deduplicated in order', () => {
    expect(envelopeFromMessage({
      from: 'Alice <alice@example.com>',
      to: ['b@example.com', 'c@example.com'], cc: 'B again <b@EXAMPLE.com>, d@example.com', bcc: ['c@example.com', 'e@example.com'],
    })).toEqual({ from: 'alice@example.com', to: ['b@example.com', 'c@example.com', 'd@example.com', 'e@example.com'] });
  });

  it('prefers Sender over From', () => {
    expect(envelopeFromMessage({ from: 'a@example.com', sender: 'list-bounces@example.com', to: 'b@example.com' }).from).toBe('list-bounces@example.com');
  });

  it('lets an explicit envelope win, field by field, and accepts the null sender', () => {
    const message: MailMessage = { from: 'a@example.com', to: 'b@example.com', envelope: { from: 'bounce@example.com', to: ['x@example.com', 'y@example.com'] } };
    expect(envelopeFromMessage(message)).toEqual({ from: 'bounce@example.com', to: ['x@example.com', 'y@example.com'] });
    expect(envelopeFromMessage({ from: 'a@example.com', to: 'b@example.com', envelope: { from: false } })).toEqual({ from: '', to: ['b@example.com'] });
    expect(envelopeFromMessage({ from: 'a@example.com', to: 'b@example.com', envelope: { to: 'z@example.com' } })).toEqual({ from: 'a@example.com', to: ['z@example.com'] });
  });

  it('uses a single Resent-* block instead of the original addresses', () => {
    expect(envelopeFromMessage({
      from: 'a@example.com', to: 'b@example.com',
      headers: { 'Resent-From': 'r@example.com', 'Resent-To': 'x@example.com, y@example.com', 'Resent-Bcc': 'z@example.com', 'Resent-Date': 'Tue, 03 Nov 2026 10:00:00 +0000' },
    })).toEqual({ from: 'r@example.com', to: ['x@example.com', 'y@example.com', 'z@example.com'] });
    expect(envelopeFromMessage({
      from: 'a@example.com', to: 'b@example.com',
      headers: { 'Resent-From': 'r@example.com', 'Resent-Sender': 'rs@example.com', 'Resent-Cc': 'x@example.com' },
    })).toEqual({ from: 'rs@example.com', to: ['x@example.com'] });
  });

  it('refuses two Resent-* blocks unless the envelope is given in full', () => {
    const message: MailMessage = {
      from: 'a@example.com', to: 'b@example.com',
      headers: { 'Resent-Date': ['Tue, 03 Nov 2026 10:00:00 +0000', 'Mon, 02 Nov 2026 10:00:00 +0000'], 'Resent-From': ['r1@example.com', 'r2@example.com'], 'Resent-To': ['x@example.com', 'y@example.com'] },
    };
    expect(fieldOf(() => envelopeFromMessage(message))).toBe('headers');
    expect(() => envelopeFromMessage(message)).toThrow(/more than one Resent-\* block/);
    expect(fieldOf(() => envelopeFromMessage({ ...message, envelope: { to: 'z@example.com' } }))).toBe('headers');
    expect(envelopeFromMessage({ ...message, envelope: { from: 'f@example.com', to: 'z@example.com' } })).toEqual({ from: 'f@example.com', to: ['z@example.com'] });
  });

  it('errors without a sender or recipients, naming the field', () => {
    expect(fieldOf(() => envelopeFromMessage({ to: 'b@example.com' }))).toBe('from');
    expect(fieldOf(() => envelopeFromMessage({ from: 'a@example.com' }))).toBe('to');
    expect(fieldOf(() => envelopeFromMessage({ from: 'a@example.com', to: 'b@example.com\r\n' }))).toBe('to');
    expect(fieldOf(() => envelopeFromMessage({ from: 'a@example.com', to: 'b@example.com', headers: { 'Resent-To': 'x@y.example' } }))).toBe('headers.Resent-From');
  });
});

describe('raw headers', () => {
  const raw = [
    'Resent-From: resender@example.com',
    'Resent-To: rr@example.com',
    'From: "Doe, Jane" <jane@example.com>',
    'To: a@example.com,',
    ' b@example.com',
    'Cc: =?UTF-8?Q?J=C3=B6rg?= <c@example.com>',
    'Message-ID: <raw-1@example.com>',
    'Subject: hi',
    '',
    'To: not-a-header@example.com',
    '',
  ].join('\n');

  it('parses and unfolds the header section only', () => {
    const fields = parseHeaderSection(raw);
    expect(fields.map((f) => f.name)).toEqual(['Resent-From', 'Resent-To', 'From', 'To', 'Cc', 'Message-ID', 'Subject']);
    expect(fields[3].value).toBe('a@example.com, b@example.com');
  });

  it('applies the same rules to raw headers', () => {
    expect(envelopeFromHeaders(parseHeaderSection(raw))).toEqual({ from: 'resender@example.com', to: ['rr@example.com'] });
    const plain = raw.split('\n').slice(2).join('\r\n');
    expect(envelopeFromHeaders(parseHeaderSection(plain))).toEqual({ from: 'jane@example.com', to: ['a@example.com', 'b@example.com', 'c@example.com'] });
  });
});

describe('rawBuilder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailstage-raw-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const text = 'From: a@example.com\nTo: b@example.com\nBcc: hidden@example.com\nMessage-ID: <m1@example.com>\n\nbody line\n.leading dot\n';
  const build = (message: MailMessage) => rawBuilder().build(message, { hostname: 'h' }) as Promise<BuiltMessage>;

  it('matches only messages with raw', () => {
    expect(rawBuilder().matches({ raw: 'x' })).toBe(true);
    expect(rawBuilder().matches({ text: 'x' })).toBe(false);
  });

  it('passes a string through untouched with the envelope from its headers', async () => {
    const built = await build({ raw: text });
    expect(built.body).toBe(text);
    expect(built.envelope).toEqual({ from: 'a@example.com', to: ['b@example.com', 'hidden@example.com'] });
    expect(built.messageId).toBe('<m1@example.com>');
    expect(built.size).toBe(Buffer.byteLength(text));
    expect(built.eightBit).toBe(false);
    expect(built.needsSmtpUtf8).toBe(false);
  });

  it('uses an explicit envelope and flags 8-bit and UTF-8 headers', async () => {
    const utf8 = 'From: jörg@example.com\r\nTo: b@example.com\r\nSubject: Grüße\r\n\r\nGrüße\r\n';
    const built = await build({ raw: Buffer.from(utf8), envelope: { from: 'x@example.com', to: ['y@example.com'] } });
    expect(built.envelope).toEqual({ from: 'x@example.com', to: ['y@example.com'] });
    expect(built.eightBit).toBe(true);
    expect(built.needsSmtpUtf8).toBe(true);
  });

  it('streams a Readable, replaying the bytes read for the headers', async () => {
    const bytes = Buffer.from(text + 'x'.repeat(100_000));
    const built = await build({ raw: readableOf(bytes, 7) });
    expect(built.envelope.from).toBe('a@example.com');
    expect(built.size).toBeUndefined();
    expect((await bytesOf(built.body)).equals(bytes)).toBe(true);
  });

  it('reads { path } lazily with a known size', async () => {
    const path = join(dir, 'm.eml');
    writeFileSync(path, text);
    const built = await build({ raw: { path } });
    expect(built.size).toBe(Buffer.byteLength(text));
    expect((await bytesOf(built.body)).toString()).toBe(text);
    expect((await bytesOf(built.body)).toString()).toBe(text); // re-iterable
    await expect(build({ raw: { path: join(dir, 'missing.eml') } })).rejects.toThrow(/raw\.path: cannot read/);
  });
});
