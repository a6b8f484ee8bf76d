/** Retries: what is sent again (4xx, a connection lost before the terminator), what never is (5xx,
 *  a lost reply to the terminator), and partial refusals reported rather than thrown. */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMailer, isDeliveryUnknown, SmtpDataError, SmtpDeliveryUnknownError, SmtpRecipientRefusedError,
  SmtpRecipientsRefusedError, SmtpServerDisconnectedError, type Mailer, type MailerEvent,
} from '../../index.js';
import { scriptedServer, type ScriptedServer, type Step } from '../helpers/scripted-server.js';
import { configFor, countingServer, simple, sleep, type CountingServer } from './helpers.js';

const FAST_RETRY = { attempts: 3, minDelay: 20, maxDelay: 100, factor: 2, jitter: 0 };

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function server(options = {}): Promise<CountingServer> {
  const s = await countingServer(options);
  cleanups.push(() => s.close());
  return s;
}

function mailerFor(target: { host: string; port: number }, transport: Record<string, unknown> = {}): { mailer: Mailer; events: MailerEvent[] } {
  const events: MailerEvent[] = [];
  const mailer = createMailer(configFor(target, { retry: FAST_RETRY, ...transport }), { onEvent: (e) => events.push(e) });
  cleanups.push(() => mailer.close());
  return { mailer, events };
}

const refuse = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

