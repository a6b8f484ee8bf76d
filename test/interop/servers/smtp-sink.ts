/**
 * Postfix's `smtp-sink`: a fast SMTP/LMTP sink (one process, no disk) for throughput tests and for
 * "accepts anything" interop. Advertises PIPELINING, 8BITMIME, AUTH PLAIN LOGIN (accepting any
 * credentials), XCLIENT, XFORWARD, ENHANCEDSTATUSCODES, DSN. No STARTTLS, SIZE, SMTPUTF8, CHUNKING.
 * Its last EHLO line is a bare `250 ` with no text.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, isAlive, isExecutable, isRoot, killTree, LOOPBACK, sleep, track, untrack, waitForPorts, withPortRetry } from './common.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';

export interface SmtpSinkOptions {
  /** `-L`: speak LMTP (LHLO; one reply per accepted recipient after the body). */
  lmtp?: boolean;
  /** Listen backlog (smtp-sink's positional argument). Default 256. */
  backlog?: number;
  /** `-m`: most simultaneous connections handled; more stay queued in the kernel. Default 256. */
  maxConnections?: number;
  /** `-h`: name in the greeting and EHLO reply. */
  hostname?: string;
  /** Extra smtp-sink flags, e.g. `['-Q', 'RCPT']` (421 after RCPT) or `['-w', '2']` (slow DATA). */
  extraArgs?: readonly string[];
  /** Milliseconds to wait for the port. Default 5 000. */
  startTimeoutMs?: number;
}

export interface SmtpSinkCounts {
  /** Sessions ended. */
  sessions: number;
  /** QUIT commands received. */
  quits: number;
  /** Messages received (each final "." or BDAT LAST counts once, whatever the recipient count). */
  messages: number;
}

export interface SmtpSinkServer {
  readonly host: typeof LOOPBACK;
  readonly port: number;
  readonly lmtp: boolean;
  readonly pid: number;
  /** Counters from smtp-sink's `-c` output (updated at ".", QUIT and session end). */
  counts(): SmtpSinkCounts;
  /** Resolves once `counts().messages >= count`. */
  waitForMessages(opts: { count: number; timeoutMs?: number }): Promise<SmtpSinkCounts>;
  /** smtp-sink's own stdout/stderr so far (the `-c` counter lines are \r-separated). */
  output(): string;
  stop(): Promise<void>;
}

export function available(): boolean {
  return isExecutable(SMTP_SINK);
}

export function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSinkServer> {
  if (!available()) throw new Error(`${SMTP_SINK} not installed (package postfix; run .ci/install-interop.sh)`);
  return withPortRetry(() => startOnce(options));
}

async function startOnce(options: SmtpSinkOptions): Promise<SmtpSinkServer> {
  const port = await freePort();
  const args = ['-4', '-c'];
  // As root smtp-sink refuses to run ("-u user is required"): it drops to that user after binding.
  if (isRoot()) args.push('-u', 'nobody');
  if (options.lmtp) args.push('-L');
  args.push('-m', String(options.maxConnections ?? 256));
  if (options.hostname) args.push('-h', options.hostname);
  args.push(...(options.extraArgs ?? []));
  args.push(`${LOOPBACK}:${port}`, String(options.backlog ?? 256));

  const child: ChildProcess = spawn(SMTP_SINK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exitInfo: string | undefined;
  const append = (chunk: Buffer) => {
    out += chunk.toString('latin1');
    // Counter lines accumulate forever in long benchmarks: keep the tail only.
    if (out.length > 256 * 1024) out = out.slice(-64 * 1024);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  child.on('exit', (code, sig) => {
    exitInfo = `exited with ${code ?? sig}`;
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  const pid = child.pid!;
  track(pid, 'smtp-sink');

  try {
    await waitForPorts([port], {
      timeoutMs: options.startTimeoutMs ?? 5_000,
      check: () => {
        if (exitInfo) throw new Error(`smtp-sink ${exitInfo}`);
      },
    });
  } catch (error) {
    await killTree(pid, 1_000);
    untrack(pid);
    throw new Error(`smtp-sink failed to start on ${LOOPBACK}:${port} (${SMTP_SINK} ${args.join(' ')}): ${(error as Error).message}\n--- output ---\n${out.slice(-4000)}`);
  }

  const counts = (): SmtpSinkCounts => {
    // `-c` writes "sess=N quit=N mesg=N" followed by \r, each time overwriting the same line.
    const matches = [...out.matchAll(/sess=(\d+) quit=(\d+) mesg=(\d+)/g)];
    const last = matches.at(-1);
    return last
      ? { sessions: Number(last[1]), quits: Number(last[2]), messages: Number(last[3]) }
      : { sessions: 0, quits: 0, messages: 0 };
  };

  let stopped = false;
  return {
    host: LOOPBACK,
    port,
    lmtp: options.lmtp ?? false,
    pid,
    counts,
    async waitForMessages({ count, timeoutMs = 10_000 }) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const c = counts();
        if (c.messages >= count) return c;
        if (Date.now() > deadline) throw new Error(`smtp-sink saw ${c.messages} of ${count} messages after ${timeoutMs} ms`);
        await sleep(10);
      }
    },
    output: () => out,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (isAlive(pid)) await killTree(pid, 2_000);
      untrack(pid);
    },
  };
}
