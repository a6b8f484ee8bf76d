/**
 * SmtpClient against smtp-server (npm) in-process: a real, independent SMTP implementation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpClient, type TranscriptEvent } from '../../index.js';
import { SmtpNotSupportedError, SmtpRecipientsRefusedError, SmtpError } from '../../core/errors.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const servers: TestSmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(options: Parameters<typeof startSmtpServer>[0] = {}): Promise<TestSmtpServer> {
  const s = await startSmtpServer(options);
  servers.push(s);
  return s;
}

const MSG = 'From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\nHello.\r\n';

describe('plaintext', () => {
  it('sends one message; the server receives the exact envelope and body', async () => {
    const s = await server({ hideSTARTTLS: true });
    await using c = new SmtpClient({ host: `127.0.0.1:${s.port}` });
    const r = await c.sendmail('a@example.org', ['b@example.org', 'c@example.org'], MSG);
    expect(r.accepted).toEqual(['b@example.org', 'c@example.org']);
    expect(r.refused).toEqual({});
    expect(r.response.code).toBe(250);
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]!.from).toBe('a@example.org');
    expect(s.messages[0]!.rcptTo.map((a) => a.address)).toEqual(['b@example.org', 'c@example.org']);
    expect(s.messages[0]!.data.toString()).toBe(MSG);
    expect(s.messages[0]!.secure).toBe(false);
  });

  it('sends several messages on one connection, with and without pipelining', async () => {
    for (const pipelining of ['auto', 'never'] as const) {
      const s = await server({ hideSTARTTLS: true });
      const events: TranscriptEvent[] = [];
      await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, pipelining, debug: (e) => events.push(e) });
      for (let i = 0; i < 5; i++) await c.sendmail('a@example.org', `r${i}@example.org`, `Subject: ${i}\r\n\r\nbody ${i}\r\n`);
      expect(s.messages.map((m) => m.data.toString())).toEqual([0, 1, 2, 3, 4].map((i) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`));
      expect(s.connections()).toBe(1);
      // Pipelined: the client writes MAIL, RCPT and DATA before the server's first reply.
      const firstMail = events.findIndex((e) => e.text.startsWith('MAIL FROM'));
      const sequence = events.slice(firstMail, firstMail + 4).map((e) => `${e.direction}:${e.text.split(' ')[0]}`);
      if (pipelining === 'auto') expect(sequence).toEqual(['client:MAIL', 'client:RCPT', 'client:DATA', 'server:250']);
      else expect(sequence).toEqual(['client:MAIL', 'server:250', 'client:RCPT', 'server:250']);
    }
  });

  it('1 000 messages over one pipelined connection', async () => {
    const s = await server({ hideSTARTTLS: true });
    let pipelinedGroups = 0;
    let last = '';
    await using c = new SmtpClient({
      host: '127.0.0.1', port: s.port,
      debug: (e) => {
        if (e.direction === 'client' && e.text === 'DATA' && last.startsWith('RCPT')) pipelinedGroups++;
        last = e.text;
      },
    });
    for (let i = 0; i < 1000; i++) await c.sendmail('bulk@example.org', 'to@example.org', `Subject: n${i}\r\n\r\n${i}\r\n`);
    expect(s.messages).toHaveLength(1000);
    expect(s.messages[999]!.data.toString()).toContain('999');
    expect(s.connections()).toBe(1);
    expect(pipelinedGroups).toBe(1000);
  });

  it('reports refused recipients and goes on; all refused throws SmtpRecipientsRefusedError', async () => {
    const s = await server({
      hideSTARTTLS: true,
      onRcptTo(address, _session, cb) {
        if (address.address.startsWith('bad')) return cb(Object.assign(new Error('No such user'), { responseCode: 550 }));
        cb();
      },
    });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    const r = await c.sendmail('a@example.org', ['good@example.org', 'bad@example.org'], MSG);
    expect(r.accepted).toEqual(['good@example.org']);
    expect(r.refused['bad@example.org']!.code).toBe(550);
    const err = await c.sendmail('a@example.org', ['bad1@example.org', 'bad2@example.org'], MSG).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect(Object.keys(err.recipients)).toEqual(['bad1@example.org', 'bad2@example.org']);
    // The session survives (RSET was sent) and delivers the next message.
    await c.sendmail('a@example.org', 'good@example.org', MSG);
    expect(s.messages).toHaveLength(2);
  });

  it('streams a Readable and an async iterable body', async () => {
    const s = await server({ hideSTARTTLS: true });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    const { Readable } = await import('node:stream');
    await c.sendmail('a@example.org', 'b@example.org', Readable.from([Buffer.from('Subject: s\n\n'), Buffer.from('.line\nend')]));
    async function* gen() {
      yield 'Subject: g\r\n\r\n';
      yield Buffer.from('chunk\r');
      yield '\n.dot\r\n';
    }
    await c.sendmail('a@example.org', 'b@example.org', gen());
    expect(s.messages.map((m) => m.data.toString())).toEqual(['Subject: s\r\n\r\n.line\r\nend\r\n', 'Subject: g\r\n\r\nchunk\r\n.dot\r\n']);
  });
});

describe('envelope extensions', () => {
  it('BODY=8BITMIME for an 8-bit body, none for 7-bit', async () => {
    const s = await server({ hideSTARTTLS: true });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    await c.sendmail('a@example.org', 'b@example.org', 'Subject: x\r\n\r\nplain\r\n');
    await c.sendmail('a@example.org', 'b@example.org', 'Subject: x\r\n\r\nGrüße\r\n');
    expect(s.messages[0]!.mailFrom && s.messages[0]!.mailFrom.args).toBeFalsy();
    expect(s.messages[1]!.mailFrom && s.messages[1]!.mailFrom.args).toMatchObject({ BODY: '8BITMIME' });
    expect(s.messages[1]!.data.toString()).toContain('Grüße');
  });

  it('SMTPUTF8 when an address needs it; refused when the server does not offer it', async () => {
    const s = await server({ hideSTARTTLS: true });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    await c.sendmail('jörg@example.org', 'zoë@bücher.example', 'Subject: x\r\n\r\nx\r\n');
    expect(s.messages[0]!.mailFrom && s.messages[0]!.mailFrom.args).toMatchObject({ SMTPUTF8: true });
    expect(s.messages[0]!.rcptTo[0]!.address).toBe('zoë@bücher.example');

    const old = await server({ hideSTARTTLS: true, hideSMTPUTF8: true });
    await using c2 = new SmtpClient({ host: '127.0.0.1', port: old.port });
    const err = await c2.sendmail('jörg@example.org', 'b@example.org', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    expect(old.messages).toHaveLength(0);
    // ASCII mail still goes.
    await c2.sendmail('a@example.org', 'b@example.org', 'x');
    expect(old.messages).toHaveLength(1);
  });

  it('SIZE= is sent when advertised and a body over the limit fails before sending', async () => {
    const s = await server({ hideSTARTTLS: true, size: 1000 });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    await c.sendmail('a@example.org', 'b@example.org', 'x'.repeat(100));
    expect(s.messages[0]!.mailFrom && s.messages[0]!.mailFrom.args).toMatchObject({ SIZE: '100' });
    const err = await c.sendmail('a@example.org', 'b@example.org', 'y'.repeat(5000)).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    expect(err.message).toMatch(/5000 octets exceeds the server's SIZE limit of 1000/);
    expect(s.messages).toHaveLength(1);
    await c.sendmail('a@example.org', 'b@example.org', 'small again');
    expect(s.messages).toHaveLength(2);
  });

  it('raw ESMTP strings are accepted as in smtplib', async () => {
    const s = await server({ hideSTARTTLS: true, hideDSN: false });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    await c.sendmail('a@example.org', 'b@example.org', 'x', { mailOptions: ['RET=HDRS'], rcptOptions: ['NOTIFY=SUCCESS,FAILURE'] });
    expect(s.messages[0]!.dsn).toEqual({ ret: 'HDRS', envid: null });
    expect(s.messages[0]!.rcptTo[0]!.dsn).toMatchObject({ notify: ['SUCCESS', 'FAILURE'] });
  });
});

describe('TLS', () => {
  it('STARTTLS under tls: "required", verified against the test CA, re-EHLO over TLS', async () => {
    const s = await server();
    const lines: string[] = [];
    await using c = new SmtpClient({ host: 'localhost', port: s.port, tls: 'required', tlsOptions: { ca: s.ca }, debug: (e) => lines.push(`${e.direction} ${e.text}`) });
    await c.sendmail('a@example.org', 'b@example.org', MSG);
    expect(c.secure).toBe(true);
    expect(s.messages[0]!.secure).toBe(true);
    const clientVerbs = lines.filter((l) => l.startsWith('client ')).map((l) => l.split(' ')[1]);
    expect(clientVerbs.slice(0, 4)).toEqual(['EHLO', 'STARTTLS', 'EHLO', 'MAIL']);
    // After STARTTLS the server stops offering it.
    expect(c.hasExtension('starttls')).toBe(false);
  });

  it('opportunistic upgrades when offered and stays plaintext when not', async () => {
    const withTls = await server();
    await using c1 = new SmtpClient({ host: '127.0.0.1', port: withTls.port, tls: 'opportunistic', tlsOptions: { ca: withTls.ca } });
    await c1.sendmail('a@example.org', 'b@example.org', MSG);
    expect(withTls.messages[0]!.secure).toBe(true);
    const plain = await server({ hideSTARTTLS: true });
    await using c2 = new SmtpClient({ host: '127.0.0.1', port: plain.port, tls: 'opportunistic' });
    await c2.sendmail('a@example.org', 'b@example.org', MSG);
    expect(plain.messages[0]!.secure).toBe(false);
  });

  it('tls: "none" does not upgrade even when offered; startTls() can still be called explicitly', async () => {
    const s = await server();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, tlsOptions: { ca: s.ca } });
    await c.sendmail('a@example.org', 'b@example.org', MSG);
    expect(s.messages[0]!.secure).toBe(false);
    const r = await c.startTls();
    expect(r.code).toBe(220);
    await c.sendmail('a@example.org', 'b@example.org', MSG);
    expect(s.messages[1]!.secure).toBe(true);
  });

  it('implicit TLS (SMTP_SSL) with a client certificate', async () => {
    const s = await server({ secure: true, requestCert: true, rejectUnauthorized: false });
    const { localhostCertificate } = await import('../../devserver/cert.js');
    const cert = await localhostCertificate();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, tls: 'implicit', tlsOptions: { ca: s.ca, cert: cert.clientCert, key: cert.clientKey } });
    const greeting = await c.connect();
    expect(greeting.code).toBe(220);
    expect(c.secure).toBe(true);
    await c.sendmail('a@example.org', 'b@example.org', MSG);
    expect(s.messages[0]!.secure).toBe(true);
    const peer = (s.messages[0]!.session as unknown as { clientCertificate?: unknown });
    expect(c.tlsSocket?.getProtocol()).toMatch(/TLSv1\.[23]/);
    void peer;
  });

  it('startTls() when not advertised → SmtpNotSupportedError', async () => {
    const s = await server({ hideSTARTTLS: true });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    await c.connect();
    await expect(c.startTls()).rejects.toBeInstanceOf(SmtpNotSupportedError);
  });

  it('a certificate that does not verify fails with a typed, permanent error', async () => {
    const s = await server();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, tls: 'required' });
    const err = await c.sendmail('a@example.org', 'b@example.org', MSG).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect(err.stage).toBe('starttls');
    expect(err.permanent).toBe(true);
    expect(c.connected).toBe(false);
    expect(s.messages).toHaveLength(0);
  });
});

describe('unix socket', () => {
  it('connects to an absolute path', async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { SMTPServer } = await import('smtp-server');
    const dir = await mkdtemp(join(tmpdir(), 'mailstage-sock-'));
    const path = join(dir, 'smtp.sock');
    const got: string[] = [];
    const srv = new SMTPServer({
      logger: false, authOptional: true, hideSTARTTLS: true, disableReverseLookup: true,
      onData(stream, _s, cb) { let d = ''; stream.on('data', (c) => { d += c; }); stream.on('end', () => { got.push(d); cb(); }); },
    });
    await new Promise<void>((r) => srv.listen(path, () => r()));
    try {
      await using c = new SmtpClient({ host: path });
      await c.sendmail('a@example.org', 'b@example.org', 'over a socket');
      expect(got).toEqual(['over a socket\r\n']);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe('concurrency', () => {
  it('concurrent sendmail() calls on one client run one after another, each message intact', async () => {
    const s = await server({ hideSTARTTLS: true });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.sendmail('a@example.org', `r${i}@example.org`, `Subject: ${i}\r\n\r\nbody ${i}\r\n`)));
    expect(results.every((r) => r.response.code === 250)).toBe(true);
    expect(s.messages.map((m) => m.data.toString()).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`).sort());
    expect(s.messages.map((m) => m.rcptTo[0]!.address)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}@example.org`));
    expect(s.connections()).toBe(1);
  });
});
