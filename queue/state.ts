/**
 * A queued run's state in Redis, next to the BullMQ queue and readable from any host:
 *
 *   mailstage:run:{RUN}:meta     hash  run, source, domain, createdAt, status, rows, total, lastAt
 *   mailstage:run:{RUN}:outcome  hash  row → the row's final record (the journal's record shapes)
 *   mailstage:run:{RUN}:counts   hash  outcome → rows (kept in step with `outcome` by one script)
 *   mailstage:run:{RUN}:started  hash  row → the worker sending it now (cleared with the outcome)
 *   mailstage:run:{RUN}:doubt    hash  row → why its delivery was once unknown and it went out again
 *
 * `started` is what makes a crash visible: a worker marks a row before handing it to the Mailer
 * and the outcome script clears the mark. When BullMQ hands a stalled job (its worker died) to
 * another worker, the mark is still there: the row may have been delivered, so it is recorded in
 * `doubt` and sent again with the same Message-ID — a possible duplicate, reported as such.
 */
import { Redis } from 'ioredis';
import type { RowRecord } from '../runner/journal.js';
import { connectionOptions, type QueueTarget } from './connection.js';

/** A row's final record; `by` names the worker that wrote it. */
export type OutcomeRecord = Exclude<RowRecord, { readonly e: 'queued' }> & { readonly by?: string };

export interface Doubt {
  readonly id: string;
  /** How many times the row went out again after an unknown delivery. */
  readonly count: number;
  readonly reason: string;
}

export interface RunMeta {
  readonly run: string;
  readonly source: string;
  readonly domain: string;
  readonly createdAt: string;
  /** 'enqueueing' until every row of the source is in the queue (or recorded invalid). */
  readonly status: 'enqueueing' | 'enqueued';
  /** The highest row number enqueued (rows are 1…rows). */
  readonly rows: number;
  readonly enqueuedAt?: string;
  /** When the last outcome was recorded. */
  readonly lastAt?: string;
}

export type OutcomeCounts = Readonly<Record<'sent' | 'partial' | 'refused' | 'failed' | 'invalid' | 'unknown', number>>;

const key = (run: string, part: string): string => `mailstage:run:{${run}}:${part}`;

// Replaces a row's outcome and moves the counters with it, atomically: a row recorded twice
// (a job processed again after its worker lost the lock) is still counted once.
const RECORD = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev then
  local p = cjson.decode(prev)
  redis.call('HINCRBY', KEYS[2], p.e, -1)
  if type(p.rejected) == 'table' and #p.rejected > 0 then redis.call('HINCRBY', KEYS[2], 'partial', -1) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[2], 'partial', 1) end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], 'lastAt', ARGV[5])
return prev and 1 or 0`;

// Before a send: 'done' when the row already has its outcome (nothing to do), else marks the row
// as being sent by ARGV[2] and returns the previous mark (a worker that vanished mid-send) or nil.
const BEGIN = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'done' end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return prev`;

const DOUBT = `
local d = redis.call('HGET', KEYS[1], ARGV[1])
local n = 1
if d then n = cjson.decode(d).count + 1 end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ id = ARGV[2], count = n, reason = ARGV[3] }))
return n`;

interface Scripts {
  msRecord(k1: string, k2: string, k3: string, k4: string, row: number, kind: string, json: string, partial: string, now: string): Promise<number>;
  msBegin(k1: string, k2: string, row: number, owner: string): Promise<string | null>;
  msDoubt(k1: string, row: number, id: string, reason: string): Promise<number>;
}

