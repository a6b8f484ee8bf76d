/**
 * Attacks and secrets: STARTTLS stripping and response injection, certificate verification, AUTH on
 * plaintext, secrets in transcripts and errors, and CR/LF/NUL injection through every argument.
 * Transcript style: S: what the server says, C: what the client must send.
 */
import { createHmac } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SmtpClient, type TranscriptEvent } from '../../index.js';
import {
  SmtpAuthenticationError, SmtpConnectError, SmtpError, SmtpInvalidInputError, SmtpNotSupportedError,
  SmtpProtocolError, SmtpResponseError,
} from '../../core/errors.js';
import { localhostCertificate, type TestCertificate } from '../../devserver/cert.js';
import { scriptedServer, type ScriptedServer, type Step } from '../helpers/scripted-server.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const EHLO = 'C: EHLO client.test';
const servers: Array<ScriptedServer | TestSmtpServer> = [];
const clients: SmtpClient[] = [];
let cert: TestCertificate;

beforeAll(async () => {
  cert = await localhostCertificate();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function session(script: Step[], options: Record<string, unknown> = {}) {
  const server = await scriptedServer(script);
  servers.push(server);
  const client = new SmtpClient({
    host: server.host, port: server.port, localHostname: 'client.test',
    timeouts: { greeting: 2000, command: 2000, data: 2000 }, ...options,
  });
  clients.push(client);
  return { server, client };
}

async function realServer(options: Parameters<typeof startSmtpServer>[0] = {}) {
  const server = await startSmtpServer(options);
  servers.push(server);
  return server;
}

function track(client: SmtpClient): SmtpClient {
  clients.push(client);
  return client;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

// ---- STARTTLS ---------------------------------------------------------------------------------------

describe('STARTTLS stripped (not advertised) under tls: "required"', () => {
  const stripped: Step[] = ['S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250-PIPELINING', 'S: 250 AUTH PLAIN LOGIN CRAM-MD5', 'stall'];

  it('sendmail → SmtpNotSupportedError before MAIL reaches the wire; connection closed', async () => {
    const { server, client } = await session(stripped, { tls: 'required', allowInsecureAuth: true });
    const err = await client.sendmail('a@example.org', 'b@example.org', 'secret body').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    expect(err.stage).toBe('starttls');
    expect(client.connected).toBe(false);
    const done = await server.done;
    expect(done.lines).toEqual(['EHLO client.test']);
  });

  it('login → SmtpNotSupportedError before any AUTH reaches the wire (even with allowInsecureAuth)', async () => {
    const { server, client } = await session(stripped, { tls: 'required', allowInsecureAuth: true });
    const err = await client.login('alice', 'S3cret-Pa55').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    expect(err.stage).toBe('starttls');
    expect(client.connected).toBe(false);
    expect((await server.done).lines).toEqual(['EHLO client.test']);
  });

  it('under "opportunistic" the same server is used in plaintext (documented: no defence against stripping)', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250 mx.example',
      'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok',
      'C: DATA', 'S: 354 go', { body: true }, 'S: 250 ok',
    ], { tls: 'opportunistic' });
    await client.sendmail('a@example.org', 'b@example.org', 'x');
    expect(client.secure).toBe(false);
    expect((await server.done).errors).toEqual([]);
  });
});

