/**
 * The Mailer's rate limit, shared by every connection of every pool: at most `messages`
 * transactions start in any span of `interval`, spread evenly (one every interval/messages) with
 * no burst at start-up, so 2 000 messages at 500/s take 4 s, not 3.
 *
 * Two gates, because one cannot do both jobs:
 * - `acquire()`, before a connection is leased: a FIFO turn on an even schedule kept in
 *   theoretical time (a token bucket of size one). Callers wait here without holding a connection,
 *   so a slow rate never leaves a leased connection idle long enough for the server to drop it.
 * - `start()`, on the leased connection, right before the transaction: the same even schedule,
 *   plus a hard check in real time: a start comes no sooner than `interval` after the start
 *   `messages` places before it. Turns that fell due while every connection was busy (or the
 *   first was still opening) would otherwise go out back to back, and a late timer followed by a
 *   punctual one would put two starts closer than the schedule. The schedule does not drift with
 *   late timers; the real-time check only bites at the edges, so the rate stays close to the limit.
 */
import type { RateLimitConfig } from './config/schema.js';
import { sleep } from './retry.js';

export interface RateLimiter {
  /** Resolves when the caller's turn has come (call before taking a connection). */
  acquire(): Promise<void>;
  /** Resolves when the transaction may start (call on the connection, right before sending). */
  start(): Promise<void>;
}

const UNLIMITED: RateLimiter = { acquire: () => Promise.resolve(), start: () => Promise.resolve() };

export function createRateLimiter(config: RateLimitConfig | undefined, now: () => number = performance.now.bind(performance)): RateLimiter {
  if (!config) return UNLIMITED;
  const gap = config.interval / config.messages;

  // Node's timers run on a millisecond loop clock and may fire up to ~1 ms early by `now()`.
  const sleepUntil = async (at: number): Promise<void> => {
    for (let wait = at - now(); wait > 0; wait = at - now()) await sleep(Math.ceil(wait));
  };
  /** An even schedule: each call gets the next slot, no earlier than now. */
  const schedule = (): (() => number) => {
    let next = -Infinity;
    return () => {
      const at = Math.max(next, now());
      next = at + gap;
      return at;
    };
  };

  const turn = schedule();
  const slot = schedule();
  // The real start times of the last `messages` transactions (a ring).
  const starts = new Float64Array(config.messages).fill(-Infinity);
  let oldest = 0;
  let previous: Promise<void> = Promise.resolve();

  return {
    acquire: () => sleepUntil(turn()),
    start() {
      const at = slot();
      // One after another, so the ring is read and written in start order.
      const started = previous.then(async () => {
        await sleepUntil(Math.max(at, starts[oldest]! + config.interval));
        starts[oldest] = now();
        oldest = (oldest + 1) % starts.length;
      });
      previous = started;
      return started;
    },
  };
}
