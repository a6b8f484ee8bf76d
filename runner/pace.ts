/**
 * The batch's own rate limit (`batch.rateLimit`): sends are spaced evenly, `interval / messages`
 * apart, rather than bursting a whole interval's allowance at once — a relay counting per second
 * then never sees more than the limit in any window. (The Mailer applies `transport.rateLimit`
 * on its side; this one is for the mailing.)
 */
export interface RateLimit {
  readonly messages: number;
  readonly interval: number;
}

export type Pace = (signal?: AbortSignal) => Promise<void>;

export function createPace(limit: RateLimit | undefined): Pace {
  if (limit === undefined) return async () => {};
  const gap = limit.interval / limit.messages;
  let next = 0;
  return (signal) => {
    const now = performance.now();
    const at = Math.max(now, next);
    next = at + gap;
    const wait = at - now;
    if (wait <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  };
}