describe('STARTTLS refused', () => {
  it('a non-220 reply to STARTTLS → SmtpResponseError with its code; nothing after it in plaintext', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 STARTTLS',
      'C: STARTTLS', 'S: 454 4.7.0 TLS not available due to temporary reason', 'stall',
    ], { tls: 'required' });
    const err = await client.sendmail('a@example.org', 'b@example.org', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpResponseError);
    expect(err.code).toBe(454);
    expect(err.stage).toBe('starttls');
    client.close();
    expect((await server.done).lines).toEqual(['EHLO client.test', 'STARTTLS']);
  });

  it('explicit startTls(): not advertised → SmtpNotSupportedError; non-220 → SmtpResponseError', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250 mx.example', 'stall',
    ]);
    await client.connect();
    await expect(client.startTls()).rejects.toBeInstanceOf(SmtpNotSupportedError);
    client.close();
    expect((await server.done).lines).toEqual(['EHLO client.test']);
  });

  it('under "required", retrying on the same client after a refused STARTTLS still sends nothing in plaintext', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250-AUTH CRAM-MD5', 'S: 250 STARTTLS',
      'C: STARTTLS', 'S: 454 4.7.0 TLS not available', 'stall',
    ], { tls: 'required' });
    const first = await client.sendmail('a@example.org', 'b@example.org', 'secret body').catch((e) => e);
    expect(first).toBeInstanceOf(SmtpResponseError);
    // A caller (or a retry loop) tries again on the same session.
    const second = await client.sendmail('a@example.org', 'b@example.org', 'secret body').catch((e) => e);
    expect(second).toBeInstanceOf(SmtpError);
    const third = await client.login('alice', 'S3cret-Pa55').catch((e) => e);
    expect(third).toBeInstanceOf(SmtpError);
    client.close();
    const lines = (await server.done).lines;
    expect(lines.filter((l) => /^(MAIL|RCPT|DATA|AUTH)/.test(l))).toEqual([]);
  });
});

describe('STARTTLS response injection (bytes after the 220, before the handshake)', () => {
  function tlsScript(injected: string): Step[] {
    return [
      'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250-PIPELINING', 'S: 250 STARTTLS',
      'C: STARTTLS',
      { raw: `220 2.0.0 ready\r\n${injected}` }, // one write: the 220 and the injection together
      { tls: { key: cert.key, cert: cert.cert } },
      EHLO, 'S: 250-mx.example over TLS', 'S: 250 8BITMIME',
      'C: MAIL FROM:<a@example.org>', 'S: 250 2.1.0 sender ok',
      'C: RCPT TO:<b@example.org>', 'S: 250 2.1.5 recipient ok',
      'C: DATA', 'S: 354 go ahead', { body: true }, 'S: 250 2.0.0 queued over TLS',
    ];
  }

  it.each([
    ['one injected reply', '250 injected\r\n'],
    ['pipelined-looking junk, including a partial line', '250-PIPELINING\r\n250 AUTH PLAIN\r\n235 2.7.0 ok\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n250 queued-by-injection\r\n250 par'],
    ['a 421 that would close the session', '421 4.3.2 injected shutdown\r\n'],
  ])('%s: discarded; the client re-EHLOs over TLS and the session works', async (_name, injected) => {
    const events: TranscriptEvent[] = [];
    const { server, client } = await session(tlsScript(injected), {
      tls: 'required', tlsOptions: { ca: cert.ca }, debug: (e: TranscriptEvent) => events.push(e),
    });
    const result = await client.sendmail('a@example.org', 'b@example.org', 'hello\r\n');
    expect(result.response.message).toBe('2.0.0 queued over TLS');
    expect(client.secure).toBe(true);
    expect(client.ehloResp?.lines).toEqual(['mx.example over TLS', '8BITMIME']);
    expect(client.hasExtension('pipelining')).toBe(false); // only what was said over TLS counts
    expect([...client.features.keys()]).toEqual(['8bitmime']);
    const serverSaid = events.filter((e) => e.direction === 'server').map((e) => e.text);
    expect(serverSaid.join('\n')).not.toMatch(/injected|injection|AUTH PLAIN|235/);
    client.close();
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.secure).toBe(true);
    expect(done.preTls).toBeUndefined(); // the client sent nothing in plaintext after STARTTLS
    expect(done.bodies.map(String)).toEqual(['hello\r\n']);
  });
});

