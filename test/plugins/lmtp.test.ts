/**
 * LMTP (RFC 2033) against smtp-server in LMTP mode: LHLO, per-recipient replies after the body.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpClient, type TranscriptEvent } from '../../index.js';
import lmtp from '../../plugins/lmtp/index.js';
import { SmtpHeloError, SmtpRecipientsRefusedError } from '../../core/errors.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { scriptedServer } from '../helpers/scripted-server.js';

const servers: TestSmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** An LMTP server where recipients starting with "full" fail after DATA (a mailbox over quota). */
async function lmtpServer(): Promise<TestSmtpServer> {
  const s = await startSmtpServer({
    lmtp: true,
    hideSTARTTLS: true,
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('unknown')) return cb(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
      cb();
    },
    onMessage: (m) => m.rcptTo.map((r) => (r.address.startsWith('full')
      ? Object.assign(new Error('5.2.2 mailbox full'), { responseCode: 552 })
      : undefined)) as Array<Error | undefined>,
  });
  servers.push(s);
  return s;
}

describe('lmtp plugin', () => {
  it('sends LHLO, and each accepted recipient gets its own verdict after the body', async () => {
    const s = await lmtpServer();
    const events: TranscriptEvent[] = [];
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [lmtp()], debug: (e) => events.push(e) });
    const r = await c.sendmail('a@example.org', ['alice@example.org', 'full@example.org', 'unknown@example.org', 'bob@example.org'], 'Subject: x\r\n\r\nhi\r\n');
    expect(events.find((e) => e.direction === 'client')!.text).toMatch(/^LHLO /);
    expect(r.accepted).toEqual(['alice@example.org', 'bob@example.org']);
    expect(Object.keys(r.refused).sort()).toEqual(['full@example.org', 'unknown@example.org']);
    expect(r.refused['full@example.org']!.code).toBe(552);
    expect(r.refused['unknown@example.org']!.code).toBe(550);
    expect(r.response.code).toBe(250);
    // The session goes on.
    const r2 = await c.sendmail('a@example.org', ['bob@example.org'], 'again');
    expect(r2.accepted).toEqual(['bob@example.org']);
  });

  it('all recipients failing after the body → SmtpRecipientsRefusedError with each reply', async () => {
    const s = await lmtpServer();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [lmtp()] });
    const err = await c.sendmail('a@example.org', ['full1@example.org', 'full2@example.org'], 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect(err.recipients['full1@example.org'].code).toBe(552);
    expect(err.recipients['full2@example.org'].code).toBe(552);
  });

  it('data() after mail()/rcpt() returns every recipient\'s reply (smtplib gh-76984)', async () => {
    const s = await lmtpServer();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [lmtp()] });
    await c.connect();
    await c.ehlo();
    await c.mail('a@example.org');
    await c.rcpt('alice@example.org');
    await c.rcpt('full@example.org');
    const r = await c.data('Subject: x\r\n\r\nx\r\n');
    expect(r.recipients!['alice@example.org']!.code).toBe(250);
    expect(r.recipients!['full@example.org']!.code).toBe(552);
  });

  it('has no HELO fallback: a refused LHLO is an error', async () => {
    const script = await scriptedServer(['S: 220 lmtp', 'C: LHLO client.test', 'S: 500 no', 'stall']);
    const c = new SmtpClient({ host: '127.0.0.1', port: script.port, localHostname: 'client.test', plugins: [lmtp()] });
    try {
      const err = await c.sendmail('a@example.org', 'b@example.org', 'x').catch((e) => e);
      expect(err).toBeInstanceOf(SmtpHeloError);
    } finally {
      c.close();
      await script.close();
    }
    expect((await script.done).lines).toEqual(['LHLO client.test']);
  });

  it('defaults to port 24 and pipelines MAIL/RCPT/DATA', async () => {
    const script = await scriptedServer([
      'S: 220 lmtp', 'C: LHLO client.test', 'S: 250-lmtp', 'S: 250 PIPELINING',
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<x@example.org>', 'C: RCPT TO:<y@example.org>', 'C: DATA',
      'S: 250 ok', 'S: 250 ok', 'S: 250 ok', 'S: 354 go', { body: true },
      'S: 250 2.0.0 x delivered', 'S: 452 4.2.2 y over quota',
    ]);
    const c = new SmtpClient({ host: `127.0.0.1:${script.port}`, localHostname: 'client.test', plugins: [lmtp()] });
    try {
      const r = await c.sendmail('a@example.org', ['x@example.org', 'y@example.org'], 'x');
      expect(r.accepted).toEqual(['x@example.org']);
      expect(r.refused['y@example.org']).toMatchObject({ code: 452, enhancedCode: '4.2.2' });
      expect((await script.done).errors).toEqual([]);
    } finally {
      c.close();
      await script.close();
    }
    const { lmtp: lmtpFactory } = { lmtp };
    expect(lmtpFactory().greeting?.defaultPort).toBe(24);
  });

  it('LMTP over BDAT: per-recipient replies to BDAT … LAST', async () => {
    const script = await scriptedServer([
      'S: 220 lmtp', 'C: LHLO client.test', 'S: 250-lmtp', 'S: 250-PIPELINING', 'S: 250 CHUNKING',
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<x@example.org>', 'C: RCPT TO:<y@example.org>',
      'S: 250 ok', 'S: 250 ok', 'S: 250 ok',
      'C: BDAT 6 LAST', { bytes: 6 },
      'S: 250 2.0.0 x ok', 'S: 552 5.2.2 y full',
    ]);
    const c = new SmtpClient({ host: '127.0.0.1', port: script.port, localHostname: 'client.test', plugins: [lmtp()] });
    try {
      const r = await c.sendmail('a@example.org', ['x@example.org', 'y@example.org'], 'body\n');
      expect(r.accepted).toEqual(['x@example.org']);
      expect(r.refused['y@example.org']!.code).toBe(552);
      const done = await script.done;
      expect(done.errors).toEqual([]);
      expect(done.bodies[0]!.toString()).toBe('body\r\n');
    } finally {
      c.close();
      await script.close();
    }
  });
});
