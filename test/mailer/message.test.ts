/** nodemailer message objects go through the Mailer unchanged: parsed back with mailparser. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { simpleParser, type AddressObject } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailer, type Mailer } from '../../index.js';
import { configFor, countingServer, type CountingServer } from './helpers.js';

let server: CountingServer;
let mailer: Mailer;
let dir: string;
beforeAll(async () => {
  server = await countingServer({ hideDSN: false });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mailstage-mailer-'));
  mailer = createMailer(configFor(server, { pool: { maxConnections: 2 } }, {
    message: { headers: { 'X-Mailer-Default': 'from-config', 'X-Campaign': 'config-value' }, replyTo: 'config-replies@example.com' },
    envelope: { dsn: { ret: 'HDRS' } },
  }));
});
afterAll(async () => {
  await mailer.close();
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const SUBJECT = 'Grüße — a test with a long subject '.repeat(4).trim();

const addresses = (a: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => ({ name: v.name, address: v.address })));

describe('Mailer with nodemailer message objects', () => {
  it('sends every address form, attachments, an inline cid image and custom headers', async () => {
    const binary = randomBytes(5000);
    const png = randomBytes(1200);
    const pngPath = path.join(dir, 'logo.png');
    await fs.writeFile(pngPath, png);
    const info = await mailer.sendMail({
      from: { name: 'Sender Näme', address: 'sender@example.com' },
      to: ['"Alice A." <alice@example.com>', { name: 'Bob', address: 'bob@example.org' }],
      cc: 'carol@example.com, Dave <dave@example.com>',
      bcc: 'secret@example.com',
      inReplyTo: '<parent@example.com>',
      references: ['<root@example.com>', '<parent@example.com>'],
      subject: SUBJECT,
      text: 'Hello ünïcode\n',
      html: '<p>Hello <img src="cid:logo@example"></p>',
      attachments: [
        { filename: 'report.bin', content: binary },
        { filename: 'logo.png', path: pngPath, cid: 'logo@example' },
        { filename: 'notes.txt', content: 'plain text attachment' },
      ],
      headers: { 'X-Campaign': 'spring' },
      priority: 'high',
      list: { unsubscribe: 'https://example.com/unsub' },
      messageId: '<custom-id@example.com>',
      date: new Date('2026-01-02T03:04:05Z'),
    });
    expect(info.messageId).toBe('<custom-id@example.com>');
    expect(info.accepted).toEqual(['alice@example.com', 'bob@example.org', 'carol@example.com', 'dave@example.com', 'secret@example.com']);
    expect(info.rejected).toEqual([]);
    expect(info.rejectedErrors).toBeUndefined();
    expect(info.envelope).toEqual({ from: 'sender@example.com', to: info.accepted });
    expect(info.response).toMatch(/^250 /);

    const received = server.messages.find((m) => m.data.includes('custom-id@example.com'))!;
    expect(received.rcptTo.map((r) => r.address)).toEqual(info.accepted);
    expect(received.dsn?.ret).toBe('HDRS'); // envelope.dsn defaults from the config
    const raw = received.data.toString('latin1');
    expect(raw).not.toMatch(/^Bcc:/im);
    expect(raw).not.toContain('secret@example.com');
    for (const line of raw.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);

    // skipImageLinks: keep cid: references as sent (mailparser inlines them as data: URLs).
    const parsed = await simpleParser(received.data, { skipImageLinks: true });
    expect(parsed.subject).toBe(SUBJECT);
    expect(addresses(parsed.from)).toEqual([{ name: 'Sender Näme', address: 'sender@example.com' }]);
    expect(addresses(parsed.to)).toEqual([{ name: 'Alice A.', address: 'alice@example.com' }, { name: 'Bob', address: 'bob@example.org' }]);
    expect(addresses(parsed.cc)).toEqual([{ name: '', address: 'carol@example.com' }, { name: 'Dave', address: 'dave@example.com' }]);
    expect(parsed.bcc).toBeUndefined();
    expect(addresses(parsed.replyTo)).toEqual([{ name: '', address: 'config-replies@example.com' }]);
    expect(parsed.inReplyTo).toBe('<parent@example.com>');
    expect(parsed.references).toEqual(['<root@example.com>', '<parent@example.com>']);
    expect(parsed.messageId).toBe('<custom-id@example.com>');
    expect(parsed.date?.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(parsed.text).toBe('Hello ünïcode\n');
    expect(parsed.html).toContain('cid:logo@example');
    expect(parsed.headers.get('priority')).toBe('high'); // mailparser's reading of X-Priority/Importance
    expect(raw).toMatch(/^X-Priority: 1 \(Highest\)\r$/m);
    expect(parsed.headers.get('x-campaign')).toBe('spring'); // the message's header beats the config's
    expect(parsed.headers.get('x-mailer-default')).toBe('from-config');
    expect(raw).toMatch(/^List-Unsubscribe: <https:\/\/example\.com\/unsub>/m);

    const byName = new Map(parsed.attachments.map((a) => [a.filename, a]));
    expect(byName.get('report.bin')?.content.equals(binary)).toBe(true);
    expect(byName.get('notes.txt')?.content.toString()).toBe('plain text attachment');
    const logo = byName.get('logo.png')!;
    expect(logo.content.equals(png)).toBe(true);
    expect(logo.cid).toBe('logo@example');
    expect(logo.related).toBe(true);
  });

  it('sends to the envelope override only, and keeps the header recipients', async () => {
    const info = await mailer.sendMail({
      from: 'Header From <header-from@example.com>',
      to: 'header-to@example.com',
      subject: 'envelope override',
      text: 'x',
      envelope: { from: 'bounce@example.com', to: ['real-1@example.com', 'real-2@example.com'] },
    });
    expect(info.envelope).toEqual({ from: 'bounce@example.com', to: ['real-1@example.com', 'real-2@example.com'] });
    expect(info.accepted).toEqual(['real-1@example.com', 'real-2@example.com']);
    const received = server.messages.find((m) => m.data.includes('envelope override'))!;
    expect(received.from).toBe('bounce@example.com');
    expect(received.rcptTo.map((r) => r.address)).toEqual(['real-1@example.com', 'real-2@example.com']);
    const parsed = await simpleParser(received.data);
    expect(addresses(parsed.to)).toEqual([{ name: '', address: 'header-to@example.com' }]);
    expect(addresses(parsed.from)).toEqual([{ name: 'Header From', address: 'header-from@example.com' }]);
  });

  it('sends a raw message as it is, with its own Message-ID', async () => {
    const raw = 'From: raw@example.com\r\nTo: raw-to@example.com\r\nSubject: raw one\r\nMessage-ID: <raw-1@example.com>\r\n\r\nraw body\r\n';
    const info = await mailer.sendMail({ raw });
    expect(info.messageId).toBe('<raw-1@example.com>');
    expect(info.envelope).toEqual({ from: 'raw@example.com', to: ['raw-to@example.com'] });
    const received = server.messages.find((m) => m.data.includes('raw-1@example.com'))!;
    expect(received.data.toString()).toBe(raw);
  });

  it('sends a message with a stream body (tried once: a stream cannot be replayed)', async () => {
    const info = await mailer.sendMail({
      from: 'sender@example.com', to: 'stream@example.com', subject: 'streamed', text: Readable.from([Buffer.from('streamed text\n')]),
    });
    expect(info.accepted).toEqual(['stream@example.com']);
    const parsed = await simpleParser(server.messages.find((m) => m.data.includes('streamed'))!.data);
    expect(parsed.text).toBe('streamed text\n');
  });

  it('rejects invalid input with a typed, permanent error before connecting', async () => {
    const before = server.connections();
    const err = await mailer.sendMail({ from: 'sender@example.com', subject: 'no recipients', text: 'x' }).catch((e: unknown) => e);
    expect((err as { name: string }).name).toBe('SmtpInvalidInputError');
    expect((err as { permanent: boolean }).permanent).toBe(true);
    expect(server.connections()).toBe(before);
  });
});
