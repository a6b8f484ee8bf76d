/**
 * Where the queue lives: one Redis URL (`redis://[user:pass@]host:port/db`, `rediss://` for TLS)
 * names the Redis database that holds both the BullMQ queue and the runs' state. Every command that
 * takes `--queue` goes through here, so a bad URL is one line and exit 2 everywhere.
 */
import { BatchInputError } from '../runner/errors.js';

/** One BullMQ queue for every run; runs are told apart by job id and by their state keys. */
export const QUEUE_NAME = 'mailstage';

export interface QueueTarget {
  readonly url: string;
  /** The URL without its password, for logs and messages. */
  readonly display: string;
}

export function parseQueueUrl(url: string): QueueTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BatchInputError(`--queue expects a Redis URL like redis://host:6379/0, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new BatchInputError(`--queue expects a redis:// or rediss:// URL, got ${parsed.protocol}//…`);
  }
  if (parsed.hostname === '') throw new BatchInputError(`--queue URL has no host: ${JSON.stringify(url)}`);
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new BatchInputError(`--queue URL: the path must be a database number, got /${db}`);
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  return { url, display: shown.toString() };
}

/** Connection options for BullMQ and for our own client (BullMQ passes `url` to ioredis). */
export function connectionOptions(target: QueueTarget): { readonly url: string } {
  return { url: target.url };
}
