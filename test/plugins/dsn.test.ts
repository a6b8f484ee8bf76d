/**
 * DSN (RFC 3461) parameters as smtp-server receives them (`hideDSN: false`), per message and per
 * recipient.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpClient } from '../../index.js';
import dsn from '../../plugins/dsn/index.js';
import { SmtpInvalidInputError, SmtpNotSupportedError } from '../../core/errors.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const servers: TestSmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function server(hideDSN = false) {
  const s = await startSmtpServer({ hideSTARTTLS: true, hideDSN });
  servers.push(s);
  return s;
}

describe('dsn plugin', () => {
  it('RET and ENVID on MAIL, NOTIFY and ORCPT per recipient', async () => {
    const s = await server();
    const wire: string[] = [];
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [dsn()], debug: (e) => { if (e.direction === 'client') wire.push(e.text); } });
    const a = 'alice@example.org';
    const b = 'bob@example.org';
    await c.sendmail('sender@example.org', [a, b], 'x', {
      mailOptions: { dsn: { ret: 'HDRS', envid: 'batch 42+x' } },
      rcptOptions: { [a]: { dsn: { notify: ['SUCCESS', 'FAILURE'], orcpt: 'alice@example.org' } }, [b]: { dsn: { notify: ['NEVER'] } } },
    });
    const m = s.messages[0]!;
    // xtext on the wire; smtp-server decodes it back.
    expect(wire).toContain('MAIL FROM:<sender@example.org> RET=HDRS ENVID=batch+2042+2Bx');
    expect(wire).toContain('RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.org');
    expect(wire).toContain('RCPT TO:<bob@example.org> NOTIFY=NEVER');
    expect(m.dsn).toEqual({ ret: 'HDRS', envid: 'batch 42+x' });
    expect(m.rcptTo[0]!.dsn).toEqual({ notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;alice@example.org' });
    expect(m.rcptTo[1]!.dsn).toEqual({ notify: ['NEVER'] });
  });

  it('one options object for all recipients, or a function', async () => {
    const s = await server();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [dsn()] });
    await c.sendmail('s@example.org', ['x@example.org', 'y@example.org'], 'x', { rcptOptions: { dsn: { notify: ['DELAY'] } } });
    expect(s.messages[0]!.rcptTo.map((r) => r.dsn?.notify)).toEqual([['DELAY'], ['DELAY']]);
    await c.sendmail('s@example.org', ['x@example.org', 'y@example.org'], 'x', {
      rcptOptions: (addr) => ({ dsn: { notify: addr.startsWith('x') ? ['FAILURE'] : ['SUCCESS'], orcpt: `rfc822;${addr}` } }),
    });
    expect(s.messages[1]!.rcptTo.map((r) => r.dsn?.notify)).toEqual([['FAILURE'], ['SUCCESS']]);
  });

  it('reads nodemailer\'s message-level dsn shape in sendMessage', async () => {
    const s = await server();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port });
    await c.sendMessage({
      from: 'sender@example.org', to: 'r@example.org', subject: 's', text: 't',
      dsn: { id: 'msg-1', return: 'headers', notify: ['failure', 'delay'], recipient: 'sender@example.org' },
    });
    expect(s.messages[0]!.dsn).toEqual({ ret: 'HDRS', envid: 'msg-1' });
    expect(s.messages[0]!.rcptTo[0]!.dsn).toEqual({ notify: ['FAILURE', 'DELAY'], orcpt: 'rfc822;sender@example.org' });
  });

  it('validates options with clear errors', async () => {
    const s = await server();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [dsn()] });
    const send = (mailOptions: Record<string, unknown>, rcptOptions?: Record<string, unknown>) => c.sendmail('s@example.org', 'r@example.org', 'x', { mailOptions, rcptOptions });
    await expect(send({ dsn: { ret: 'ALL' } })).rejects.toThrow(/dsn.ret: expected FULL or HDRS/);
    await expect(send({}, { dsn: { notify: ['NEVER', 'SUCCESS'] } })).rejects.toThrow(/dsn.notify: expected NEVER alone/);
    await expect(send({}, { dsn: { notify: ['SOMETIMES'] } })).rejects.toThrow(SmtpInvalidInputError);
    await expect(send({ dsn: { envid: 'x'.repeat(101) } })).rejects.toThrow(/dsn.envid/);
    await expect(send({ dsn: { bogus: 1 } })).rejects.toThrow(/unknown key "bogus"/);
    expect(s.messages).toHaveLength(0);
  });

  it('leaves DSN out when the server does not offer it, or fails in strict mode', async () => {
    const s = await server(true);
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [dsn()] });
    await c.sendmail('s@example.org', 'r@example.org', 'x', { mailOptions: { dsn: { ret: 'FULL' } }, rcptOptions: { dsn: { notify: ['SUCCESS'] } } });
    expect(s.messages).toHaveLength(1);
    await using strict = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [dsn({ strict: true })] });
    await expect(strict.sendmail('s@example.org', 'r@example.org', 'x', { mailOptions: { dsn: { ret: 'FULL' } } })).rejects.toBeInstanceOf(SmtpNotSupportedError);
    expect(s.messages).toHaveLength(1);
  });

  it('without the dsn plugin, dsn options are an unknown-option error', async () => {
    const s = await server();
    await using c = new SmtpClient({ host: '127.0.0.1', port: s.port, plugins: [] });
    await expect(c.sendmail('s@example.org', 'r@example.org', 'x', { mailOptions: { dsn: { ret: 'FULL' } } })).rejects.toThrow(/unknown option "dsn"/);
  });
});