describe('Mailer retries', () => {
  it('retries a 451 after the body and the message arrives once', async () => {
    let calls = 0;
    const s = await server({ onMessage: () => (++calls === 1 ? refuse(451, 'try again later') : undefined) });
    const { mailer, events } = mailerFor(s);
    const info = await mailer.sendMail(simple(1, { messageId: '<fixed-1@example.com>' }));
    expect(calls).toBe(2);
    expect(s.messages).toHaveLength(1);
    expect(info.accepted).toEqual(['rcpt1@example.com']);
    expect(info.response).toMatch(/^250 /);
    expect(info.messageId).toBe('<fixed-1@example.com>');
    // The same message both times: the Message-ID is fixed before the first attempt.
    expect(s.messages[0]!.data.toString()).toContain('Message-ID: <fixed-1@example.com>');
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(1);
  });

  it('keeps the generated Message-ID across attempts', async () => {
    const ids: string[] = [];
    let calls = 0;
    const s = await server({
      onMessage: (m: { data: Buffer }) => {
        ids.push(/Message-ID: (\S+)/i.exec(m.data.toString())![1]!);
        return ++calls === 1 ? refuse(452, 'busy') : undefined;
      },
    });
    const info = await mailerFor(s).mailer.sendMail(simple(1));
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(ids[1]);
    expect(info.messageId).toBe(ids[0]);
  });

  it('never retries a 550', async () => {
    let calls = 0;
    const s = await server({ onMessage: () => { calls++; return refuse(550, 'content rejected'); } });
    const { mailer, events } = mailerFor(s);
    const err = await mailer.sendMail(simple(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpDataError);
    expect((err as SmtpDataError).code).toBe(550);
    expect((err as SmtpDataError).permanent).toBe(true);
    expect(isDeliveryUnknown(err)).toBe(false);
    expect(calls).toBe(1);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(0);
  });

  it('gives up after `attempts` retries with the last transient error', async () => {
    let calls = 0;
    const s = await server({ onMessage: () => { calls++; return refuse(451, 'still busy'); } });
    const err = await mailerFor(s, { retry: { ...FAST_RETRY, attempts: 2 } }).mailer.sendMail(simple(1)).catch((e: unknown) => e);
    expect((err as SmtpDataError).code).toBe(451);
    expect(calls).toBe(3);
  });

  it('reports a partial refusal in rejected and rejectedErrors, not as an error', async () => {
    const s = await server({
      onRcptTo(a: { address: string }, _s: unknown, cb: (e?: Error) => void) {
        cb(a.address.startsWith('bad') ? refuse(550, '5.1.1 no such user') : undefined);
      },
    });
    const info = await mailerFor(s).mailer.sendMail(simple(1, { to: ['good@example.com', 'bad@example.com'] }));
    expect(info.accepted).toEqual(['good@example.com']);
    expect(info.rejected).toEqual(['bad@example.com']);
    expect(info.rejectedErrors).toHaveLength(1);
    const e = info.rejectedErrors![0] as SmtpRecipientRefusedError;
    expect(e).toBeInstanceOf(SmtpRecipientRefusedError);
    expect(e.recipient).toBe('bad@example.com');
    expect(e.code).toBe(550);
    expect(info.envelope).toEqual({ from: 'sender@example.com', to: ['good@example.com', 'bad@example.com'] });
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]!.rcptTo.map((r) => r.address)).toEqual(['good@example.com']);
  });

  it('retries when every recipient is refused transiently; permanent refusals are not retried', async () => {
    const seen: string[] = [];
    const s = await server({
      onRcptTo(a: { address: string }, _s: unknown, cb: (e?: Error) => void) {
        seen.push(a.address);
        if (a.address.startsWith('gone')) return cb(refuse(550, 'no such user'));
        if (seen.filter((x) => x === a.address).length === 1) return cb(refuse(450, 'mailbox busy'));
        cb();
      },
    });
    const info = await mailerFor(s).mailer.sendMail(simple(1, { to: ['busy@example.com', 'gone@example.com'] }));
    expect(info.accepted).toEqual(['busy@example.com']);
    expect(info.rejected).toEqual(['gone@example.com']);
    expect(seen).toEqual(['busy@example.com', 'gone@example.com', 'busy@example.com']);
    expect(s.messages).toHaveLength(1);
  });

  it('throws SmtpRecipientsRefusedError when every recipient is refused permanently', async () => {
    const s = await server({ onRcptTo(_a: unknown, _s: unknown, cb: (e?: Error) => void) { cb(refuse(550, 'no')); } });
    const err = await mailerFor(s).mailer.sendMail(simple(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpRecipientsRefusedError);
    expect((err as SmtpRecipientsRefusedError).permanent).toBe(true);
  });

  it('retries when the connection is lost before the terminator', async () => {
    const s = await server();
    const proxy = await killingProxy(s.port, 1);
    const { mailer, events } = mailerFor({ host: '127.0.0.1', port: proxy.port });
    const info = await mailer.sendMail(simple(1));
    expect(info.accepted).toEqual(['rcpt1@example.com']);
    expect(s.messages).toHaveLength(1);
    expect(proxy.connections()).toBe(2);
    const retry = events.find((e) => e.type === 'retry');
    expect(retry && retry.type === 'retry' && retry.error).toBeInstanceOf(SmtpServerDisconnectedError);
  });

  it('without retries, a connection lost before the terminator is a plain transient error', async () => {
    const s = await server();
    const proxy = await killingProxy(s.port, 1);
    const err = await mailerFor({ host: '127.0.0.1', port: proxy.port }, { retry: undefined }).mailer.sendMail(simple(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(isDeliveryUnknown(err)).toBe(false);
    expect((err as SmtpServerDisconnectedError).permanent).toBe(false);
    expect(s.messages).toHaveLength(0);
  });

  const lostReply: readonly (readonly [string, Step, Record<string, unknown>])[] = [
    ['the server closes', 'close', {}],
    ['the reply times out', 'stall', { timeouts: { data: 300 } }],
  ];
  it.each(lostReply)('never resends when the reply to the terminator is lost (%s)', async (_name, fault, transport) => {
    const script: Step[] = [
      'S: 220 scripted ESMTP', 'C: *', 'S: 250 scripted',
      'C: MAIL FROM:<sender@example.com>', 'S: 250 2.1.0 OK',
      'C: RCPT TO:<rcpt1@example.com>', 'S: 250 2.1.5 OK',
      'C: DATA', 'S: 354 go ahead', { body: true }, fault,
    ];
    const scripted: ScriptedServer = await scriptedServer(script);
    cleanups.push(() => scripted.close());
    const { mailer, events } = mailerFor(scripted, transport);
    const err = await mailer.sendMail(simple(1, { messageId: '<unknown-1@example.com>' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpDeliveryUnknownError);
    expect(isDeliveryUnknown(err)).toBe(true);
    const unknown = err as SmtpDeliveryUnknownError;
    expect(unknown.messageId).toBe('<unknown-1@example.com>');
    expect(unknown.recipients).toEqual(['rcpt1@example.com']);
    expect(unknown.stage).toBe('final-reply');
    expect(unknown.cause).toBeInstanceOf(Error);
    await sleep(200); // a resend would have connected again by now
    await scripted.close();
    const result = await scripted.done;
    expect(scripted.accepted()).toBe(1);
    expect(result.lines.filter((l) => l === 'DATA')).toHaveLength(1);
    expect(result.bodies).toHaveLength(1);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(0);
  });
});

/** A TCP proxy to `port` that cuts its first `kills` connections as soon as the client sends DATA
 *  (the server has taken MAIL and RCPT; no body was sent). */
async function killingProxy(port: number, kills: number): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const kill = n++ < kills;
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => { client.destroy(); upstream.destroy(); sockets.delete(s); });
    }
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (kill && /^DATA\r?$/m.test(chunk.toString())) {
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); proxy.close(() => r()); }));
  return { port: (proxy.address() as net.AddressInfo).port, connections: () => n };
}