describe('certificate verification (smtp-server with a generated, self-signed certificate)', () => {
  it('on by default: STARTTLS without `ca` fails with a typed, permanent error; nothing sent after STARTTLS', async () => {
    const server = await realServer();
    const client = track(new SmtpClient({ host: server.host, port: server.port, tls: 'required', localHostname: 'client.test' }));
    const err = await client.sendmail('a@example.org', 'b@example.org', 'x').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect(err.stage).toBe('starttls');
    expect(err.permanent).toBe(true);
    expect(String(err.cause?.code)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    expect(client.connected).toBe(false);
    expect(server.messages).toHaveLength(0);
  });

  it('with the certificate as `ca` it works, and the message arrived over TLS', async () => {
    const server = await realServer();
    const client = track(new SmtpClient({ host: server.host, port: server.port, tls: 'required', tlsOptions: { ca: server.ca }, localHostname: 'client.test' }));
    await client.sendmail('a@example.org', 'b@example.org', 'Subject: t\r\n\r\nover tls\r\n');
    expect(client.secure).toBe(true);
    await client.quit();
    expect(server.messages).toHaveLength(1);
    expect(server.messages[0]!.secure).toBe(true);
  });

  it('rejectUnauthorized: false works (explicit opt-out)', async () => {
    const server = await realServer();
    const client = track(new SmtpClient({ host: server.host, port: server.port, tls: 'required', tlsOptions: { rejectUnauthorized: false }, localHostname: 'client.test' }));
    await client.sendmail('a@example.org', 'b@example.org', 'x');
    expect(client.secure).toBe(true);
    await client.quit();
    expect(server.messages).toHaveLength(1);
  });

  it('implicit TLS without `ca` → SmtpConnectError at connect, permanent', async () => {
    const server = await realServer({ secure: true });
    const client = track(new SmtpClient({ host: server.host, port: server.port, tls: 'implicit', localHostname: 'client.test' }));
    const err = await client.connect().catch((e) => e);
    expect(err).toBeInstanceOf(SmtpConnectError);
    expect(err.stage).toBe('connect');
    expect(err.permanent).toBe(true);
    expect(client.connected).toBe(false);
    const ok = track(new SmtpClient({ host: server.host, port: server.port, tls: 'implicit', tlsOptions: { ca: server.ca }, localHostname: 'client.test' }));
    expect((await ok.connect()).code).toBe(220);
    expect(ok.secure).toBe(true);
    await ok.quit();
  });
});

// ---- AUTH on plaintext ------------------------------------------------------------------------------

describe('AUTH over plaintext', () => {
  const offersAll: Step[] = ['S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 AUTH PLAIN LOGIN'];

  it('login(): PLAIN and LOGIN refused without allowInsecureAuth, nothing sent', async () => {
    const { server, client } = await session([...offersAll, 'stall'], { tls: 'none' });
    const err = await client.login('alice', 'S3cret-Pa55').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    expect(err.stage).toBe('auth');
    expect(err.message).toMatch(/allowInsecureAuth/);
    client.close();
    expect((await server.done).lines).toEqual(['EHLO client.test']);
  });

  it.each(['PLAIN', 'LOGIN'])('authenticate("%s") refused without allowInsecureAuth, nothing sent', async (mech) => {
    const { server, client } = await session([...offersAll, 'stall'], { tls: 'none' });
    const err = await client.authenticate(mech, { user: 'alice', pass: 'S3cret-Pa55' }).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    client.close();
    expect((await server.done).lines).toEqual(['EHLO client.test']);
  });

  it('allowed with allowInsecureAuth: AUTH PLAIN with the initial response', async () => {
    const { server, client } = await session([
      ...offersAll, `C: AUTH PLAIN ${b64('\0alice\0S3cret-Pa55')}`, 'S: 235 2.7.0 Authentication successful',
    ], { tls: 'none', allowInsecureAuth: true, authMechanisms: ['PLAIN', 'LOGIN'] });
    expect((await client.login('alice', 'S3cret-Pa55')).code).toBe(235);
    client.close();
    expect((await server.done).errors).toEqual([]);
  });

  it('allowed with allowInsecureAuth: AUTH LOGIN', async () => {
    const { server, client } = await session([
      ...offersAll, 'C: AUTH LOGIN', `S: 334 ${b64('Username:')}`, `C: ${b64('alice')}`,
      `S: 334 ${b64('Password:')}`, `C: ${b64('S3cret-Pa55')}`, 'S: 235 ok',
    ], { tls: 'none', allowInsecureAuth: true });
    expect((await client.authenticate('LOGIN', { user: 'alice', pass: 'S3cret-Pa55' })).code).toBe(235);
    client.close();
    expect((await server.done).errors).toEqual([]);
  });

  it('CRAM-MD5 is allowed on plaintext (the password never crosses the wire)', async () => {
    const challenge = '<1896.697170952@postoffice.example.net>';
    const digest = createHmac('md5', 'S3cret-Pa55').update(challenge).digest('hex');
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 AUTH PLAIN LOGIN CRAM-MD5',
      'C: AUTH CRAM-MD5', `S: 334 ${b64(challenge)}`, `C: ${b64(`alice ${digest}`)}`, 'S: 235 2.7.0 ok',
    ], { tls: 'none' });
    expect((await client.login('alice', 'S3cret-Pa55')).code).toBe(235);
    client.close();
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.lines.join('\n')).not.toContain('S3cret-Pa55');
  });

  it('CRAM-MD5 against smtp-server on plaintext', async () => {
    const server = await realServer({ authMethods: ['CRAM-MD5'], allowInsecureAuth: true, hideSTARTTLS: true, users: { alice: 'S3cret-Pa55' } });
    const client = track(new SmtpClient({ host: server.host, port: server.port, tls: 'none', localHostname: 'client.test' }));
    expect((await client.login('alice', 'S3cret-Pa55')).code).toBe(235);
    await client.sendmail('a@example.org', 'b@example.org', 'x');
    await client.quit();
    expect(server.messages[0]!.user).toBe('alice');
  });
});

