/**
 * A private Dovecot speaking LMTP (TCP + unix socket) and offering SASL to Postfix over TCP.
 *
 * Users (passwd-file userdb, all mapped to uid/gid nobody): alice, bob and tiny; tiny has a 1-byte
 * quota so DATA gets `552 5.2.2 <tiny@…> Quota exceeded` for tiny while alice/bob get 250 in the
 * same transaction — the real LMTP per-recipient case. Any other user: `550 5.1.1` at RCPT.
 * Domains are ignored (`auth_username_format = %Ln`): alice, alice@example.test, alice@localhost
 * are all alice.
 *
 * LHLO reply (2.3.19): 250-<hostname> 250-8BITMIME 250-CHUNKING 250-ENHANCEDSTATUSCODES 250 PIPELINING
 * (no SMTPUTF8, no SIZE, no DSN).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  accountIds,
  freePorts,
  isAlive,
  isExecutable,
  isRoot,
  killTree,
  LOOPBACK,
  logTail,
  makeTempDir,
  removeTempDir,
  sleep,
  track,
  untrack,
  waitForPorts,
  withPortRetry,
} from './common.js';
import { readMaildir, type DeliveredMessage } from './maildir.js';

export const DOVECOT = '/usr/sbin/dovecot';
const LMTP_BINARY = '/usr/lib/dovecot/lmtp';
const QUOTA_PLUGIN = '/usr/lib/dovecot/modules/lib10_quota_plugin.so';

/** The one password every user has (static passdb): for LMTP nothing, for SASL everything. */
export const DOVECOT_PASSWORD = 'dovecot-s3cret';
/** A user/password pair that Dovecot SASL (and so Postfix AUTH) accepts. */
export const DOVECOT_SASL_USER = 'alice';
export const DOVECOT_SASL_PASSWORD = DOVECOT_PASSWORD;
export const DOVECOT_USERS = ['alice', 'bob', 'tiny'] as const;
export type DovecotUser = (typeof DOVECOT_USERS)[number];
/** The user whose mailbox is always full (1-byte quota). */
export const OVER_QUOTA_USER: DovecotUser = 'tiny';
export const DOVECOT_HOSTNAME = 'lmtp.example.test';

export interface DovecotOptions {
  /** Milliseconds to wait for the listeners. Default 10 000. */
  startTimeoutMs?: number;
  /** auth_verbose/mail_debug in the log, for debugging a failing test. */
  verbose?: boolean;
}

