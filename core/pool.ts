/**
 * A pool of sessions to one destination. It knows nothing of SMTP: the Mailer gives it `open`,
 * `alive` and `shut`.
 *
 * - At most `maxConnections` sessions exist at once, counting those being opened and those saying
 *   QUIT, so the server never sees more than that many sockets from us.
 * - A session carries at most `maxMessages` messages, then is retired (QUIT) and its slot reused.
 * - A session idle for `idleTimeout` ms is retired.
 * - A session found dead (the server closed it, a 421, a failed transaction that closed it) is
 *   dropped and replaced on demand.
 * - Callers wait in FIFO order; a session coming free is handed straight to the first waiter.
 */

export interface PoolOptions<S> {
  readonly maxConnections: number;
  readonly maxMessages: number;
  /** undefined: idle sessions stay until `close()`. */
  readonly idleTimeout?: number;
  open(): Promise<S>;
  alive(session: S): boolean;
  /** Ends a session politely (QUIT); must not throw. */
  shut(session: S): Promise<void>;
  onEvent?(event: PoolEvent): void;
}

export type PoolEvent =
  | { readonly type: 'open' }
  | { readonly type: 'retire'; readonly reason: 'max-messages' | 'idle' | 'closing' }
  | { readonly type: 'drop' };

export interface Lease {
  /** Messages this session carried before this one (0: freshly opened). */
  readonly messages: number;
}

export interface PoolStats {
  /** Sessions open, being opened, or saying QUIT. */
  readonly slots: number;
  readonly idle: number;
  readonly waiting: number;
}

export interface Pool<S> {
  /** Runs `fn` on a session; the session goes back to the pool (or is retired) when `fn` settles. */
  use<T>(fn: (session: S, lease: Lease) => Promise<T>): Promise<T>;
  /** Retires every idle session and waits for every QUIT. Sessions in use are retired on release. */
  close(): Promise<void>;
  stats(): PoolStats;
}

interface Entry<S> {
  readonly session: S;
  messages: number;
  timer?: NodeJS.Timeout;
}

/** `null`: the waiter was given a free slot and opens its own session. */
type Grant<S> = Entry<S> | null;

export function createPool<S>(options: PoolOptions<S>): Pool<S> {
  const idle: Entry<S>[] = [];
  const waiters: ((grant: Grant<S>) => void)[] = [];
  const shutting = new Set<Promise<void>>();
  let slots = 0;
  let closed = false;
  const emit = (e: PoolEvent): void => options.onEvent?.(e);

  const freeSlot = (): void => {
    const next = waiters.shift();
    if (next) next(null); else slots--;
  };

  const retire = (entry: Entry<S>, reason: 'max-messages' | 'idle' | 'closing'): void => {
    clearTimeout(entry.timer);
    emit({ type: 'retire', reason });
    // The slot stays taken until QUIT is done, keeping the socket count within maxConnections.
    const p: Promise<void> = options.shut(entry.session).catch(() => undefined).finally(() => {
      shutting.delete(p);
      freeSlot();
    });
    shutting.add(p);
  };

  const park = (entry: Entry<S>): void => {
    const next = waiters.shift();
    if (next) {
      next(entry);
      return;
    }
    idle.push(entry);
    if (options.idleTimeout !== undefined) {
      entry.timer = setTimeout(() => {
        const i = idle.indexOf(entry);
        if (i >= 0) {
          idle.splice(i, 1);
          retire(entry, 'idle');
        }
      }, options.idleTimeout);
    }
  };

  const acquire = async (): Promise<Entry<S>> => {
    if (closed) throw new Error('pool is closed');
    let grant: Grant<S>;
    // Most recently used first: the others stay idle long enough to time out when load drops.
    const warm = idle.pop();
    if (warm) {
      clearTimeout(warm.timer);
      grant = warm;
    } else if (slots < options.maxConnections) {
      slots++;
      grant = null;
    } else {
      grant = await new Promise<Grant<S>>((resolve) => waiters.push(resolve));
    }
    if (grant !== null) {
      if (options.alive(grant.session)) return grant;
      emit({ type: 'drop' }); // died while idle: its slot is ours to open a new one
    }
    try {
      const session = await options.open();
      emit({ type: 'open' });
      return { session, messages: 0 };
    } catch (err) {
      freeSlot();
      throw err;
    }
  };

  const release = (entry: Entry<S>): void => {
    entry.messages++;
    if (!options.alive(entry.session)) {
      emit({ type: 'drop' });
      freeSlot();
    } else if (closed) {
      retire(entry, 'closing');
    } else if (entry.messages >= options.maxMessages) {
      retire(entry, 'max-messages');
    } else {
      park(entry);
    }
  };

  return {
    async use(fn) {
      const entry = await acquire();
      try {
        return await fn(entry.session, { messages: entry.messages });
      } finally {
        release(entry);
      }
    },
    async close() {
      closed = true;
      for (const entry of idle.splice(0)) retire(entry, 'closing');
      while (shutting.size > 0) await Promise.all([...shutting]);
    },
    stats: () => ({ slots, idle: idle.length, waiting: waiters.length }),
  };
}
