/**
 * aiosmtpd (Debian python3-aiosmtpd 1.4.3) as an independent SMTP/LMTP implementation, run by
 * aiosmtpd_server.py beside this file under Debian's /usr/bin/python3 (the pyenv python3 first on
 * PATH has no aiosmtpd).
 *
 * SMTP EHLO: 250-<hostname> 250-SIZE n 250-8BITMIME 250-SMTPUTF8 [250-STARTTLS]
 *            250-AUTH CRAM-MD5 LOGIN PLAIN 250 HELP
 * (no PIPELINING, CHUNKING, DSN or ENHANCEDSTATUSCODES; unknown MAIL parameters get 555).
 * Slow compared with Postfix: not a throughput target.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverCertificate, writeCertificateFiles, type ServerCertificate } from './certs.js';
import {
  freePort,
  isAlive,
  isExecutable,
  killTree,
  LOOPBACK,
  makeTempDir,
  removeTempDir,
  sleep,
  SYSTEM_PYTHON,
  track,
  untrack,
  withPortRetry,
} from './common.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'aiosmtpd_server.py');

export const AIOSMTPD_USER = 'aiouser';
export const AIOSMTPD_PASSWORD = 'aio-p4ss';
export const AIOSMTPD_HOSTNAME = 'aiosmtpd.example.test';

export interface AiosmtpdOptions {
  /** LMTP (aiosmtpd.lmtp.LMTP: LHLO, one reply per recipient after DATA). Default false. */
  lmtp?: boolean;
  /** 'starttls' offers STARTTLS, 'implicit' wraps the port in TLS. Default 'none'. */
  tls?: 'none' | 'starttls' | 'implicit';
  /** PEM cert/key; default the generated localhost one (`serverCertificate()`). */
  certificate?: Pick<ServerCertificate, 'cert' | 'key'>;
  /** Offer AUTH PLAIN/LOGIN/CRAM-MD5 accepting user/password. Default true. */
  auth?: boolean;
  user?: string;
  password?: string;
  /** aiosmtpd's auth_require_tls (538 for AUTH before STARTTLS). Default false. */
  authRequireTls?: boolean;
  /** auth_required: 530 for MAIL before AUTH. Default false. */
  authRequired?: boolean;
  /** require_starttls: 530 for anything but EHLO/STARTTLS/QUIT before TLS. Default false. */
  requireStarttls?: boolean;
  /** enable_SMTPUTF8. Default true. */
  smtputf8?: boolean;
  /** data_size_limit, advertised as SIZE. Default 100 MiB (aiosmtpd's own default is 32 MiB). */
  dataSizeLimit?: number;
  /** LMTP: these recipients are accepted at RCPT but get 550 5.1.1 after DATA. */
  failRecipients?: readonly string[];
  /** Rejected at RCPT with 550 5.1.1 (SMTP and LMTP). */
  rejectRecipients?: readonly string[];
  hostname?: string;
  /** aiosmtpd debug log on stderr (kept in output()). */
  verbose?: boolean;
  startTimeoutMs?: number;
}

export interface AiosmtpdMessage {
  readonly seq: number;
  readonly mailFrom: string;
  readonly mailOptions: string[];
  readonly rcptTos: string[];
  /** Each accepted recipient with its own RCPT parameters (e.g. NOTIFY=…, ORCPT=…). */
  readonly recipients: { address: string; options: string[] }[];
  readonly smtpUtf8: boolean;
  /** Authenticated login, or null. */
  readonly login: string | null;
  readonly tls: boolean;
  readonly heloName: string | null;
  readonly size: number;
  readonly lmtp: boolean;
  /** The message bytes as received (dot-unstuffed, CRLF line endings as sent). */
  readonly content: Buffer;
}