export interface DovecotServer {
  readonly host: typeof LOOPBACK;
  /** LMTP over TCP. */
  readonly lmtpPort: number;
  /** LMTP over a unix socket (mode 0666). */
  readonly lmtpSocket: string;
  /** Dovecot auth protocol (not SASL-over-SMTP!) for Postfix's `smtpd_sasl_path = inet:…`. */
  readonly authPort: number;
  readonly pid: number;
  readonly dir: string;
  readonly logFile: string;
  readonly user: string;
  readonly password: string;
  /** Messages delivered to a user's Maildir, oldest first. */
  deliveredMessages(user: DovecotUser): Promise<DeliveredMessage[]>;
  waitForDelivery(opts: { user: DovecotUser; count: number; timeoutMs?: number }): Promise<DeliveredMessage[]>;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Dovecot needs root here (it switches to the nobody mail uid and its own service users). */
export function available(): boolean {
  return (
    isRoot() &&
    isExecutable(DOVECOT) &&
    isExecutable(LMTP_BINARY) &&
    accountIds('dovecot') !== undefined &&
    accountIds('dovenull') !== undefined
  );
}

/** Whether the quota plugin is installed (part of dovecot-core on Debian 12); without it tiny is a normal user. */
export function quotaAvailable(): boolean {
  // .so files need not be executable: existence is what matters.
  return existsSync(QUOTA_PLUGIN);
}

export function startDovecot(options: DovecotOptions = {}): Promise<DovecotServer> {
  if (!available()) throw new Error(`Dovecot not usable: needs root, ${DOVECOT} and ${LMTP_BINARY} (packages dovecot-core, dovecot-lmtpd; run .ci/install-interop.sh)`);
  return withPortRetry(() => startOnce(options));
}

async function startOnce(options: DovecotOptions): Promise<DovecotServer> {
  const dir = await makeTempDir('dovecot');
  const [lmtpPort, authPort] = (await freePorts(2)) as [number, number];
  const mailRoot = path.join(dir, 'mail');
  const logFile = path.join(dir, 'dovecot.log');
  const lmtpSocket = path.join(dir, 'lmtp.sock');
  const conf = path.join(dir, 'dovecot.conf');
  const usersFile = path.join(dir, 'users');
  const nobody = accountIds('nobody') ?? { uid: 65534, gid: 65534 };
  const quota = quotaAvailable();

  await mkdir(path.join(dir, 'run'));
  await mkdir(path.join(dir, 'state'));
  await mkdir(mailRoot);
  // Mail is written as nobody: Dovecot refuses uid 0 for mail access ("Mail access for users with
  // UID 0 is not permitted"), so the users map to nobody, which must own the mail root.
  await chown(mailRoot, nobody.uid, nobody.gid);

  // passwd-file: user:password:uid:gid:gecos:home:shell:extra. The password column stays empty:
  // the static passdb answers authentication; this file only says who exists and where mail goes.
  const users = DOVECOT_USERS.map((u) => {
    const extra = u === OVER_QUOTA_USER && quota ? 'userdb_quota_rule=*:bytes=1' : '';
    return `${u}::${nobody.uid}:${nobody.gid}::${path.join(mailRoot, u)}::${extra}`;
  });
  await writeFile(usersFile, users.join('\n') + '\n');

  // A config of our own: nothing from /etc/dovecot is included (its conf.d enables imap, ssl with
  // snakeoil certs, system users…). Every path lives under the temp folder.
  await writeFile(
    conf,
    `# mailstage interop: private Dovecot (LMTP + auth for Postfix SASL)
base_dir = ${path.join(dir, 'run')}
state_dir = ${path.join(dir, 'state')}
log_path = ${logFile}
info_log_path = ${logFile}
debug_log_path = ${logFile}
instance_name = mailstage-${path.basename(dir)}
hostname = ${DOVECOT_HOSTNAME}
protocols = lmtp
listen = ${LOOPBACK}
ssl = no
# Postfix tells Dovecot whether the SMTP session is TLS-protected; allow PLAIN/LOGIN without TLS so
# the client's plaintext-auth opt-in can be tested (the client, not the server, enforces it).
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
# Dovecot delays every failed authentication by 2 s (auth_failure_delay): wrong-password tests
# would each pay it through Postfix.
auth_failure_delay = 0
# alice@example.test and alice@localhost are both the passwd-file user alice.
auth_username_format = %Ln
${options.verbose ? 'auth_verbose = yes\nauth_debug = yes\nmail_debug = yes' : ''}
mail_location = maildir:~/Maildir
first_valid_uid = 100
${quota ? 'mail_plugins = $mail_plugins quota' : ''}
passdb {
  driver = static
  args = password=${DOVECOT_PASSWORD}
}
userdb {
  driver = passwd-file
  args = ${usersFile}
}
${quota ? `plugin {
  # Maildir++ quota; the limit is per user (userdb_quota_rule), none for alice and bob.
  quota = maildir:User quota
}` : ''}
service lmtp {
  inet_listener lmtp {
    address = ${LOOPBACK}
    port = ${lmtpPort}
  }
  unix_listener ${lmtpSocket} {
    mode = 0666
  }
}
service auth {
  inet_listener {
    address = ${LOOPBACK}
    port = ${authPort}
  }
}
`,
  );

  // -F: stay in the foreground as our child so we own its PID. stdio must not be our pipes:
  // dovecot's children inherit them and keep the caller's stdout open (vitest then hangs).
  const child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: 'ignore', cwd: dir });
  let exitInfo: string | undefined;
  child.on('exit', (code, sig) => {
    exitInfo = `exited with ${code ?? sig}`;
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  const pid = child.pid!;
  track(pid, 'dovecot', dir);

  try {
    await waitForPorts([lmtpPort, authPort], {
      timeoutMs: options.startTimeoutMs ?? 10_000,
      check: () => {
        if (exitInfo) throw new Error(`dovecot ${exitInfo}`);
      },
    });
  } catch (error) {
    await killTree(pid, 2_000);
    untrack(pid);
    const tail = await logTail(logFile);
    await removeTempDir(dir);
    throw new Error(`Dovecot failed to start (config ${conf}): ${(error as Error).message}\n--- ${logFile} ---\n${tail}`);
  }

  const deliveredMessages = (user: DovecotUser) => readMaildir(path.join(mailRoot, user, 'Maildir'));
  let stopped = false;
  return {
    host: LOOPBACK,
    lmtpPort,
    lmtpSocket,
    authPort,
    pid,
    dir,
    logFile,
    user: DOVECOT_SASL_USER,
    password: DOVECOT_SASL_PASSWORD,
    deliveredMessages,
    async waitForDelivery({ user, count, timeoutMs = 10_000 }) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const messages = await deliveredMessages(user);
        if (messages.length >= count) return messages;
        if (Date.now() > deadline) {
          throw new Error(`Dovecot delivered ${messages.length} of ${count} messages to ${user} in ${timeoutMs} ms\n${await logTail(logFile)}`);
        }
        await sleep(25);
      }
    },
    logTail: (lines) => logTail(logFile, lines),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (isAlive(pid)) await killTree(pid, 5_000);
      untrack(pid);
      await removeTempDir(dir);
    },
  };
}