export interface RunStore {
  getMeta(run: string): Promise<RunMeta | undefined>;
  putMeta(run: string, fields: Partial<RunMeta>): Promise<void>;
  /** 'done': the row has its outcome. Else the mark of a previous, vanished attempt, or null. */
  begin(run: string, row: number, owner: string): Promise<'done' | string | null>;
  /** Clears the row's mark: the attempt ended without delivery (a retry follows). */
  release(run: string, row: number): Promise<void>;
  /** The row's delivery was unknown; it goes out again with the same Message-ID. */
  doubt(run: string, row: number, id: string, reason: string): Promise<void>;
  record(run: string, record: OutcomeRecord): Promise<void>;
  counts(run: string): Promise<OutcomeCounts>;
  /** Rows with an outcome among `rows` (for an idempotent enqueue). */
  recorded(run: string, rows: readonly number[]): Promise<ReadonlySet<number>>;
  outcomes(run: string, rows: readonly number[]): Promise<readonly (OutcomeRecord | undefined)[]>;
  doubts(run: string, rows: readonly number[]): Promise<readonly (Doubt | undefined)[]>;
  doubtCount(run: string): Promise<number>;
  inFlight(run: string): Promise<number>;
  close(): Promise<void>;
}

export function openRunStore(target: QueueTarget): RunStore {
  const redis = new Redis(connectionOptions(target).url, { lazyConnect: false, maxRetriesPerRequest: 3 });
  // Connection errors surface on the commands; without a listener ioredis would also log them.
  redis.on('error', () => {});
  redis.defineCommand('msRecord', { numberOfKeys: 4, lua: RECORD });
  redis.defineCommand('msBegin', { numberOfKeys: 2, lua: BEGIN });
  redis.defineCommand('msDoubt', { numberOfKeys: 1, lua: DOUBT });
  const s = redis as unknown as Scripts;
  const parse = <T>(v: string | null): T | undefined => (v === null ? undefined : (JSON.parse(v) as T));

  return {
    async getMeta(run) {
      const m = await redis.hgetall(key(run, 'meta'));
      if (m.run === undefined) return undefined;
      return {
        run: m.run, source: m.source ?? '', domain: m.domain ?? '', createdAt: m.createdAt ?? '',
        status: m.status === 'enqueued' ? 'enqueued' : 'enqueueing', rows: Number(m.rows ?? 0),
        ...(m.enqueuedAt ? { enqueuedAt: m.enqueuedAt } : {}),
        ...(m.lastAt ? { lastAt: m.lastAt } : {}),
      };
    },
    async putMeta(run, fields) {
      const flat = Object.entries(fields).filter(([, v]) => v !== undefined).flatMap(([k, v]) => [k, String(v)]);
      if (flat.length > 0) await redis.hset(key(run, 'meta'), ...flat);
    },
    async begin(run, row, owner) {
      return s.msBegin(key(run, 'outcome'), key(run, 'started'), row, owner);
    },
    async release(run, row) {
      await redis.hdel(key(run, 'started'), String(row));
    },
    async doubt(run, row, id, reason) {
      await s.msDoubt(key(run, 'doubt'), row, id, reason);
    },
    async record(run, record) {
      const partial = record.e === 'sent' && (record.rejected?.length ?? 0) > 0 ? '1' : '0';
      await s.msRecord(
        key(run, 'outcome'), key(run, 'counts'), key(run, 'started'), key(run, 'meta'),
        record.row, record.e, JSON.stringify(record), partial, new Date().toISOString(),
      );
    },
    async counts(run) {
      const c = await redis.hgetall(key(run, 'counts'));
      const n = (k: string): number => Number(c[k] ?? 0);
      return { sent: n('sent'), partial: n('partial'), refused: n('refused'), failed: n('failed'), invalid: n('invalid'), unknown: n('unknown') };
    },
    async recorded(run, rows) {
      if (rows.length === 0) return new Set();
      const flags = await redis.hmget(key(run, 'outcome'), ...rows.map(String));
      return new Set(rows.filter((_, i) => flags[i] !== null));
    },
    async outcomes(run, rows) {
      if (rows.length === 0) return [];
      return (await redis.hmget(key(run, 'outcome'), ...rows.map(String))).map((v) => parse<OutcomeRecord>(v));
    },
    async doubts(run, rows) {
      if (rows.length === 0) return [];
      return (await redis.hmget(key(run, 'doubt'), ...rows.map(String))).map((v) => parse<Doubt>(v));
    },
    doubtCount: (run) => redis.hlen(key(run, 'doubt')),
    inFlight: (run) => redis.hlen(key(run, 'started')),
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
