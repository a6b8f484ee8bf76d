/**
 * CHUNKING (RFC 3030) transcripts: BDAT sized chunks, no dot-stuffing, pipelined with MAIL/RCPT,
 * RSET after a failed chunk. (Postfix, which really offers CHUNKING, is in the interop suite.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { SmtpClient } from '../../index.js';
import { SmtpDataError, SmtpInvalidInputError } from '../../core/errors.js';
import { scriptedServer, type ScriptedServer, type Step } from '../helpers/scripted-server.js';

const open: { server: ScriptedServer; client: SmtpClient }[] = [];
afterEach(async () => {
  for (const { server, client } of open.splice(0)) {
    client.close();
    await server.close();
  }
});

async function session(script: Step[], options: Record<string, unknown> = {}) {
  const server = await scriptedServer(script);
  const client = new SmtpClient({ host: server.host, port: server.port, localHostname: 'client.test', timeouts: { command: 2000 }, ...options });
  open.push({ server, client });
  return { server, client };
}

const EHLO_CHUNKING = ['S: 220 x', 'C: EHLO client.test', 'S: 250-x', 'S: 250-PIPELINING', 'S: 250-8BITMIME', 'S: 250 CHUNKING'];

describe('BDAT', () => {
  it('a small body goes with MAIL and RCPT in one write: BDAT n LAST, no dot-stuffing, CRLF-normalised', async () => {
    const body = '.leading dot\nline\n';
    const wire = '.leading dot\r\nline\r\n';
    const { server, client } = await session([
      ...EHLO_CHUNKING,
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<b@example.org>', `C: BDAT ${wire.length} LAST`, { bytes: wire.length },
      'S: 250 2.1.0 ok', 'S: 250 2.1.5 ok', `S: 250 2.0.0 ${wire.length} octets received, queued`,
    ]);
    const r = await client.sendmail('a@example.org', 'b@example.org', body);
    expect(r.response.message).toMatch(/queued/);
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.bodies[0]!.toString()).toBe(wire);
  });

  it('a streamed body goes as several chunks, the last marked LAST', async () => {
    const part = 'x'.repeat(98) + '\r\n';
    const { server, client } = await session([
      ...EHLO_CHUNKING,
      // A stream's content is unknown up front: 8BITMIME is declared because the server offers it.
      'C: MAIL FROM:<a@example.org> BODY=8BITMIME', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'S: 250 ok',
      'C: BDAT 300', { bytes: 300 }, 'S: 250 300 octets',
      'C: BDAT 300', { bytes: 300 }, 'S: 250 300 octets',
      'C: BDAT 100 LAST', { bytes: 100 }, 'S: 250 queued',
    ], { chunkSize: 300 });
    const r = await client.sendmail('a@example.org', 'b@example.org', Readable.from(Array.from({ length: 7 }, () => Buffer.from(part))));
    expect(r.response.message).toBe('queued');
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(Buffer.concat(done.bodies).toString()).toBe(part.repeat(7));
  });

  it('a refused chunk voids the transaction: SmtpDataError, then RSET, and the session goes on', async () => {
    const { server, client } = await session([
      ...EHLO_CHUNKING,
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<b@example.org>', 'C: BDAT 5 LAST', { bytes: 5 },
      'S: 250 ok', 'S: 250 ok', 'S: 552 5.3.4 too big',
      'C: RSET', 'S: 250 ok',
      'C: NOOP', 'S: 250 alive',
    ]);
    const err = await client.sendmail('a@example.org', 'b@example.org', 'abc\r\n').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpDataError);
    expect(err.code).toBe(552);
    expect((await client.noop()).message).toBe('alive');
    expect((await server.done).errors).toEqual([]);
  });

  it('chunking: "never" uses DATA even when CHUNKING is offered', async () => {
    const { server, client } = await session([
      ...EHLO_CHUNKING,
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<b@example.org>', 'C: DATA', 'S: 250 ok', 'S: 250 ok', 'S: 354 go',
      { body: true }, 'S: 250 ok',
    ], { chunking: 'never' });
    await client.sendmail('a@example.org', 'b@example.org', '.x');
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.bodies[0]!.toString()).toBe('..x\r\n');
  });

  it('a body stream that fails mid-way is abandoned with RSET (BDAT frames stay intact)', async () => {
    const { server, client } = await session([
      ...EHLO_CHUNKING,
      'C: MAIL FROM:<a@example.org> BODY=8BITMIME', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'S: 250 ok',
      'C: BDAT 10', { bytes: 10 }, 'S: 250 ok',
      'C: RSET', 'S: 250 ok',
    ], { chunkSize: 10 });
    async function* failing() {
      yield Buffer.from('0123456789');
      throw new Error('disk read failed');
    }
    await expect(client.sendmail('a@example.org', 'b@example.org', failing())).rejects.toThrow(/disk read failed/);
    expect(client.connected).toBe(true);
    expect((await server.done).errors).toEqual([]);
  });

  it('BODY=BINARYMIME is refused unless the server offers BINARYMIME with CHUNKING', async () => {
    const { client } = await session([...EHLO_CHUNKING, 'stall']);
    await expect(client.sendmail('a@example.org', 'b@example.org', 'x', { mailOptions: { body: 'BINARYMIME' } })).rejects.toThrow(/BINARYMIME/);
    await expect(client.sendmail('a@example.org', 'b@example.org', 'x', { mailOptions: { body: 'WHATEVER' } })).rejects.toBeInstanceOf(SmtpInvalidInputError);
  });

  it('a DATA body stream that fails mid-way closes the connection (the terminator would deliver a truncated message)', async () => {
    const { server, client } = await session([
      'S: 220 x', 'C: EHLO client.test', 'S: 250 x',
      'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'C: DATA', 'S: 354 go',
      'stall',
    ]);
    async function* failing() {
      yield Buffer.from('first line\r\n');
      throw new Error('source broke');
    }
    await expect(client.sendmail('a@example.org', 'b@example.org', failing())).rejects.toThrow(/source broke/);
    expect(client.connected).toBe(false);
    await server.close();
    const lines = (await server.done).lines;
    expect(lines).not.toContain('.');
  });
});

describe('BINARYMIME', () => {
  it('a body with NUL octets goes as BODY=BINARYMIME, octet for octet (no line-end changes)', async () => {
    const body = Buffer.from([0x00, 0x0a, 0x0d, 0x2e, 0xff, 0x0a, 0x2e]);
    const { server, client } = await session([
      'S: 220 x', 'C: EHLO client.test', 'S: 250-x', 'S: 250-PIPELINING', 'S: 250-BINARYMIME', 'S: 250 CHUNKING',
      'C: MAIL FROM:<a@example.org> BODY=BINARYMIME', 'C: RCPT TO:<b@example.org>', 'C: BDAT 7 LAST', { bytes: 7 },
      'S: 250 ok', 'S: 250 ok', 'S: 250 ok',
    ]);
    await client.sendmail('a@example.org', 'b@example.org', body);
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.bodies[0]).toEqual(body);
  });
});
