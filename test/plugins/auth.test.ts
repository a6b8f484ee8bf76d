/**
 * Authentication against smtp-server: each mechanism, preference and fallback, TLS rules, a
 * third-party authenticator defined right here, and no secret in transcripts or errors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpClient, definePlugin, type Authenticator, type TranscriptEvent } from '../../index.js';
import authPlain from '../../plugins/auth-plain/index.js';
import authLogin from '../../plugins/auth-login/index.js';
import authCramMd5 from '../../plugins/auth-cram-md5/index.js';
import xoauth2 from '../../examples/plugin-xoauth2/index.js';
import { SmtpAuthenticationError, SmtpNotSupportedError } from '../../core/errors.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { scriptedServer } from '../helpers/scripted-server.js';

const PASSWORD = 'pa55-w0rd-Secret!';
const servers: TestSmtpServer[] = [];
const clients: SmtpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
/** Scripted servers do not answer a QUIT after their script: such clients are closed, not quit. */
function track(c: SmtpClient): SmtpClient {
  clients.push(c);
  return c;
}

async function server(methods: string[], extra: Record<string, unknown> = {}) {
  const s = await startSmtpServer({ hideSTARTTLS: true, allowInsecureAuth: true, authMethods: methods, users: { alice: PASSWORD }, ...extra });
  servers.push(s);
  return s;
}

function secretsIn(events: TranscriptEvent[], ...errors: unknown[]): string[] {
  const forms = [PASSWORD, Buffer.from(PASSWORD).toString('base64'), Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')];
  const text = [...events.map((e) => e.text), ...errors.map((e) => String((e as Error)?.message ?? e))].join('\n');
  return forms.filter((f) => text.includes(f));
}

describe.each([
  ['PLAIN', authPlain],
  ['LOGIN', authLogin],
  ['CRAM-MD5', authCramMd5],
])('AUTH %s', (mechanism, plugin) => {
  it('authenticates, and the message is sent as that user', async () => {
    const s = await server([mechanism]);
    const events: TranscriptEvent[] = [];
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [plugin()], allowInsecureAuth: true, debug: (e) => events.push(e) });
    const r = await c.login('alice', PASSWORD);
    expect(r.code).toBe(235);
    await c.sendmail('alice@example.org', 'b@example.org', 'x');
    expect(s.messages[0]!.user).toBe('alice');
    expect(events.some((e) => e.direction === 'client' && e.text.startsWith(`AUTH ${mechanism}`))).toBe(true);
    expect(secretsIn(events)).toEqual([]);
  });

  it('a wrong password → SmtpAuthenticationError (535), no secret in it or the transcript', async () => {
    const s = await server([mechanism]);
    const events: TranscriptEvent[] = [];
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [plugin()], allowInsecureAuth: true, debug: (e) => events.push(e) });
    const err = await c.login('alice', `${PASSWORD}-wrong`).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpAuthenticationError);
    expect(err.code).toBe(535);
    expect(err.permanent).toBe(true);
    expect(JSON.stringify(events)).not.toContain(`${PASSWORD}-wrong`);
    expect(String(err.message)).not.toContain(`${PASSWORD}-wrong`);
  });
});

