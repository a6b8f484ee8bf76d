/** A .eml piped to `send`: exact bytes out for the bytes in. */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HEAD_LIMIT, IN_MEMORY_LIMIT, readStdinMessage, rfc5322Date } from '../../cli/stdin-message.js';

const NOW = new Date('2026-12-04T10:11:12Z');

async function bytesOf(raw: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(raw)) return raw;
  const chunks: Buffer[] = [];
  for await (const c of raw) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The input cut into pieces at the given offsets (to put chunk edges inside the header's end). */
function chunked(text: string, ...cuts: number[]): Readable {
  const bytes = Buffer.from(text);
  const edges = [0, ...cuts, bytes.length];
  return Readable.from(edges.slice(1).map((end, i) => bytes.subarray(edges[i], end)), { objectMode: true });
}

describe('a message from stdin', () => {
  it('gets Message-ID and Date on top when it has neither; everything else byte for byte', async () => {
    const eml = 'From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nbody line\r\n.dot line\r\n';
    const m = await readStdinMessage(chunked(eml, 60, 61, 62), NOW);
    const out = (await bytesOf(m.raw)).toString();
    expect(m.added).toHaveLength(2);
    expect(m.added[0]).toMatch(/^Message-ID: <[0-9a-f-]{36}@example\.test>$/);
    expect(m.added[1]).toBe('Date: Fri, 04 Dec 2026 10:11:12 +0000');
    expect(out).toBe(`${m.added[0]}\r\nDate: Fri, 04 Dec 2026 10:11:12 +0000\r\n${eml}`);
  });

  it('a message that has both is sent as it came (Bcc aside)', async () => {
    const eml = 'Date: Mon, 1 Jan 2024 00:00:00 -0500\r\nmessage-id:   <x@y>\r\nFrom: a@example.test\r\nBcc: secret@example.test,\r\n  other@example.test\r\nTo: b@example.test\r\n\r\nBcc: in the body stays\r\n';
    const m = await readStdinMessage(chunked(eml, 3), NOW);
    expect(m.added).toEqual([]);
    expect((await bytesOf(m.raw)).toString()).toBe(eml.replace('Bcc: secret@example.test,\r\n  other@example.test\r\n', ''));
    // The envelope still sees the Bcc recipients.
    expect(m.fields.map((f) => f.name)).toEqual(['Date', 'message-id', 'From', 'Bcc', 'To']);
  });

  it('keeps LF line ends when the message uses them; adds only what is missing', async () => {
    const eml = 'Message-ID: <k@example.test>\nFrom: a@example.test\n\nbody\n';
    const m = await readStdinMessage(chunked(eml), NOW);
    expect((await bytesOf(m.raw)).toString()).toBe(`Date: Fri, 04 Dec 2026 10:11:12 +0000\n${eml}`);
  });

  it('a message with headers only, and one whose From has no domain (the host name is used)', async () => {
    const m = await readStdinMessage(chunked('From: postmaster\r\nSubject: x'), NOW);
    expect(m.added[0]).toMatch(/^Message-ID: <[0-9a-f-]{36}@[A-Za-z0-9.-]+>$/);
    expect((await bytesOf(m.raw)).toString()).toMatch(/\r\nFrom: postmaster\r\nSubject: x$/);
  });

  it('a large message streams past the in-memory limit and arrives whole', async () => {
    const line = `${'q'.repeat(76)}\r\n`;
    const body = line.repeat(Math.ceil((IN_MEMORY_LIMIT + 1024 * 1024) / line.length));
    const head = 'From: a@example.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <big@x>\r\n\r\n';
    const chunks = function* (): Generator<Buffer> {
      yield Buffer.from(head);
      for (let i = 0; i < body.length; i += 65536) yield Buffer.from(body.slice(i, i + 65536));
    };
    const m = await readStdinMessage(Readable.from(chunks()), NOW);
    expect(Buffer.isBuffer(m.raw)).toBe(false);
    const out = await bytesOf(m.raw);
    expect(out.length).toBe(head.length + body.length);
    expect(out.toString()).toBe(head + body);
  });

  it('refuses empty input and input with no end to its header section', async () => {
    await expect(readStdinMessage(chunked(''), NOW)).rejects.toThrow(/stdin was empty/);
    const endless = [Buffer.from('X-A: 1\r\n'), Buffer.alloc(HEAD_LIMIT + 10, 'a'), Buffer.from('\r\n\r\nbody')];
    await expect(readStdinMessage(Readable.from(endless), NOW)).rejects.toThrow(/no end of the header section .* 256 KiB/);
  });

  it('RFC 5322 dates', () => {
    expect(rfc5322Date(new Date('2027-02-03T04:05:06Z'))).toBe('Wed, 03 Feb 2027 04:05:06 +0000');
  });
});
