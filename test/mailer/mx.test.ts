/**
 * Direct delivery with the mx plugin. The resolver is a local table (the plugin's injection point);
 * the servers are real: smtp-server on 127.0.0.2 and 127.0.0.3, a dead address (127.0.0.4) and a
 * server that greets with 421 (127.0.0.5), all on one port as MX hosts share port 25.
 */
import * as net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailer, defineConfig, SmtpError, type Mailer } from '../../index.js';
import mx, { type MxResolver } from '../../plugins/mx/index.js';

interface Received { readonly rcpts: string[]; readonly data: string }

let port = 0;
const inbox = new Map<string, Received[]>();
const closers: (() => Promise<void>)[] = [];
let busyGreetings = 0;

async function smtpAt(host: string, wantPort: number): Promise<number> {
  const received: Received[] = [];
  inbox.set(host, received);
  const server = new SMTPServer({
    logger: false, authOptional: true, disableReverseLookup: true, hideSTARTTLS: true,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ rcpts: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString() });
        cb(null);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(wantPort, host, () => resolve()));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return ((server as unknown as { server: net.Server }).server.address() as net.AddressInfo).port;
}

const records: Record<string, { mx?: { exchange: string; priority: number }[]; a?: string[] }> = {
  'alpha.test': { mx: [{ exchange: 'mx2.alpha.test', priority: 20 }, { exchange: 'mx1.alpha.test', priority: 10 }] },
  'mx1.alpha.test': { a: ['127.0.0.4'] }, // nothing listens there: connection refused
  'mx2.alpha.test': { a: ['127.0.0.2'] },
  'beta.test': { mx: [{ exchange: 'mx.beta.test', priority: 10 }, { exchange: 'busy.beta.test', priority: 5 }] },
  'busy.beta.test': { a: ['127.0.0.5'] }, // greets with 421
  'mx.beta.test': { a: ['127.0.0.3'] },
  'gamma.test': { a: ['127.0.0.3'] }, // no MX: the domain is its own implicit MX
  'nullmx.test': { mx: [{ exchange: '', priority: 0 }] },
};

const notFound = (name: string) => Object.assign(new Error(`queryX ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
const noData = (name: string) => Object.assign(new Error(`queryX ENODATA ${name}`), { code: 'ENODATA' });

const resolver: MxResolver = {
  async resolveMx(domain) {
    const r = records[domain];
    if (!r) throw notFound(domain);
    if (!r.mx) throw noData(domain);
    return r.mx;
  },
  async resolve4(host) {
    const r = records[host];
    if (!r) throw notFound(host);
    if (!r.a) throw noData(host);
    return r.a;
  },
};

let mailer: Mailer;
beforeAll(async () => {
  port = await smtpAt('127.0.0.2', 0);
  await smtpAt('127.0.0.3', port);
  const busy = net.createServer((socket) => {
    busyGreetings++;
    socket.on('error', () => undefined);
    socket.end('421 4.3.2 too busy, try another MX\r\n');
  });
  await new Promise<void>((r) => busy.listen(port, '127.0.0.5', () => r()));
  closers.push(() => new Promise<void>((r) => busy.close(() => r())));
  mailer = createMailer(defineConfig({ plugins: [mx({ resolver, port })], transport: { tls: 'none', pool: { maxConnections: 2 } } }));
});
afterAll(async () => {
  await mailer.close();
  await Promise.all(closers.map((c) => c()));
});

describe('mx routing', () => {
  it('orders hosts by preference and keeps the MX name for TLS', async () => {
    const routes = await mx({ resolver, port: 2525 }).router!.route({ from: 'a@b.test', to: ['x@alpha.test', 'y@gamma.test', 'z@alpha.test'] });
    expect(routes).toEqual([
      { recipients: ['x@alpha.test', 'z@alpha.test'], hosts: [
        { host: '127.0.0.4', port: 2525, servername: 'mx1.alpha.test' },
        { host: '127.0.0.2', port: 2525, servername: 'mx2.alpha.test' },
      ] },
      { recipients: ['y@gamma.test'], hosts: [{ host: '127.0.0.3', port: 2525, servername: 'gamma.test' }] },
    ]);
  });

  it('delivers across two domains to two servers, past a dead first MX and a 421 greeting', async () => {
    const info = await mailer.sendMail({
      from: 'sender@origin.test',
      to: ['alice@alpha.test', 'bob@beta.test', 'carol@Alpha.test'],
      cc: 'dan@gamma.test',
      subject: 'direct',
      text: 'delivered directly\n',
    });
    expect(info.accepted.sort()).toEqual(['alice@alpha.test', 'bob@beta.test', 'carol@Alpha.test', 'dan@gamma.test']);
    expect(info.rejected).toEqual([]);
    expect(info.envelope).toEqual({ from: 'sender@origin.test', to: ['alice@alpha.test', 'bob@beta.test', 'carol@Alpha.test', 'dan@gamma.test'] });
    expect(info.response).toMatch(/^250 /);
    expect(inbox.get('127.0.0.2')!.map((m) => m.rcpts)).toEqual([['alice@alpha.test', 'carol@Alpha.test']]);
    expect(inbox.get('127.0.0.3')!.map((m) => m.rcpts).sort()).toEqual([['bob@beta.test'], ['dan@gamma.test']]);
    expect(busyGreetings).toBeGreaterThanOrEqual(1);
    // One message, one Message-ID, whichever server got it.
    const ids = [...inbox.values()].flat().map((m) => /^Message-ID: (.*)\r$/m.exec(m.data)![1]);
    expect(new Set(ids)).toEqual(new Set([info.messageId]));
  });

  it('rejects the recipients of a domain that has no mail host, delivering the others', async () => {
    const info = await mailer.sendMail({ from: 'sender@origin.test', to: ['x@nowhere.test', 'y@gamma.test', 'z@nullmx.test'], subject: 's', text: 't' });
    expect(info.accepted).toEqual(['y@gamma.test']);
    expect(info.rejected.sort()).toEqual(['x@nowhere.test', 'z@nullmx.test']);
    expect(info.rejectedErrors!.every((e) => e instanceof SmtpError && e.permanent)).toBe(true);
    expect(info.rejectedErrors!.map((e) => e.message).join(' ')).toMatch(/null MX/);
  });

  it('verify() without transport.host says there is no single server to check', async () => {
    await expect(mailer.verify()).rejects.toThrow(/no single server/);
  });

  it('throws when no route could be delivered', async () => {
    const err = await mailer.sendMail({ from: 'sender@origin.test', to: 'x@nowhere.test', subject: 's', text: 't' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect((err as SmtpError).message).toMatch(/nowhere\.test has no MX and no address/);
    expect((err as SmtpError).permanent).toBe(true);
  });
});
