/** The pieces under the Mailer on their own: backoff, failure classification, the rate limiter's
 *  schedule, the pool's bounds and order. */
import { describe, expect, it } from 'vitest';
import {
  SmtpDataError, SmtpInvalidInputError, SmtpRecipientsRefusedError, SmtpServerDisconnectedError, SmtpTimeoutError,
} from '../../index.js';
import { createPool } from '../../core/pool.js';
import { createRateLimiter } from '../../core/rate-limit.js';
import { backoff, classify, isDeliveryUnknown, retryPolicy, SmtpDeliveryUnknownError } from '../../core/retry.js';

const reply = (code: number) => ({ code, lines: ['x'], message: 'x' });

describe('backoff', () => {
  const policy = retryPolicy({ attempts: 5, minDelay: 100, maxDelay: 1000, factor: 3, jitter: 0.5 });
  it('grows by factor up to maxDelay', () => {
    expect([1, 2, 3, 4].map((n) => backoff(policy, n, () => 0))).toEqual([100, 300, 900, 1000]);
  });
  it('jitter shortens by up to the given fraction', () => {
    expect(backoff(policy, 2, () => 1)).toBe(150);
    expect(backoff(policy, 2, () => 0.5)).toBe(225);
  });
  it('no retry config means no retries', () => {
    expect(retryPolicy(undefined).attempts).toBe(0);
  });
});

describe('classify', () => {
  it('4xx and a connection lost before the terminator are retried', () => {
    expect(classify(new SmtpDataError(reply(451), 'busy', { stage: 'final-reply' }))).toBe('retry');
    expect(classify(new SmtpServerDisconnectedError('gone', { stage: 'mail' }))).toBe('retry');
    expect(classify(new SmtpTimeoutError('slow', 10, { stage: 'data' }))).toBe('retry');
    expect(classify(new SmtpRecipientsRefusedError({ a: reply(450) }))).toBe('retry');
  });
  it('5xx, invalid input and foreign errors are permanent', () => {
    expect(classify(new SmtpDataError(reply(554), 'no', { stage: 'final-reply' }))).toBe('permanent');
    expect(classify(new SmtpInvalidInputError('to', 'bad'))).toBe('permanent');
    expect(classify(new SmtpRecipientsRefusedError({ a: reply(550) }))).toBe('permanent');
    expect(classify(new TypeError('bug'))).toBe('permanent');
  });
  it('a lost reply to the terminator is unknown, for session errors and the Mailer error alike', () => {
    const lost = new SmtpServerDisconnectedError('gone', { stage: 'final-reply' });
    expect(classify(lost)).toBe('unknown');
    expect(classify(new SmtpTimeoutError('slow', 10, { stage: 'final-reply' }))).toBe('unknown');
    expect(isDeliveryUnknown(lost)).toBe(true);
    const wrapped = new SmtpDeliveryUnknownError('<id@x>', ['a@b'], lost);
    expect(isDeliveryUnknown(wrapped)).toBe(true);
    expect(wrapped.permanent).toBe(true); // a naive retry loop must not resend it
    // A copy of the class from another module instance (dist vs source) is recognised by its brand.
    expect(isDeliveryUnknown(Object.assign(new Error('x'), { deliveryUnknown: true }))).toBe(true);
    expect(isDeliveryUnknown(new SmtpServerDisconnectedError('gone', { stage: 'body' }))).toBe(false);
  });
});

describe('rate limiter', () => {
  it('spaces transactions evenly, with no burst at start', async () => {
    const limiter = createRateLimiter({ messages: 100, interval: 1000 });
    const t0 = performance.now();
    const at: number[] = [];
    await Promise.all(Array.from({ length: 21 }, () => limiter.acquire().then(() => at.push(performance.now() - t0))));
    // acquire() is the coarse gate (turns on an even schedule); spacing in real time is start()'s job.
    expect(at[0]).toBeLessThan(10);
    expect(at[20]).toBeGreaterThanOrEqual(199);
    expect(at[10]).toBeGreaterThanOrEqual(99);
  });
  it('start() keeps real starts within the limit even when turns bunch up', async () => {
    const limiter = createRateLimiter({ messages: 10, interval: 100 });
    // Thirty turns that all fell due at once (every connection was busy): no burst follows.
    const at: number[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 30 }, () => limiter.start().then(() => at.push(performance.now() - t0))));
    for (let i = 10; i < at.length; i++) expect(at[i]! - at[i - 10]!).toBeGreaterThanOrEqual(99);
    expect(at[29]).toBeGreaterThanOrEqual(289);
  });

  it('without a config it never waits', async () => {
    const limiter = createRateLimiter(undefined);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) await limiter.acquire();
    expect(performance.now() - t0).toBeLessThan(100);
  });
});

describe('pool', () => {
  interface Fake { readonly id: number; alive: boolean; shut: boolean }
  function fakePool(max: number, maxMessages = 100) {
    let opened = 0;
    let concurrent = 0;
    let peak = 0;
    const sessions: Fake[] = [];
    const pool = createPool<Fake>({
      maxConnections: max,
      maxMessages,
      open: async () => {
        concurrent++;
        peak = Math.max(peak, concurrent);
        const s = { id: ++opened, alive: true, shut: false };
        sessions.push(s);
        return s;
      },
      alive: (s) => s.alive,
      shut: async (s) => { await new Promise((r) => setTimeout(r, 5)); s.shut = true; s.alive = false; concurrent--; },
    });
    return { pool, sessions, peak: () => peak, opened: () => opened, drop: (s: Fake) => { s.alive = false; concurrent--; } };
  }

  it('never has more than maxConnections sessions, QUITs included', async () => {
    const f = fakePool(3, 2);
    await Promise.all(Array.from({ length: 30 }, () => f.pool.use(async () => { await new Promise((r) => setTimeout(r, 2)); })));
    expect(f.peak()).toBeLessThanOrEqual(3);
    expect(f.opened()).toBe(15);
    await f.pool.close();
    expect(f.sessions.every((s) => s.shut)).toBe(true);
  });

  it('serves waiters first in, first out', async () => {
    const f = fakePool(1);
    const order: number[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => f.pool.use(async () => { order.push(i); })));
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await f.pool.close();
  });

  it('replaces a session that died, and reports reuse in the lease', async () => {
    const f = fakePool(1);
    const leases: number[] = [];
    await f.pool.use(async (_s, lease) => { leases.push(lease.messages); });
    await f.pool.use(async (s, lease) => { leases.push(lease.messages); f.drop(s); });
    await f.pool.use(async (s, lease) => { leases.push(lease.messages); expect(s.id).toBe(2); });
    expect(leases).toEqual([0, 1, 0]);
    await f.pool.close();
  });

  it('frees the slot when opening fails', async () => {
    let fail = true;
    const pool = createPool<object>({
      maxConnections: 1, maxMessages: 10,
      open: async () => { if (fail) { fail = false; throw new Error('refused'); } return {}; },
      alive: () => true,
      shut: async () => undefined,
    });
    await expect(pool.use(async () => 1)).rejects.toThrow('refused');
    await expect(pool.use(async () => 2)).resolves.toBe(2);
    await pool.close();
  });
});
