/** The pool against a real smtp-server: throughput under a rate limit, rotation, idle close,
 *  replacement of dropped connections, draining close(). */
import { afterEach, describe, expect, it } from 'vitest';
import { createMailer, type Mailer, type MailerEvent } from '../../index.js';
import { configFor, countingServer, simple, until, type CountingServer } from './helpers.js';

let servers: CountingServer[] = [];
let mailers: Mailer[] = [];
afterEach(async () => {
  await Promise.all(mailers.map((m) => m.close()));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  mailers = [];
});

async function setup(transport: Record<string, unknown>, serverOptions = {}) {
  const server = await countingServer(serverOptions);
  servers.push(server);
  const mailer = createMailer(configFor(server, transport));
  mailers.push(mailer);
  return { server, mailer };
}

describe('Mailer pool', () => {
  it('sends 2 000 messages over at most 4 connections within a rate limit of 500/s', async () => {
    const { server, mailer } = await setup({
      pool: { maxConnections: 4, maxMessages: 10_000 },
      rateLimit: { messages: 500, interval: 1000 },
    });
    const starts: number[] = [];
    mailer.on((e) => { if (e.type === 'attempt') starts.push(performance.now()); });
    const started = performance.now();
    const infos = await Promise.all(Array.from({ length: 2000 }, (_, i) => mailer.sendMail(simple(i))));
    const elapsed = performance.now() - started;
    // The limit holds in every window, not just on average: at most 500 starts in any second.
    // 990 ms: these timestamps are taken a few microtasks after the limiter's own, which on a
    // loaded machine can be milliseconds (the limiter's own clock is checked in policy.test.ts).
    let busiest = 0;
    for (let i = 0, j = 0; i < starts.length; i++) {
      while (starts[i]! - starts[j]! >= 990) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    console.log(`2000 messages, 4 connections, 500/s: ${elapsed.toFixed(0)} ms; busiest second: ${busiest} starts`);
    expect(starts).toHaveLength(2000);
    expect(busiest).toBeLessThanOrEqual(500);
    expect(server.messages).toHaveLength(2000);
    expect(new Set(server.messages.map((m) => m.rcptTo[0]!.address)).size).toBe(2000);
    expect(infos.every((i) => i.accepted.length === 1 && i.rejected.length === 0)).toBe(true);
    expect(server.connections()).toBeLessThanOrEqual(4);
    expect(server.peak()).toBeLessThanOrEqual(4);
    // One message every 2 ms: the 2 000th may start no earlier than 3 998 ms after the first.
    expect(elapsed).toBeGreaterThanOrEqual(3990);
    expect(elapsed).toBeLessThan(15_000); // a sanity bound only: these machines are shared
  });

  it('without a rate limit uses every connection at once', async () => {
    const { server, mailer } = await setup({ pool: { maxConnections: 4, maxMessages: 10_000 } });
    await Promise.all(Array.from({ length: 200 }, (_, i) => mailer.sendMail(simple(i))));
    expect(server.messages).toHaveLength(200);
    expect(server.connections()).toBe(4);
  });

  it('replaces a connection after maxMessages, never exceeding maxConnections', async () => {
    const { server, mailer } = await setup({ pool: { maxConnections: 2, maxMessages: 3 } });
    await Promise.all(Array.from({ length: 12 }, (_, i) => mailer.sendMail(simple(i))));
    expect(server.messages).toHaveLength(12);
    expect(server.connections()).toBe(4); // 12 messages / 3 per connection
    expect(server.peak()).toBeLessThanOrEqual(2);
    // Every retired connection said QUIT and was closed.
    await until(() => server.closed() === 4);
  });

  it('reuses one connection and sends RSET only after a failed transaction', async () => {
    const server = await countingServer({
      onRcptTo(address: { address: string }, _s: unknown, cb: (e?: Error) => void) {
        if (address.address.startsWith('refused')) return cb(Object.assign(new Error('no such user'), { responseCode: 550 }));
        cb();
      },
    });
    servers.push(server);
    const client: string[] = [];
    const mailer = createMailer(configFor(server, { pool: { maxConnections: 1 } }), {
      debug: (e) => { if (e.direction === 'client') client.push(e.text); },
    });
    mailers.push(mailer);
    await mailer.sendMail(simple(1));
    await mailer.sendMail(simple(2));
    await expect(mailer.sendMail(simple(3, { to: 'refused@example.com' }))).rejects.toThrow(/refused/);
    await mailer.sendMail(simple(4));
    expect(server.messages).toHaveLength(3);
    expect(server.connections()).toBe(1);
    expect(client.filter((l) => l.startsWith('EHLO'))).toHaveLength(1);
    // The session's own RSET after the refused transaction, and no other.
    expect(client.filter((l) => l === 'RSET')).toHaveLength(1);
    const rset = client.indexOf('RSET');
    expect(client.slice(rset + 1).some((l) => l.includes('rcpt4@'))).toBe(true);
    expect(client.slice(0, rset).some((l) => l.includes('refused@'))).toBe(true);
  });

  it('closes idle connections after idleTimeout and opens a new one when needed', async () => {
    const events: MailerEvent[] = [];
    const { server, mailer } = await setup({ pool: { maxConnections: 2, idleTimeout: 150 } });
    mailer.on((e) => events.push(e));
    await mailer.sendMail(simple(1));
    expect(server.open()).toBe(1);
    await until(() => server.closed() === 1, 1500);
    expect(server.open()).toBe(0);
    expect(events.some((e) => e.type === 'connection' && e.event.type === 'retire' && e.event.reason === 'idle')).toBe(true);
    await mailer.sendMail(simple(2));
    expect(server.connections()).toBe(2);
    expect(server.messages).toHaveLength(2);
  });

  it('replaces a connection the server closed while it was idle', async () => {
    // smtp-server answers 421 and closes a connection idle for socketTimeout.
    const { server, mailer } = await setup({ pool: { maxConnections: 1, idleTimeout: 60_000 } }, { socketTimeout: 200 });
    await mailer.sendMail(simple(1));
    await until(() => server.closed() === 1, 2000);
    const info = await mailer.sendMail(simple(2));
    expect(info.accepted).toEqual(['rcpt2@example.com']);
    expect(server.connections()).toBe(2);
    expect(server.messages).toHaveLength(2);
  });

  it('replaces a connection dropped with 421 at MAIL, without a retry being configured', async () => {
    let mails = 0;
    const { server, mailer } = await setup({ pool: { maxConnections: 1 } }, {
      onMailFrom(_a: unknown, _s: unknown, cb: (e?: Error) => void) {
        mails++;
        // The second transaction on the first connection: the server goes away.
        if (mails === 2) return cb(Object.assign(new Error('shutting down'), { responseCode: 421 }));
        cb();
      },
    });
    await mailer.sendMail(simple(1));
    const info = await mailer.sendMail(simple(2));
    expect(info.accepted).toEqual(['rcpt2@example.com']);
    expect(server.messages.map((m) => m.rcptTo[0]!.address)).toEqual(['rcpt1@example.com', 'rcpt2@example.com']);
    expect(server.connections()).toBe(2);
  });

  it('close() drains queued and in-flight messages, then QUITs every connection', async () => {
    const { server, mailer } = await setup({ pool: { maxConnections: 2 } });
    const sends = Array.from({ length: 30 }, (_, i) => mailer.sendMail(simple(i)));
    expect(mailer.isIdle()).toBe(false);
    await mailer.close();
    const infos = await Promise.all(sends);
    expect(infos).toHaveLength(30);
    expect(server.messages).toHaveLength(30);
    expect(mailer.isIdle()).toBe(true);
    await until(() => server.open() === 0);
    expect(server.closed()).toBe(server.connections());
    await expect(mailer.sendMail(simple(99))).rejects.toThrow(/closed/);
  });

  it('with pool: false opens one connection per message', async () => {
    const { server, mailer } = await setup({ pool: false });
    await Promise.all(Array.from({ length: 5 }, (_, i) => mailer.sendMail(simple(i))));
    expect(server.messages).toHaveLength(5);
    expect(server.connections()).toBe(5);
    await until(() => server.closed() === 5);
  });

  it('queues FIFO when every connection is busy', async () => {
    const { server, mailer } = await setup({ pool: { maxConnections: 1 } });
    const order: number[] = [];
    await Promise.all(Array.from({ length: 20 }, (_, i) => mailer.sendMail(simple(i)).then(() => order.push(i))));
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(server.messages.map((m) => m.rcptTo[0]!.address)).toEqual(Array.from({ length: 20 }, (_, i) => `rcpt${i}@example.com`));
  });

});