describe('mechanism choice', () => {
  it('prefers CRAM-MD5, then PLAIN, then LOGIN (smtplib) from what both sides have', async () => {
    const s = await server(['LOGIN', 'PLAIN', 'CRAM-MD5']);
    const events: TranscriptEvent[] = [];
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, allowInsecureAuth: true, debug: (e) => events.push(e) });
    await c.login('alice', PASSWORD);
    expect(events.find((e) => e.text.startsWith('AUTH'))!.text).toBe('AUTH CRAM-MD5');
  });

  it('honours a configured preference', async () => {
    const s = await server(['LOGIN', 'PLAIN', 'CRAM-MD5']);
    const events: TranscriptEvent[] = [];
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, allowInsecureAuth: true, authMechanisms: ['LOGIN', 'PLAIN'], debug: (e) => events.push(e) });
    await c.login('alice', PASSWORD);
    expect(events.find((e) => e.text.startsWith('AUTH'))!.text).toBe('AUTH LOGIN');
  });

  it('falls back to the next mechanism on 535 and raises the last error when all fail', async () => {
    const script = await scriptedServer([
      'S: 220 x', 'C: EHLO client.test', 'S: 250-x', 'S: 250 AUTH CRAM-MD5 PLAIN',
      'C: AUTH CRAM-MD5', 'S: 334 PDEyMzQ1QGV4YW1wbGU+', 'C: *', 'S: 535 5.7.8 cram failed',
      'C: *', 'S: 535 5.7.8 plain failed',
    ]);
    try {
      const c = track(new SmtpClient({ host: '127.0.0.1', port: script.port, localHostname: 'client.test', allowInsecureAuth: true }));
      const err = await c.login('alice', PASSWORD).catch((e) => e);
      expect(err).toBeInstanceOf(SmtpAuthenticationError);
      expect(err.message).toMatch(/plain failed/);
      const lines = (await script.done).lines;
      expect(lines[0]).toBe('EHLO client.test');
      expect(lines[1]).toBe('AUTH CRAM-MD5');
      expect(lines[3]).toMatch(/^AUTH PLAIN \S+$/);
    } finally {
      for (const c of clients.splice(0)) c.close();
      await script.close();
    }
  });

  it('no common mechanism → SmtpNotSupportedError naming both lists', async () => {
    const s = await server(['XOAUTH2']);
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, allowInsecureAuth: true });
    const err = await c.login('alice', PASSWORD).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    expect(err.message).toMatch(/offers \[XOAUTH2\].*installed \[CRAM-MD5, PLAIN, LOGIN\]/);
  });

  it('PLAIN and LOGIN are refused on plaintext without allowInsecureAuth, before anything is sent', async () => {
    const s = await server(['PLAIN', 'LOGIN']);
    const events: TranscriptEvent[] = [];
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, debug: (e) => events.push(e) });
    const err = await c.login('alice', PASSWORD).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpNotSupportedError);
    expect(err.message).toMatch(/not encrypted/);
    expect(events.some((e) => e.text.startsWith('AUTH'))).toBe(false);
  });

  it('works over STARTTLS without allowInsecureAuth, choosing from the post-TLS EHLO', async () => {
    const s = await startSmtpServer({ authMethods: ['PLAIN'], users: { alice: PASSWORD } });
    servers.push(s);
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, tls: 'required', tlsOptions: { ca: s.ca } });
    expect((await c.login('alice', PASSWORD)).code).toBe(235);
    expect(c.secure).toBe(true);
  });
});