export interface AiosmtpdServer {
  readonly host: typeof LOOPBACK;
  readonly port: number;
  readonly lmtp: boolean;
  readonly tls: 'none' | 'starttls' | 'implicit';
  /** PEM to pass as `ca` (when tls is not 'none'). */
  readonly ca: string | undefined;
  readonly auth: { readonly user: string; readonly password: string } | undefined;
  readonly pid: number;
  readonly dir: string;
  receivedMessages(): Promise<AiosmtpdMessage[]>;
  waitForMessages(opts: { count: number; timeoutMs?: number }): Promise<AiosmtpdMessage[]>;
  /** The Python process's stdout/stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

let cachedAvailable: boolean | undefined;

/** Debian python3 with the aiosmtpd module (checked once per process by importing it). */
export function available(): boolean {
  if (cachedAvailable !== undefined) return cachedAvailable;
  cachedAvailable = false;
  if (isExecutable(SYSTEM_PYTHON) && existsSync(SCRIPT)) {
    // Synchronous on purpose: available() is used in describe.skipIf at collection time.
    const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import aiosmtpd.controller, aiosmtpd.lmtp'], { stdio: 'ignore', timeout: 10_000 });
    cachedAvailable = r.status === 0;
  }
  return cachedAvailable;
}

export async function startAiosmtpd(options: AiosmtpdOptions = {}): Promise<AiosmtpdServer> {
  if (!available()) throw new Error(`aiosmtpd not usable: needs ${SYSTEM_PYTHON} with python3-aiosmtpd (run .ci/install-interop.sh)`);
  const tls = options.tls ?? 'none';
  const certificate = tls === 'none' ? undefined : (options.certificate ?? (await serverCertificate()));
  return withPortRetry(() => startOnce(options, tls, certificate));
}

async function startOnce(
  options: AiosmtpdOptions,
  tls: 'none' | 'starttls' | 'implicit',
  certificate: Pick<ServerCertificate, 'cert' | 'key'> | undefined,
): Promise<AiosmtpdServer> {
  const dir = await makeTempDir('aiosmtpd');
  const outDir = path.join(dir, 'messages');
  await mkdir(outDir);
  const port = await freePort();
  const certFiles = certificate ? await writeCertificateFiles(certificate, dir) : undefined;
  const auth = options.auth ?? true;
  const user = options.user ?? AIOSMTPD_USER;
  const password = options.password ?? AIOSMTPD_PASSWORD;
  const config = {
    host: LOOPBACK,
    port,
    outDir,
    user,
    password,
    hostname: options.hostname ?? AIOSMTPD_HOSTNAME,
    lmtp: options.lmtp ?? false,
    tls,
    certFile: certFiles?.certFile,
    keyFile: certFiles?.keyFile,
    auth,
    authRequireTls: options.authRequireTls ?? false,
    authRequired: options.authRequired ?? false,
    requireStarttls: options.requireStarttls ?? false,
    smtputf8: options.smtputf8 ?? true,
    dataSizeLimit: options.dataSizeLimit ?? 100 * 1024 * 1024,
    failRecipients: options.failRecipients ?? [],
    rejectRecipients: options.rejectRecipients ?? [],
    verbose: options.verbose ?? false,
  };

  // -u: unbuffered, so "READY" and any traceback reach us at once.
  const child: ChildProcess = spawn(SYSTEM_PYTHON, ['-u', SCRIPT, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: dir,
    // Keep the pyenv/user site and PYTHONPATH of the caller out of Debian's interpreter.
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  let out = '';
  let exitInfo: string | undefined;
  const append = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > 512 * 1024) out = out.slice(-128 * 1024);
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
  track(pid, 'aiosmtpd', dir);

  // The script prints READY only after aiosmtpd's Controller has connected to itself once.
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  while (!out.includes(`READY ${port}`)) {
    if (exitInfo || Date.now() > deadline) {
      await killTree(pid, 1_000);
      untrack(pid);
      await removeTempDir(dir);
      const why = exitInfo ? `python ${exitInfo}` : 'timed out waiting for READY';
      throw new Error(`aiosmtpd failed to start on ${LOOPBACK}:${port}: ${why}\n--- output ---\n${out.slice(-4000)}`);
    }
    await sleep(20);
  }

  const receivedMessages = async (): Promise<AiosmtpdMessage[]> => {
    const names = (await readdir(outDir)).filter((n) => n.endsWith('.json')).sort();
    return Promise.all(
      names.map(async (name) => {
        const meta = JSON.parse(await readFile(path.join(outDir, name), 'utf8')) as Omit<AiosmtpdMessage, 'content'>;
        const content = await readFile(path.join(outDir, name.replace(/\.json$/, '.eml')));
        return { ...meta, content };
      }),
    );
  };

  let stopped = false;
  return {
    host: LOOPBACK,
    port,
    lmtp: config.lmtp,
    tls,
    ca: certificate?.cert,
    auth: auth ? { user, password } : undefined,
    pid,
    dir,
    receivedMessages,
    async waitForMessages({ count, timeoutMs = 10_000 }) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const messages = await receivedMessages();
        if (messages.length >= count) return messages;
        if (Date.now() > end) throw new Error(`aiosmtpd received ${messages.length} of ${count} messages in ${timeoutMs} ms\n${out.slice(-2000)}`);
        await sleep(20);
      }
    },
    output: () => out,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (isAlive(pid)) await killTree(pid, 3_000);
      untrack(pid);
      await removeTempDir(dir);
    },
  };
}
