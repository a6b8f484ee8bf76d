/**
 * The client's exact bytes against scripted servers (go-smtp's client_test.go style): each test is
 * a transcript, S: what the server says, C: what the client must send.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpClient } from '../../index.js';
import {
  SmtpDataError, SmtpHeloError, SmtpNotSupportedError, SmtpRecipientsRefusedError,
  SmtpSenderRefusedError, SmtpServerDisconnectedError, SmtpConnectError, SmtpInvalidInputError,
} from '../../core/errors.js';
import { scriptedServer, type ScriptedServer, type Step } from '../helpers/scripted-server.js';

const EHLO = 'C: EHLO client.test';
const servers: ScriptedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function session(script: Step[], options: Record<string, unknown> = {}) {
  const server = await scriptedServer(script);
  servers.push(server);
  const client = new SmtpClient({ host: server.host, port: server.port, localHostname: 'client.test', timeouts: { command: 2000, greeting: 2000 }, ...options });
  return { server, client };
}

describe('greeting and EHLO', () => {
  it('connect() reads the greeting only; EHLO fills features', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP',
      EHLO,
      'S: 250-mx.example',
      'S: 250-PIPELINING',
      'S: 250-SIZE 35882577',
      'S: 250 AUTH=PLAIN',
      'C: QUIT',
      'S: 221 bye',
    ]);
    const greeting = await client.connect();
    expect(greeting).toEqual({ code: 220, lines: ['mx.example ESMTP'], message: 'mx.example ESMTP' });
    expect(client.features.size).toBe(0);
    expect(client.doesEsmtp).toBe(false);
    const r = await client.ehlo();
    expect(r.code).toBe(250);
    expect(client.doesEsmtp).toBe(true);
    expect(client.hasExtension('PIPELINING')).toBe(true);
    expect(client.features.get('size')).toBe('35882577');
    expect(client.features.get('auth')).toBe('PLAIN');
    expect((await client.quit()).code).toBe(221);
    expect(client.features.size).toBe(0);
    expect((await server.done).errors).toEqual([]);
  });

  it('a greeting other than 220 closes and throws SmtpConnectError', async () => {
    const { client } = await session(['S: 554 5.7.1 go away', 'stall']);
    const err = await client.connect().catch((e) => e);
    expect(err).toBeInstanceOf(SmtpConnectError);
    expect(err.code).toBe(554);
    expect(err.permanent).toBe(true);
    expect(client.connected).toBe(false);
  });

  it('falls back to HELO when EHLO is refused, and then sends no ESMTP parameters', async () => {
    const { server, client } = await session([
      'S: 220 old.example SMTP',
      EHLO,
      'S: 502 command not implemented',
      'C: HELO client.test',
      'S: 250 old.example',
      'C: MAIL FROM:<a@example.org>',
      'S: 250 ok',
      'C: RCPT TO:<b@example.org>',
      'S: 250 ok',
      'C: DATA',
      'S: 354 go',
      { body: true },
      'S: 250 queued',
    ]);
    const result = await client.sendmail('a@example.org', 'b@example.org', 'hi\r\n', { mailOptions: ['BODY=8BITMIME'] });
    expect(result.response.message).toBe('queued');
    expect(client.doesEsmtp).toBe(false);
    expect(client.heloResp?.code).toBe(250);
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.bodies[0]!.toString()).toBe('hi\r\n');
  });

  it('EHLO and HELO both refused → SmtpHeloError', async () => {
    const { client } = await session(['S: 220 x', EHLO, 'S: 500 no', 'C: HELO client.test', 'S: 501 still no', 'stall']);
    const err = await client.sendmail('a@b.example', 'c@d.example', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpHeloError);
    expect(err.code).toBe(501);
  });

  it('features are empty before EHLO and after close()', async () => {
    const { client } = await session(['S: 220 x', EHLO, 'S: 250-x', 'S: 250 DSN', 'stall']);
    expect(client.features.size).toBe(0);
    await client.connect();
    await client.ehlo();
    expect(client.hasExtension('dsn')).toBe(true);
    client.close();
    expect(client.features.size).toBe(0);
    expect(client.connected).toBe(false);
  });

  it('commands before connect() fail with SmtpServerDisconnectedError', async () => {
    const client = new SmtpClient();
    await expect(client.ehlo()).rejects.toBeInstanceOf(SmtpServerDisconnectedError);
    await expect(client.noop()).rejects.toThrow(/connect\(\) first/);
  });

  it('a refused EHLO name with a control character never reaches the wire', async () => {
    const { server, client } = await session(['S: 220 x', 'C: QUIT', 'S: 221 bye']);
    await client.connect();
    await expect(client.ehlo('evil\r\nMAIL FROM:<x@y>')).rejects.toThrow(SmtpInvalidInputError);
    await client.quit();
    expect((await server.done).lines).toEqual(['QUIT']);
  });
});

describe('simple commands return replies (never throw on a code)', () => {
  it('VRFY, EXPN, HELP, NOOP, RSET and command()', async () => {
    const { server, client } = await session([
      'S: 220 x',
      'C: VRFY alice@example.org',
      'S: 252 2.0.0 cannot verify',
      'C: EXPN staff',
      'S: 250-Alice <alice@example.org>',
      'S: 250 Bob <bob@example.org>',
      'C: HELP',
      'S: 214 see RFC 5321',
      'C: HELP MAIL',
      'S: 504 no help',
      'C: NOOP',
      'S: 250 ok',
      'C: RSET',
      'S: 250 ok',
      'C: XCLIENT ADDR=1.2.3.4',
      'S: 550 denied',
    ]);
    await client.connect();
    expect((await client.verify('Alice <alice@example.org>')).code).toBe(252);
    const expn = await client.expn('staff');
    expect(expn.lines).toEqual(['Alice <alice@example.org>', 'Bob <bob@example.org>']);
    expect(expn.message).toBe('Alice <alice@example.org>\nBob <bob@example.org>');
    expect((await client.help()).code).toBe(214);
    expect((await client.help('MAIL')).code).toBe(504);
    expect((await client.noop()).code).toBe(250);
    expect((await client.rset()).code).toBe(250);
    expect((await client.command('XCLIENT', 'ADDR=1.2.3.4')).code).toBe(550);
    client.close();
    expect((await server.done).errors).toEqual([]);
  });
});

describe('sendmail', () => {
  it('pipelines MAIL, every RCPT and DATA in one write, and returns the refused map', async () => {
    const { server, client } = await session([
      'S: 220 x',
      EHLO,
      'S: 250-x',
      'S: 250 PIPELINING',
      'C: MAIL FROM:<a@example.org>',
      'C: RCPT TO:<ok@example.org>',
      'C: RCPT TO:<nobody@example.org>',
      'C: RCPT TO:<ok2@example.org>',
      'C: DATA',
      'S: 250 2.1.0 ok',
      'S: 250 2.1.5 ok',
      'S: 550 5.1.1 no such user',
      'S: 251 2.1.5 will forward',
      'S: 354 go ahead',
      { body: true },
      'S: 250 2.0.0 queued as ABC',
    ]);
    const result = await client.sendmail('a@example.org', ['ok@example.org', 'nobody@example.org', 'ok2@example.org'], 'Subject: t\n\nbody\n');
    expect(result.accepted).toEqual(['ok@example.org', 'ok2@example.org']);
    expect(Object.keys(result.refused)).toEqual(['nobody@example.org']);
    expect(result.refused['nobody@example.org']).toMatchObject({ code: 550, enhancedCode: '5.1.1' });
    expect(result.response).toMatchObject({ code: 250, enhancedCode: '2.0.0' });
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.bodies[0]!.toString()).toBe('Subject: t\r\n\r\nbody\r\n');
  });

  it('goes lock-step when PIPELINING is not offered (or disabled)', async () => {
    const { server, client } = await session([
      'S: 220 x',
      EHLO,
      'S: 250 x',
      'C: MAIL FROM:<a@example.org>',
      'S: 250 ok',
      'C: RCPT TO:<b@example.org>',
      'S: 250 ok',
      'C: DATA',
      'S: 354 go',
      { body: true },
      'S: 250 ok',
    ]);
    await client.sendmail('a@example.org', ['b@example.org'], 'x');
    expect((await server.done).errors).toEqual([]);
  });

  it('sender refused → RSET, then SmtpSenderRefusedError naming the sender', async () => {
    const { server, client } = await session([
      'S: 220 x', EHLO, 'S: 250 x',
      'C: MAIL FROM:<spam@example.org>',
      'S: 553 5.7.1 sender rejected',
      'C: RSET',
      'S: 250 ok',
      'C: NOOP',
      'S: 250 still here',
    ]);
    const err = await client.sendmail('spam@example.org', ['b@example.org'], 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpSenderRefusedError);
    expect(err.sender).toBe('spam@example.org');
    expect(err.code).toBe(553);
    expect(err.enhancedCode).toBe('5.7.1');
    expect(err.permanent).toBe(true);
    expect((await client.noop()).message).toBe('still here');
    expect((await server.done).errors).toEqual([]);
  });

  it('every recipient refused (pipelined) → RSET, SmtpRecipientsRefusedError with each reply', async () => {
    const { server, client } = await session([
      'S: 220 x', EHLO, 'S: 250-x', 'S: 250 PIPELINING',
      'C: MAIL FROM:<a@example.org>',
      'C: RCPT TO:<b@example.org>',
      'C: RCPT TO:<c@example.org>',
      'C: DATA',
      'S: 250 ok',
      'S: 550 5.1.1 no b',
      'S: 450 4.2.0 c greylisted',
      'S: 554 5.5.1 no valid recipients',
      'C: RSET',
      'S: 250 ok',
    ]);
    const err = await client.sendmail('a@example.org', ['b@example.org', 'c@example.org'], 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect(err.recipients['b@example.org'].code).toBe(550);
    expect(err.recipients['c@example.org'].code).toBe(450);
    expect(err.permanent).toBe(false); // one of them is only transient
    expect((await server.done).errors).toEqual([]);
  });

  it('a 354 to a pipelined DATA after all recipients failed is ended with an empty body, then RSET', async () => {
    const { server, client } = await session([
      'S: 220 x', EHLO, 'S: 250-x', 'S: 250 PIPELINING',
      'C: MAIL FROM:<a@example.org>',
      'C: RCPT TO:<b@example.org>',
      'C: DATA',
      'S: 250 ok',
      'S: 550 no b',
      'S: 354 go ahead anyway',
      'C: .',
      'S: 554 no recipients',
      'C: RSET',
      'S: 250 ok',
    ]);
    await expect(client.sendmail('a@example.org', ['b@example.org'], 'secret body')).rejects.toBeInstanceOf(SmtpRecipientsRefusedError);
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.lines.join('\n')).not.toContain('secret body');
  });

  it('DATA refused → RSET and SmtpDataError', async () => {
    const { server, client } = await session([
      'S: 220 x', EHLO, 'S: 250 x',
      'C: MAIL FROM:<a@example.org>', 'S: 250 ok',
      'C: RCPT TO:<b@example.org>', 'S: 250 ok',
      'C: DATA', 'S: 451 4.3.0 try later',
      'C: RSET', 'S: 250 ok',
    ]);
    const err = await client.sendmail('a@example.org', 'b@example.org', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpDataError);
    expect(err.code).toBe(451);
    expect(err.permanent).toBe(false);
    expect((await server.done).errors).toEqual([]);
  });

  it('message refused after the body → RSET and SmtpDataError; the session goes on', async () => {
    const { server, client } = await session([
      'S: 220 x', EHLO, 'S: 250-x', 'S: 250 PIPELINING',
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<b@example.org>', 'C: DATA',
      'S: 250 ok', 'S: 250 ok', 'S: 354 go',
      { body: true },
      'S: 554 5.7.1 spam',
      'C: RSET', 'S: 250 ok',
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<b@example.org>', 'C: DATA',
      'S: 250 ok', 'S: 250 ok', 'S: 354 go',
      { body: true },
      'S: 250 second ok',
    ]);
    const err = await client.sendmail('a@example.org', 'b@example.org', 'one').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpDataError);
    expect(err.stage).toBe('final-reply');
    const second = await client.sendmail('a@example.org', 'b@example.org', 'two');
    expect(second.response.message).toBe('second ok');
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.bodies.map(String)).toEqual(['one\r\n', 'two\r\n']);
  });

  it('sends the null sender as MAIL FROM:<>', async () => {
    const { server, client } = await session([
      'S: 220 x', EHLO, 'S: 250 x',
      'C: MAIL FROM:<>', 'S: 250 ok',
      'C: RCPT TO:<b@example.org>', 'S: 250 ok',
      'C: DATA', 'S: 354 go', { body: true }, 'S: 250 ok',
    ]);
    await client.sendmail('<>', 'b@example.org', 'bounce');
    expect((await server.done).errors).toEqual([]);
  });

  it('dot-stuffs and normalises every smuggling variant on the wire', async () => {
    const { server, client } = await session([
      'S: 220 x', EHLO, 'S: 250 x',
      'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok',
      'C: DATA', 'S: 354 go', { body: true }, 'S: 250 ok',
    ]);
    await client.sendmail('a@example.org', 'b@example.org', Buffer.from('.start\n.\nmid\r.\rx\n.\r\nMAIL FROM:<evil@x>\r\n.\ry'));
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.bodies[0]!.toString()).toBe('..start\r\n..\r\nmid\r\n..\r\nx\r\n..\r\nMAIL FROM:<evil@x>\r\n..\r\ny\r\n');
  });

  it('refuses CR/LF in addresses and parameters before anything is sent', async () => {
    const { server, client } = await session(['S: 220 x', EHLO, 'S: 250-x', 'S: 250 DSN', 'C: QUIT', 'S: 221 bye']);
    await client.connect();
    await client.ehlo();
    await expect(client.sendmail('a@example.org\r\nRCPT TO:<x@y>', 'b@example.org', 'x')).rejects.toThrow(/^from: /);
    await expect(client.sendmail('a@example.org', ['b@example.org', 'c@x\nDATA'], 'x')).rejects.toThrow(/^to: /);
    await expect(client.sendmail('a@example.org', 'b@example.org', 'x', { mailOptions: ['X=1\r\nRSET'] })).rejects.toThrow(SmtpInvalidInputError);
    await expect(client.sendmail('a@example.org', 'b@example.org', 'x', { rcptOptions: { dsn: { orcpt: 'x@y\r\nQUIT' } } })).rejects.toThrow(/dsn.orcpt/);
    await expect(client.mail('a@b\0c')).rejects.toThrow(/^from: /);
    await client.quit();
    const done = await server.done;
    expect(done.lines).toEqual(['EHLO client.test', 'QUIT']);
  });

  it('refuses unknown typed MAIL options', async () => {
    const { client } = await session(['S: 220 x', EHLO, 'S: 250 x', 'stall']);
    await expect(client.sendmail('a@example.org', 'b@example.org', 'x', { mailOptions: { bogus: 1 } })).rejects.toThrow(/unknown option "bogus"/);
  });
});

describe('421 and disconnects', () => {
  it.each([
    ['MAIL', ['C: MAIL FROM:<a@example.org>', 'S: 421 4.3.2 shutting down'], SmtpSenderRefusedError],
    ['RCPT', ['C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 421 4.3.2 bye'], SmtpRecipientsRefusedError],
    ['DATA', ['C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'C: DATA', 'S: 421 bye'], SmtpDataError],
    ['after the body', ['C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'C: DATA', 'S: 354 go', { body: true }, 'S: 421 bye'], SmtpDataError],
  ] as const)('421 at %s: reported, connection closed, no RSET and no QUIT', async (_at, steps, type) => {
    const { server, client } = await session(['S: 220 x', EHLO, 'S: 250 x', ...steps, 'stall']);
    const err = await client.sendmail('a@example.org', 'b@example.org', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(type);
    expect(client.connected).toBe(false);
    const done = await server.done;
    expect(done.lines).not.toContain('RSET');
    expect(done.lines).not.toContain('QUIT');
  });

  it('421 to EHLO closes: SmtpHeloError', async () => {
    const { client } = await session(['S: 220 x', EHLO, 'S: 421 too busy', 'stall']);
    const err = await client.sendmail('a@example.org', 'b@example.org', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpHeloError);
    expect(client.connected).toBe(false);
  });

  it('an unsolicited 421 while idle closes the connection; the next command reports it', async () => {
    const { client } = await session(['S: 220 x', EHLO, 'S: 250 x', { delay: 50 }, 'S: 421 idle timeout', 'stall']);
    await client.connect();
    await client.ehlo();
    await new Promise((r) => setTimeout(r, 150));
    expect(client.connected).toBe(false);
    await expect(client.noop()).rejects.toBeInstanceOf(SmtpServerDisconnectedError);
  });

  it.each([
    ['greeting', []],
    ['EHLO', ['S: 220 x', EHLO]],
    ['MAIL', ['S: 220 x', EHLO, 'S: 250 x', 'C: MAIL FROM:<a@example.org>']],
    ['RCPT', ['S: 220 x', EHLO, 'S: 250 x', 'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>']],
    ['DATA', ['S: 220 x', EHLO, 'S: 250 x', 'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'C: DATA']],
    ['final-reply', ['S: 220 x', EHLO, 'S: 250 x', 'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'C: DATA', 'S: 354 go', { body: true }]],
  ] as const)('disconnect at %s → SmtpServerDisconnectedError with that stage', async (at, steps) => {
    const { client } = await session([...steps, 'close']);
    const err = await client.sendmail('a@example.org', 'b@example.org', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    const stage = { greeting: 'greeting', EHLO: 'helo', MAIL: 'mail', RCPT: 'rcpt', DATA: 'data', 'final-reply': 'final-reply' }[at];
    expect(err.stage).toBe(stage);
    expect(err.permanent).toBe(false);
    expect(client.connected).toBe(false);
  });
});