// ---- no secret in transcripts or errors --------------------------------------------------------------

describe('no secret in any transcript or error message', () => {
  const USER = 'alice@example.org';
  const PASS = 'S3cret-Pa55word!';
  /** The password and every base64 form a client or an echoing server could put on a line. */
  const forms = [
    PASS,
    b64(PASS),
    b64(`\0${USER}\0${PASS}`),
    b64(`${USER}\0${PASS}`),
    // The password's base64 at each of the three alignments inside a longer encoded string.
    ...[0, 1, 2].map((k) => {
      const enc = b64(`${'x'.repeat(k)}${PASS}`);
      const skip = Math.ceil((k * 4) / 3) + 1;
      return enc.slice(skip, enc.length - 4);
    }),
  ];

  function scan(events: TranscriptEvent[], err: unknown): void {
    const texts = events.map((e) => e.text);
    const e = err as SmtpError & { reply?: { message: string; lines: string[] } };
    if (e) texts.push(e.message, String(e.stack), JSON.stringify(e.reply ?? null), String((e.cause as Error | undefined)?.message ?? ''));
    for (const t of texts) for (const f of forms) expect(t, `secret form ${f} leaked`).not.toContain(f);
  }

  async function run(script: Step[], op: (c: SmtpClient) => Promise<unknown>, options: Record<string, unknown> = {}) {
    const events: TranscriptEvent[] = [];
    const { server, client } = await session(script, { tls: 'none', allowInsecureAuth: true, debug: (e: TranscriptEvent) => events.push(e), ...options });
    const outcome = await op(client).then(() => undefined, (e: unknown) => e);
    client.close();
    await server.done;
    return { events, err: outcome };
  }

  const offers = (mechs: string): Step[] => ['S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', `S: 250 AUTH ${mechs}`];

  it('PLAIN success: the transcript shows <redacted>', async () => {
    const { events, err } = await run([...offers('PLAIN'), 'C: *', 'S: 235 ok'], (c) => c.login(USER, PASS));
    expect(err).toBeUndefined();
    expect(events.some((e) => e.direction === 'client' && e.text.includes('AUTH PLAIN'))).toBe(true);
    scan(events, err);
  });

  it('PLAIN 535 with the server echoing the client\'s base64 line back', async () => {
    const line = b64(`\0${USER}\0${PASS}`);
    const { events, err } = await run([...offers('PLAIN'), `C: AUTH PLAIN ${line}`, `S: 535 5.7.8 bad credentials for AUTH PLAIN ${line} (${PASS})`], (c) => c.login(USER, PASS));
    expect(err).toBeInstanceOf(SmtpAuthenticationError);
    expect((err as SmtpAuthenticationError).code).toBe(535);
    scan(events, err);
  });

  it('LOGIN 535 with the server echoing each base64 answer', async () => {
    const { events, err } = await run([
      ...offers('LOGIN'), 'C: AUTH LOGIN', `S: 334 ${b64('Username:')}`, `C: ${b64(USER)}`,
      `S: 334 ${b64('Password:')}`, `C: ${b64(PASS)}`, `S: 535-5.7.8 rejected ${b64(USER)}`, `S: 535 5.7.8 rejected ${b64(PASS)}`,
    ], (c) => c.login(USER, PASS));
    expect(err).toBeInstanceOf(SmtpAuthenticationError);
    scan(events, err);
  });

  it('fallback PLAIN → LOGIN, both refused, both echoed', async () => {
    const { events, err } = await run([
      ...offers('PLAIN LOGIN'), 'C: *', `S: 535 no ${b64(`\0${USER}\0${PASS}`)}`,
      'C: AUTH LOGIN', `S: 334 ${b64('Username:')}`, `C: ${b64(USER)}`, `S: 334 ${b64('Password:')}`, `C: ${b64(PASS)}`,
      `S: 535 still no ${b64(PASS)} ${PASS}`,
    ], (c) => c.login(USER, PASS), { authMechanisms: ['PLAIN', 'LOGIN'] });
    expect(err).toBeInstanceOf(SmtpAuthenticationError);
    scan(events, err);
  });

  it('CRAM-MD5 success and failure', async () => {
    const ok = await run([...offers('CRAM-MD5'), 'C: AUTH CRAM-MD5', `S: 334 ${b64('<1.2@x>')}`, 'C: *', 'S: 235 ok'], (c) => c.login(USER, PASS));
    expect(ok.err).toBeUndefined();
    scan(ok.events, ok.err);
    const bad = await run([...offers('CRAM-MD5'), 'C: AUTH CRAM-MD5', `S: 334 ${b64('<1.2@x>')}`, 'C: *', `S: 535 no ${PASS}`], (c) => c.login(USER, PASS));
    expect(bad.err).toBeInstanceOf(SmtpAuthenticationError);
    scan(bad.events, bad.err);
  });

  it('a server that echoes the AUTH line back as garbage (not a reply): the protocol error does not carry it', async () => {
    const line = `AUTH PLAIN ${b64(`\0${USER}\0${PASS}`)}`;
    const { events, err } = await run([...offers('PLAIN'), 'C: *', `S: ${line}`, 'stall'], (c) => c.login(USER, PASS));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    scan(events, err);
  });

  it('a 421 echoing the password while authenticating', async () => {
    const { events, err } = await run([...offers('PLAIN'), 'C: *', `S: 421 4.7.0 closing, ${b64(`\0${USER}\0${PASS}`)}`, 'stall'], (c) => c.login(USER, PASS));
    expect(err).toBeInstanceOf(SmtpError);
    scan(events, err);
  });
});

