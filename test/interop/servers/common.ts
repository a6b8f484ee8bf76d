/**
 * Shared plumbing for the real-server harnesses: free loopback ports, private temp folders,
 * waiting for a listener, log tails for error messages, and process-tree clean-up by PID
 * (with an exit hook as a safety net so a crashed test file never leaks a postfix/dovecot).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const LOOPBACK = '127.0.0.1' as const;

/** Debian's interpreter: the pyenv `python3` first on PATH has no aiosmtpd. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Keep the temp folders after stop() (for post-mortems): MAILSTAGE_INTEROP_KEEP=1. */
export const KEEP_TEMP = process.env.MAILSTAGE_INTEROP_KEEP === '1';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reserves `count` distinct free ports by binding them all to port 0 at once (so the kernel cannot
 * hand out the same one twice), then releases them for the server to bind. There is a small race
 * with other processes between release and the server's bind; callers retry start-up once.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: LOOPBACK, port: 0, exclusive: true }, () => resolve());
      });
      servers.push(server);
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * A private temp folder. 0755 because the servers drop privileges (postfix, nobody, dovenull) and
 * must traverse it: mkdtemp makes 0700 folders, which gave "Permission denied" from every
 * non-root daemon.
 */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `mailstage-${prefix}-`));
  await chmod(dir, 0o755);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  if (KEEP_TEMP) return;
  await rm(dir, { recursive: true, force: true });
}

/** Last `lines` lines of a log file, or a note that there is none (for start-up error messages). */
export async function logTail(file: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    const all = text.trimEnd().split('\n');
    return all.slice(-lines).join('\n') || '(log empty)';
  } catch {
    return `(no log at ${file})`;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One connection attempt; true when something accepts on host:port. */
export function canConnect(port: number, host: string = LOOPBACK, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls until every port accepts a connection. `check` runs between polls and may throw (e.g. the
 * server process already exited) to fail fast instead of waiting for the timeout.
 */
export async function waitForPorts(
  ports: readonly number[],
  opts: { timeoutMs: number; check?: () => void | Promise<void> },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const pending = new Set(ports);
  for (;;) {
    for (const port of [...pending]) if (await canConnect(port)) pending.delete(port);
    if (pending.size === 0) return;
    await opts.check?.();
    if (Date.now() > deadline) throw new Error(`port(s) ${[...pending].join(', ')} not listening after ${opts.timeoutMs} ms`);
    await sleep(25);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); it is gone for our purposes.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** pid plus all its descendants, read from /proc (Linux only, which is what CI runs). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [root];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) comes after the ")" that closes the command name, which may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // raced with an exiting process
    }
  }
  const result: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    result.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return result;
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * Stops a server by PID: SIGTERM to its root process (postfix master and dovecot pass it on to
 * their children and exit), wait for the whole tree captured beforehand to disappear, then
 * SIGKILL whatever is left. Never matches processes by name: other test runs may share the box.
 */
export async function killTree(root: number, graceMs = 5_000): Promise<void> {
  const tree = processTree(root);
  signal([root], 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!tree.some(isAlive)) return;
    await sleep(20);
  }
  signal(tree.filter(isAlive), 'SIGKILL');
  const hardDeadline = Date.now() + 2_000;
  while (Date.now() < hardDeadline && tree.some(isAlive)) await sleep(20);
}

// ---- Safety net: kill every tracked server tree when this process exits -----------------------

const tracked = new Map<number, { label: string; dir: string | undefined }>();
let hooked = false;

function killAllTrackedSync(): void {
  for (const [pid, { dir }] of tracked) {
    const tree = processTree(pid);
    signal(tree, 'SIGKILL');
    if (dir && !KEEP_TEMP) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // a SIGKILLed daemon may still hold a file for a moment; /tmp is cleaned eventually
      }
    }
  }
  tracked.clear();
}

/**
 * Register a server root PID (and its temp folder) for the exit hook; call `untrack` once
 * stop() has killed it.
 */
export function track(pid: number, label: string, dir?: string): void {
  tracked.set(pid, { label, dir });
  if (hooked) return;
  hooked = true;
  // 'exit' listeners must be synchronous: SIGKILL the trees (no graceful stop is possible there).
  process.on('exit', killAllTrackedSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAllTrackedSync();
      // Re-raise with the default action unless someone else (vitest) handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

export function untrack(pid: number): void {
  tracked.delete(pid);
}

/** Runs a command synchronously for set-up steps (openssl, postfix start); throws with its output. */
export function run(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const result = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.error) throw new Error(`${cmd} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${result.status ?? result.signal}:\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

/** Numeric uid/gid of a system account (e.g. nobody, postfix), or undefined if it does not exist. */
export function accountIds(user: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === user) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: not a Debian box
  }
  return undefined;
}

export function groupId(group: string): number | undefined {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , gid] = line.split(':');
      if (name === group) return Number(gid);
    }
  } catch {
    // ignore
  }
  return undefined;
}

export function fileExists(file: string): boolean {
  return existsSync(file);
}

/** Retries a start function once when a port we picked was taken in the meantime. */
export async function withPortRetry<T>(start: () => Promise<T>, attempts = 2): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await start();
    } catch (error) {
      last = error;
      if (!/address already in use|EADDRINUSE|bind/i.test(String((error as Error).message))) throw error;
    }
  }
  throw last;
}