describe('third-party authenticators', () => {
  it('XOAUTH2 from examples/: token callback, and the 334-JSON error step', async () => {
    const s = await server(['XOAUTH2'], { users: { alice: 'good-token' } });
    const errors: unknown[] = [];
    const tokens = { current: 'expired-token' };
    await using c = new SmtpClient({
      host: '127.0.0.1', port: s.port, allowInsecureAuth: true,
      plugins: [xoauth2({ token: () => tokens.current, onError: (e) => errors.push(e) })],
    });
    const err = await c.login('alice', '').catch((e) => e);
    expect(err).toBeInstanceOf(SmtpAuthenticationError);
    expect(errors).toEqual([{ status: '401', schemes: 'bearer', scope: 'mail' }]);
    tokens.current = 'good-token';
    expect((await c.login('alice', '')).code).toBe(235);
    await c.sendmail('alice@example.org', 'b@example.org', 'x');
    expect(s.messages[0]!.user).toBe('alice');
  });

  it('an authenticator defined in a test file works the same way (a made-up multi-step mechanism)', async () => {
    const steps: string[] = [];
    const custom: Authenticator = {
      mechanism: 'X-TWO-STEP',
      start: () => 'hello',
      next: (challenge, ctx) => {
        steps.push(challenge);
        return challenge === 'who?' ? ctx.credentials.user! : `${ctx.credentials.pass}:${ctx.secure}`;
      },
    };
    const script = await scriptedServer([
      'S: 220 x', 'C: EHLO client.test', 'S: 250-x', 'S: 250 AUTH X-TWO-STEP',
      `C: AUTH X-TWO-STEP ${Buffer.from('hello').toString('base64')}`,
      `S: 334 ${Buffer.from('who?').toString('base64')}`,
      `C: ${Buffer.from('alice').toString('base64')}`,
      `S: 334 ${Buffer.from('proof?').toString('base64')}`,
      `C: ${Buffer.from('s3cret:false').toString('base64')}`,
      'S: 235 2.7.0 welcome',
    ]);
    try {
      const c = track(new SmtpClient({ host: '127.0.0.1', port: script.port, localHostname: 'client.test', plugins: [definePlugin({ name: 'two-step', authenticators: [custom] })] }));
      expect((await c.login('alice', 's3cret')).code).toBe(235);
      expect(steps).toEqual(['who?', 'proof?']);
      expect((await script.done).errors).toEqual([]);
    } finally {
      for (const c of clients.splice(0)) c.close();
      await script.close();
    }
  });

  it('gives up after 5 challenges with a cancel (*), like smtplib', async () => {
    const endless: Authenticator = { mechanism: 'X-ENDLESS', start: () => undefined, next: () => 'again' };
    const again = `C: ${Buffer.from('again').toString('base64')}`;
    const script = await scriptedServer([
      'S: 220 x', 'C: EHLO client.test', 'S: 250-x', 'S: 250 AUTH X-ENDLESS', 'C: AUTH X-ENDLESS',
      'S: 334 ', again, 'S: 334 ', again, 'S: 334 ', again, 'S: 334 ', again, 'S: 334 ', again,
      'S: 334 ', 'C: *', 'S: 501 cancelled',
    ]);
    try {
      const c = track(new SmtpClient({ host: '127.0.0.1', port: script.port, localHostname: 'client.test', plugins: [definePlugin({ name: 'endless', authenticators: [endless] })] }));
      const err = await c.login('u', 'p').catch((e) => e);
      expect(err).toBeInstanceOf(SmtpAuthenticationError);
      expect(err.message).toMatch(/more than 5 challenges/);
      expect((await script.done).errors).toEqual([]);
    } finally {
      for (const c of clients.splice(0)) c.close();
      await script.close();
    }
  });

  it('authenticate() runs one named mechanism with arbitrary credentials', async () => {
    const s = await server(['XOAUTH2'], { users: { alice: 'tok' } });
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, allowInsecureAuth: true, plugins: [xoauth2({ token: () => 'unused' })] });
    expect((await c.authenticate('xoauth2', { user: 'alice', accessToken: 'tok' })).code).toBe(235);
  });
});

it('no secret reaches the transcript or errors even when the server echoes the AUTH line back', async () => {
  const plainB64 = Buffer.from(`\0alice\0${PASSWORD}`).toString('base64');
  const script = await scriptedServer([
    'S: 220 x', 'C: EHLO client.test', 'S: 250-x', 'S: 250 AUTH PLAIN',
    `C: AUTH PLAIN ${plainB64}`, `S: 535 5.7.8 bad credentials for AUTH PLAIN ${plainB64} (${PASSWORD})`,
  ]);
  try {
    const events: TranscriptEvent[] = [];
    const c = track(new SmtpClient({ host: '127.0.0.1', port: script.port, localHostname: 'client.test', allowInsecureAuth: true, plugins: [authPlain()], debug: (e) => events.push(e) }));
    const err = await c.login('alice', PASSWORD).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpAuthenticationError);
    expect(secretsIn(events, err, JSON.stringify(err.reply))).toEqual([]);
    expect(events.some((e) => e.text.includes('<redacted>'))).toBe(true);
  } finally {
    await script.close();
  }
});