// ---- CR/LF/NUL injection ----------------------------------------------------------------------------

describe('CR, LF and NUL in any argument: SmtpInvalidInputError naming the field, nothing on the wire', () => {
  const BAD = ['\r\nRSET', '\nQUIT', '\rDATA', '\0x'];
  type Attempt = readonly [string, string, (c: SmtpClient, bad: string) => Promise<unknown>];
  const attempts: Attempt[] = [
    ['sendmail from', 'from', (c, bad) => c.sendmail(`a@example.org${bad}`, 'b@example.org', 'x')],
    ['sendmail to', 'to', (c, bad) => c.sendmail('a@example.org', ['b@example.org', `c@example.org${bad}`], 'x')],
    ['mail()', 'from', (c, bad) => c.mail(`a${bad}@example.org`)],
    ['rcpt()', 'to', (c, bad) => c.rcpt(`b@example.org${bad}`)],
    ['sendMessage envelope from', 'from', (c, bad) => c.sendMessage({ from: 'a@example.org', to: 'b@example.org', subject: 's', text: 't' }, { from: `a@example.org${bad}` })],
    ['sendMessage envelope to', 'to', (c, bad) => c.sendMessage({ from: 'a@example.org', to: 'b@example.org', subject: 's', text: 't' }, { to: [`b@example.org${bad}`] })],
    ['EHLO name', 'localHostname', (c, bad) => c.ehlo(`client${bad}.test`)],
    ['HELO name', 'localHostname', (c, bad) => c.helo(`client${bad}.test`)],
    ['DSN ORCPT', 'dsn.orcpt', (c, bad) => c.sendmail('a@example.org', 'b@example.org', 'x', { rcptOptions: { dsn: { orcpt: `rfc822;b@example.org${bad}` } } })],
    ['DSN ORCPT (nodemailer "recipient")', 'dsn.orcpt', (c, bad) => c.rcpt('b@example.org', { dsn: { recipient: `b@example.org${bad}` } })],
    ['DSN ENVID', 'dsn.envid', (c, bad) => c.sendmail('a@example.org', 'b@example.org', 'x', { mailOptions: { dsn: { envid: `id${bad}` } } })],
    ['DSN NOTIFY', 'dsn.notify', (c, bad) => c.rcpt('b@example.org', { dsn: { notify: [`SUCCESS${bad}`] } })],
    ['DSN RET', 'dsn.ret', (c, bad) => c.mail('a@example.org', { dsn: { ret: `FULL${bad}` } })],
    ['raw MAIL parameter', 'mail parameter', (c, bad) => c.sendmail('a@example.org', 'b@example.org', 'x', { mailOptions: [`X-TAG=1${bad}`] })],
    ['raw RCPT parameter', 'rcpt parameter', (c, bad) => c.sendmail('a@example.org', 'b@example.org', 'x', { rcptOptions: [`X-TAG=1${bad}`] })],
    ['raw parameter on mail()', 'mail parameter', (c, bad) => c.mail('a@example.org', [`X-TAG=1${bad}`])],
    ['command() arguments', 'command arguments', (c, bad) => c.command('XCLIENT', `ADDR=1.2.3.4${bad}`)],
    ['command() verb', 'command', (c, bad) => c.command(`NOOP${bad}`)],
    ['VRFY argument', 'address', (c, bad) => c.verify(`alice${bad}`)],
    ['EXPN argument', 'address', (c, bad) => c.expn(`staff${bad}`)],
    ['HELP argument', 'command arguments', (c, bad) => c.help(`MAIL${bad}`)],
  ];

  it.each(attempts)('%s', async (_name, field, attempt) => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250-DSN', 'S: 250 PIPELINING', 'C: QUIT', 'S: 221 bye',
    ]);
    await client.connect();
    await client.ehlo();
    for (const bad of BAD) {
      // (a synchronous throw counts here too; that every method rejects instead is tested below)
      const err = (await Promise.resolve().then(() => attempt(client, bad)).catch((e: unknown) => e)) as SmtpInvalidInputError;
      expect(err, JSON.stringify(bad)).toBeInstanceOf(SmtpInvalidInputError);
      expect(err.field, JSON.stringify(bad)).toBe(field);
      expect(err.message.startsWith(`${field}: `)).toBe(true);
      expect(err.permanent).toBe(true);
      expect(client.connected).toBe(true);
    }
    await client.quit();
    const done = await server.done;
    expect(done.lines).toEqual(['EHLO client.test', 'QUIT']);
    expect(done.errors).toEqual([]);
  });

  it('command methods reject (never throw synchronously) on bad input: "every command method is async"', async () => {
    const { client } = await session(['S: 220 mx.example ESMTP', 'stall']);
    await client.connect();
    for (const call of [() => client.verify('a\r\nb'), () => client.expn('a\r\nb'), () => client.help('a\r\nb'), () => client.command('X\r\n')]) {
      let p: Promise<unknown> | undefined;
      expect(() => { p = call(); }).not.toThrow();
      await expect(p).rejects.toBeInstanceOf(SmtpInvalidInputError);
    }
  });

  it('localHostname option → refused in the constructor, before any connection', async () => {
    for (const bad of BAD) {
      let err: unknown;
      try {
        new SmtpClient({ host: '127.0.0.1', port: 1, localHostname: `client${bad}.test` });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SmtpInvalidInputError);
      expect((err as SmtpInvalidInputError).field).toBe('localHostname');
    }
  });

  it('credentials with CR/LF are not a line-injection vector (they travel base64-encoded)', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 AUTH PLAIN',
      `C: AUTH PLAIN ${b64('\0alice\0pa\r\nQUIT\r\nss')}`, 'S: 235 ok',
    ], { allowInsecureAuth: true });
    expect((await client.login('alice', 'pa\r\nQUIT\r\nss')).code).toBe(235);
    client.close();
    const done = await server.done;
    expect(done.errors).toEqual([]);
    expect(done.lines).not.toContain('QUIT');
  });
});
