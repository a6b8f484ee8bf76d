/**
 * The queue tests' own processes: a private redis-server on a free loopback port (no persistence),
 * `mailstage worker` processes from the built CLI, and an in-process sink that records every
 * arrival's Message-ID and time. Everything is stopped by PID; the interop exit hook (track) kills
 * what a crashed test left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { parseQueueUrl } from '../../queue/connection.js';
import { openRunStore } from '../../queue/state.js';
import { spawnCli } from '../cli/run.js';
import { freePort, isAlive, isExecutable, killTree, LOOPBACK, sleep, track, untrack, waitForPorts } from '../interop/servers/common.js';
import { writeCsv } from '../runner/helpers.js';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const haveRedis = isExecutable(REDIS_SERVER);

export interface RedisProcess {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const pid = child.pid!;
    track(pid, 'redis-server');
    try {
      await waitForPorts([port], { timeoutMs: 5_000, check: () => { if (child.exitCode !== null) throw new Error(`redis-server exited: ${out.slice(-2000)}`); } });
    } catch (error) {
      await killTree(pid, 1_000);
      untrack(pid);
      if (attempt < 2) continue; // lost the port race with another process
      throw error;
    }
    return {
      url: `redis://${LOOPBACK}:${port}/0`,
      pid,
      async stop() {
        if (isAlive(pid)) await killTree(pid, 3_000);
        untrack(pid);
      },
    };
  }
}

export interface Arrival { readonly row: number; readonly messageId: string; readonly at: number }

export interface Sink {
  readonly port: number;
  readonly arrivals: Arrival[];
  /** Called on each arrival, before the reply goes out. */
  onArrival: (count: number) => void;
  close(): Promise<void>;
}

/** smtp-server in this process; `replyDelayMs` holds the reply so messages are in flight. */
export async function startSink(options: { readonly replyDelayMs?: number } = {}): Promise<Sink> {
  const arrivals: Arrival[] = [];
  const sink = { onArrival: (_: number): void => {} };
  const server = new SMTPServer({
    logger: false, disableReverseLookup: true, authOptional: true, disabledCommands: ['STARTTLS'], maxClients: 500,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        arrivals.push({ row: Number(/Row (\d+) /.exec(raw)![1]), messageId: /^Message-ID: (.*)$/im.exec(raw)![1]!.trim(), at: performance.now() });
        sink.onArrival(arrivals.length);
        if (options.replyDelayMs) setTimeout(() => cb(null), options.replyDelayMs);
        else cb(null);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, LOOPBACK, () => r()));
  const port = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  return Object.assign(sink, { port, arrivals, close: () => new Promise<void>((r) => server.close(() => r())) });
}

/** A folder with rows.csv (n rows) and a JSON config sending to `port`. */
export function writeRun(dir: string, options: { readonly rows: number; readonly port: number; readonly batch?: Record<string, unknown>; readonly transport?: Record<string, unknown> }): void {
  writeCsv(path.join(dir, 'rows.csv'), { rows: options.rows });
  writeFileSync(path.join(dir, 'mailstage.config.json'), JSON.stringify({
    transport: { host: LOOPBACK, port: options.port, tls: 'none', pool: { maxConnections: 4 }, ...options.transport },
    message: { from: 'sender@example.test' },
    batch: {
      source: 'rows.csv', templates: { subject: 'Hi {{name}}', text: 'Row {{n}} for {{name}}' }, concurrency: 8,
      retry: { attempts: 3, minDelay: 100, maxDelay: 1000 }, ...options.batch,
    },
  }));
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `mailstage worker` from the sources (tsx); resolves once it printed "ready". */
export async function startWorkerProcess(dir: string, url: string, extra: readonly string[] = []): Promise<WorkerProcess> {
  const child = spawnCli(['worker', '--queue', url, '--lock-ms', '5000', ...extra], { cwd: dir });
  child.stdin!.end();
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const pid = child.pid!;
  track(pid, 'mailstage worker');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      untrack(pid);
      resolve({ code, signal });
    }));
  const deadline = Date.now() + 30_000;
  while (!/ready on/.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker exited before it was ready:\n${out}`);
    if (Date.now() > deadline) throw new Error(`worker not ready after 30 s:\n${out}`);
    await sleep(20);
  }
  return {
    child, pid, exited, output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return (await exited).code;
    },
  };
}

/** utime + stime of a live process, in ms (Linux /proc; clock ticks are 100 Hz here). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** Polls until `check` returns true. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Whether every row of the run has its outcome (read from Redis in this process). */
export async function runCompleted(url: string, run: string): Promise<boolean> {
  const store = openRunStore(parseQueueUrl(url));
  try {
    const meta = await store.getMeta(run);
    if (!meta || meta.status !== 'enqueued') return false;
    const c = await store.counts(run);
    return c.sent + c.refused + c.failed + c.invalid + c.unknown >= meta.rows;
  } finally {
    await store.close();
  }
}
