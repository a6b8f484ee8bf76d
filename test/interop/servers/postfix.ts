/**
 * A private Postfix MTA on loopback, run from its own config/queue/data directories in a temp folder
 * (`postfix -c DIR start`), never touching /etc/postfix or port 25.
 *
 * Listeners (master.cf, all without chroot):
 *   port     plain smtpd, STARTTLS offered (smtpd_tls_security_level = may)
 *   tlsPort  implicit TLS (smtpd_tls_wrappermode = yes)
 * SASL via Dovecot (smtpd_sasl_type = dovecot, smtpd_sasl_path = inet:127.0.0.1:PORT): PLAIN,
 * LOGIN, CRAM-MD5 with DOVECOT_SASL_USER / DOVECOT_SASL_PASSWORD.
 *
 * Mail for any local part @example.test or @localhost is accepted and delivered by virtual(8) into
 * one Maildir (`deliveredMessages()`; the envelope recipient comes back from X-Original-To /
 * Delivered-To), except UNKNOWN_RECIPIENT (`550 5.1.1 … User unknown in virtual mailbox table`).
 * Any other domain: `554 5.7.1 … Relay access denied` — and every non-local transport is `error:`,
 * so nothing can ever leave the machine even if a restriction were wrong.
 *
 * DSN parameters can be checked end to end: with a local sender (x@example.test) and
 * `NOTIFY=SUCCESS`, Postfix delivers a success report (null sender, multipart/report) to that
 * sender's mailbox, carrying `Original-Envelope-Id:` (ENVID, xtext-decoded) and
 * `Original-Recipient:` (ORCPT) — see `deliveryReports()`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { serverCertificate, writeCertificateFiles, type ServerCertificate } from './certs.js';
import {
  accountIds,
  freePorts,
  groupId,
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
import { available as dovecotAvailable, DOVECOT_SASL_PASSWORD, DOVECOT_SASL_USER, startDovecot, type DovecotServer } from './dovecot.js';
import { readMaildir, type DeliveredMessage } from './maildir.js';

export const POSTFIX = '/usr/sbin/postfix';
const DAEMON_DIR = '/usr/lib/postfix/sbin';
const META_DIR = '/etc/postfix';
const SCRIPT = '/usr/bin/script';

export const POSTFIX_DOMAIN = 'example.test';
export const POSTFIX_HOSTNAME = 'mx.example.test';
/** Local domains: any local part is accepted, except the unknown user below. */
export const POSTFIX_DOMAINS = [POSTFIX_DOMAIN, 'localhost'] as const;
/** The one recipient Postfix refuses with 550 5.1.1 (for refused-recipient tests). */
export const UNKNOWN_USER = 'nosuchuser';
export const UNKNOWN_RECIPIENT = `${UNKNOWN_USER}@${POSTFIX_DOMAIN}`;
/** Default SIZE limit: large enough for the 50 MB body scenario. */
export const DEFAULT_MESSAGE_SIZE_LIMIT = 100 * 1024 * 1024;

export interface PostfixOptions {
  /** message_size_limit, advertised as `SIZE n`. Default 100 MiB. */
  messageSizeLimit?: number;
  /**
   * TLS certificate (PEM) for STARTTLS and the implicit-TLS port. Default: a generated
   * self-signed one for localhost/127.0.0.1 (`serverCertificate()`); its cert is returned as `ca`.
   */
  certificate?: Pick<ServerCertificate, 'cert' | 'key'>;
  /**
   * SASL: `'auto'` (default when Dovecot is usable) starts a private Dovecot owned by this Postfix
   * and stopped with it; pass a running Dovecot (or `{ authPort }`) to share one; `false` for no AUTH.
   */
  sasl?: 'auto' | false | Pick<DovecotServer, 'authPort'>;
  /** smtpd_tls_auth_only: offer AUTH only after STARTTLS. Default false (AUTH on plaintext too). */
  authOnlyWithTls?: boolean;
  /**
   * smtpd_forbid_bare_newline with no exclusions (loopback is in mynetworks, which the default
   * exclusion list would exempt). Default 'reject' so a client that lets bare LF through fails
   * loudly; 'normalize' and 'no' for other scenarios.
   */
  bareNewline?: 'reject' | 'normalize' | 'no';
  /** Extra or overriding main.cf parameters. */
  mainCf?: Record<string, string>;
  /** Milliseconds to wait for start-up. Default 20 000. */
  startTimeoutMs?: number;
}

export interface PostfixServer {
  readonly host: typeof LOOPBACK;
  /** Plain SMTP, STARTTLS offered. */
  readonly port: number;
  /** Implicit TLS (SMTPS-style wrapper mode). */
  readonly tlsPort: number;
  /** PEM to pass as `ca` to a verifying client (servername 'localhost' or host '127.0.0.1'). */
  readonly ca: string;
  /** Credentials that AUTH accepts, or undefined when SASL is off. */
  readonly auth: { readonly user: string; readonly password: string } | undefined;
  readonly messageSizeLimit: number;
  readonly domain: typeof POSTFIX_DOMAIN;
  readonly unknownRecipient: string;
  /** The Dovecot started for SASL (sasl: 'auto'), if any. */
  readonly dovecot: DovecotServer | undefined;
  readonly masterPid: number;
  readonly dir: string;
  readonly configDir: string;
  readonly logFile: string;
  /** Every message delivered so far, oldest first (one file per recipient). */
  deliveredMessages(): Promise<DeliveredMessage[]>;
  /** Delivered DSN/bounce reports (messages from the null sender `<>`). */
  deliveryReports(): Promise<DeliveredMessage[]>;
  /** Resolves when at least `count` messages have been delivered in total. */
  waitForDelivery(opts: { count: number; timeoutMs?: number }): Promise<DeliveredMessage[]>;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Postfix needs root: master binds as root and drops to the postfix user. */
export function available(): boolean {
  return (
    isRoot() &&
    isExecutable(POSTFIX) &&
    isExecutable(`${DAEMON_DIR}/master`) &&
    isExecutable(SCRIPT) &&
    accountIds('postfix') !== undefined &&
    groupId('postdrop') !== undefined
  );
}

export async function startPostfix(options: PostfixOptions = {}): Promise<PostfixServer> {
  if (!available()) throw new Error(`Postfix not usable: needs root, ${POSTFIX} and ${SCRIPT} (package postfix; run .ci/install-interop.sh)`);
  const saslOption = options.sasl ?? (dovecotAvailable() ? 'auto' : false);
  // Start our Dovecot first (and only once, outside the port retry) so smtpd finds its auth socket.
  const ownDovecot = saslOption === 'auto' ? await startDovecot() : undefined;
  const authPort = saslOption === false ? undefined : saslOption === 'auto' ? ownDovecot!.authPort : saslOption.authPort;
  try {
    return await withPortRetry(() => startOnce(options, authPort, ownDovecot));
  } catch (error) {
    await ownDovecot?.stop();
    throw error;
  }
}

async function startOnce(options: PostfixOptions, authPort: number | undefined, ownDovecot: DovecotServer | undefined): Promise<PostfixServer> {
  const dir = await makeTempDir('postfix');
  const configDir = path.join(dir, 'etc');
  const queueDir = path.join(dir, 'spool');
  const dataDir = path.join(dir, 'data');
  const mailBase = path.join(dir, 'mail');
  const logDir = path.join(dir, 'log');
  const logFile = path.join(logDir, 'maillog');
  const [port, tlsPort] = (await freePorts(2)) as [number, number];
  const certificate = options.certificate ?? (await serverCertificate());
  const messageSizeLimit = options.messageSizeLimit ?? DEFAULT_MESSAGE_SIZE_LIMIT;
  const nobody = accountIds('nobody') ?? { uid: 65534, gid: 65534 };
  const postfixIds = accountIds('postfix')!;

  await Promise.all([configDir, queueDir, mailBase, logDir].map((d) => mkdir(d, { recursive: true })));
  const { certFile, keyFile } = await writeCertificateFiles(certificate, configDir);
  // data_directory must be owned by the postfix user (else "fatal: … not owned by postfix").
  await mkdir(dataDir);
  await chown(dataDir, postfixIds.uid, postfixIds.gid);
  // virtual(8) writes as virtual_uid_maps (nobody) and creates the Maildir itself.
  await chown(mailBase, nobody.uid, nobody.gid);

  // Catch-all mailbox map: every address not matching the unknown user is found → Maildir "mail/".
  // regexp: (built in, no postmap needed, unlike hash:); matching is case-insensitive by default.
  await writeFile(path.join(configDir, 'vmailbox'), `!/^${UNKNOWN_USER}@/ mail/\n`);

  const bareNewline = options.bareNewline ?? 'reject';
  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: queueDir,
    data_directory: dataDir,
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    // Postfix logs only to syslog by default and there is no /dev/log in the sandbox: postlogd
    // writes this file instead, which must lie under maillog_file_prefixes.
    maillog_file: logFile,
    maillog_file_prefixes: dir,
    myhostname: POSTFIX_HOSTNAME,
    mydomain: POSTFIX_DOMAIN,
    myorigin: '$myhostname',
    // localhost must not be in both mydestination and virtual_mailbox_domains.
    mydestination: '',
    inet_interfaces: 'loopback-only',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    smtpd_banner: '$myhostname ESMTP Postfix (mailstage interop)',
    // Loopback clients count as "local" by default, and cleanup(8) then adds the missing
    // Message-Id/Date/From headers and rewrites header addresses: tests must see what the
    // client sent, so treat every client as remote (always_add_missing_headers stays no).
    local_header_rewrite_clients: '',
    biff: 'no',
    // No /etc/aliases lookups (the file may not exist; "No configuration" does not create it).
    alias_maps: '',
    alias_database: '',
    // Reverse DNS of 127.0.0.1 would go through the resolver: pointless and slow in a sandbox.
    smtpd_peername_lookup: 'no',
    // Local domains go to virtual(8); everything else is refused at RCPT and, as a second guard,
    // every other transport is error: so no test can make Postfix connect anywhere.
    virtual_mailbox_domains: POSTFIX_DOMAINS.join(', '),
    virtual_mailbox_base: mailBase,
    virtual_mailbox_maps: `regexp:${path.join(configDir, 'vmailbox')}`,
    virtual_uid_maps: `static:${nobody.uid}`,
    virtual_gid_maps: `static:${nobody.gid}`,
    virtual_minimum_uid: '100',
    virtual_mailbox_limit: '0',
    mailbox_size_limit: '0',
    local_transport: 'error:5.1.1 local delivery disabled in mailstage interop',
    default_transport: 'error:5.7.1 no delivery outside the loopback test domains',
    relay_transport: 'error:5.7.1 no relaying in mailstage interop',
    // reject_unauth_destination only: no permit_mynetworks/permit_sasl_authenticated, which would
    // let loopback or an authenticated client relay.
    smtpd_relay_restrictions: 'reject_unauth_destination',
    smtpd_recipient_restrictions: '',
    message_size_limit: String(messageSizeLimit),
    smtputf8_enable: 'yes',
    // Tests refuse recipients on purpose: the default 1 s error sleep would slow every such test.
    smtpd_error_sleep_time: '0',
    smtpd_soft_error_limit: '100',
    smtpd_hard_error_limit: '200',
    smtpd_junk_command_limit: '1000',
    // Flow control delays clients when the queue is busy: benchmarks would measure that sleep.
    in_flow_delay: '0',
    // The "100 messages on one connection" and pool scenarios exceed the default 50 per client.
    smtpd_client_connection_count_limit: '0',
    smtpd_client_message_rate_limit: '0',
    smtpd_forbid_bare_newline: bareNewline,
    smtpd_forbid_bare_newline_exclusions: '',
    smtpd_tls_cert_file: certFile,
    smtpd_tls_key_file: keyFile,
    smtpd_tls_security_level: 'may',
    smtpd_tls_auth_only: options.authOnlyWithTls ? 'yes' : 'no',
    smtpd_tls_received_header: 'yes',
    ...(authPort !== undefined
      ? {
          smtpd_sasl_auth_enable: 'yes',
          smtpd_sasl_type: 'dovecot',
          smtpd_sasl_path: `inet:${LOOPBACK}:${authPort}`,
          smtpd_sasl_security_options: 'noanonymous',
          smtpd_sasl_tls_security_options: 'noanonymous',
        }
      : { smtpd_sasl_auth_enable: 'no' }),
    ...options.mainCf,
  };
  await writeFile(path.join(configDir, 'main.cf'), Object.entries(main).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');

  // chroot "n" everywhere: a chroot would need copies of /etc/services, resolv.conf, the cert…
  // inside the queue directory. The -o overrides keep each listener's behaviour self-describing.
  const master = `# service type  private unpriv  chroot  wakeup  maxproc command + args
${LOOPBACK}:${port} inet n - n - - smtpd
${LOOPBACK}:${tlsPort} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;
  await writeFile(path.join(configDir, 'master.cf'), master);
  // `postfix` re-reads main.cf every 300 ms until the file is a couple of seconds old (it will
  // not start from a config that may still be being edited): ~2 s per start. Backdate the files.
  const past = new Date(Date.now() - 60_000);
  for (const file of ['main.cf', 'master.cf', 'vmailbox']) await utimes(path.join(configDir, file), past, past);

  // `postfix start` reports start-up errors only to syslog — or to stderr when stderr is a
  // terminal. There is no syslog here, so run it under script(1) for a pty and capture the text.
  const cmd = `${POSTFIX} -c ${configDir} start`;
  const pidFile = path.join(queueDir, 'pid', 'master.pid');
  const startLog = path.join(dir, 'postfix-start.out');
  const postfixStart = () => {
    // Output goes to script(1)'s typescript file, not to a pipe of ours: the master daemon
    // inherits the descriptors, and a pipe stays open until master closes them (spawnSync then
    // blocked ~2 s per start; a shell `| cat` hung for good).
    const result = spawnSync(SCRIPT, ['-qec', cmd, startLog], {
      timeout: options.startTimeoutMs ?? 20_000,
      stdio: 'ignore',
      // A private instance: MAIL_CONFIG from the caller's environment must not redirect it.
      env: { ...process.env, MAIL_CONFIG: configDir },
    });
    let output = '';
    try {
      output = readFileSync(startLog, 'utf8')
        .replace(/\r/g, '')
        .split('\n')
        .filter((line) => !/^Script (started|done) on /.test(line))
        .join('\n');
    } catch {
      // script did not run at all; result.error says why
    }
    return { result, output };
  };
  // The full start-up check (post-install create-missing) forks postconf ~20 times: ~2 s here.
  // Creating the queue directories ourselves from postfix-files and dropping a `quick-start` file
  // skips it. If that fast path fails for any reason, fall back to the full check.
  let fast = await prepareQueueDirectory(queueDir);
  let { result: started, output: startOutput } = postfixStart();
  let masterPid = await readPid(pidFile);
  if (fast && !(started.status === 0 && masterPid !== undefined && isAlive(masterPid))) {
    fast = false;
    ({ result: started, output: startOutput } = postfixStart());
    masterPid = await readPid(pidFile);
  }
  if (masterPid !== undefined) track(masterPid, 'postfix master', dir);

  const fail = async (why: string): Promise<never> => {
    if (masterPid !== undefined) {
      await killTree(masterPid, 3_000);
      untrack(masterPid);
    }
    const tail = await logTail(logFile);
    await removeTempDir(dir);
    throw new Error(`Postfix failed to start (${cmd}): ${why}\n--- postfix start output ---\n${startOutput.trim() || '(none)'}\n--- ${logFile} ---\n${tail}`);
  };
  if (started.error) return fail(started.error.message);
  if (started.status !== 0) return fail(`exit status ${started.status ?? started.signal}`);
  if (masterPid === undefined) return fail(`no ${pidFile}`);
  try {
    await waitForPorts([port, tlsPort], {
      timeoutMs: options.startTimeoutMs ?? 20_000,
      check: () => {
        if (!isAlive(masterPid)) throw new Error('master exited');
      },
    });
  } catch (error) {
    return fail((error as Error).message);
  }

  const deliveryDir = path.join(mailBase, 'mail');
  const deliveredMessages = () => readMaildir(deliveryDir);
  let stopped = false;
  return {
    host: LOOPBACK,
    port,
    tlsPort,
    ca: certificate.cert,
    auth: authPort !== undefined ? { user: DOVECOT_SASL_USER, password: DOVECOT_SASL_PASSWORD } : undefined,
    messageSizeLimit,
    domain: POSTFIX_DOMAIN,
    unknownRecipient: UNKNOWN_RECIPIENT,
    dovecot: ownDovecot,
    masterPid,
    dir,
    configDir,
    logFile,
    deliveredMessages,
    deliveryReports: async () => (await deliveredMessages()).filter((m) => m.sender === ''),
    async waitForDelivery({ count, timeoutMs = 15_000 }) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const messages = await deliveredMessages();
        if (messages.length >= count) return messages;
        if (Date.now() > deadline) {
          throw new Error(`Postfix delivered ${messages.length} of ${count} messages in ${timeoutMs} ms\n--- ${logFile} ---\n${await logTail(logFile)}`);
        }
        await sleep(25);
      }
    },
    logTail: (lines) => logTail(logFile, lines),
    async stop() {
      if (stopped) return;
      stopped = true;
      // SIGTERM to master = `postfix stop` without the script: master signals its process group
      // (all smtpd/qmgr/… children) and exits. killTree waits for every one of them.
      if (isAlive(masterPid)) await killTree(masterPid, 5_000);
      untrack(masterPid);
      await ownDovecot?.stop();
      await removeTempDir(dir);
    },
  };
}

/**
 * Creates queue_directory's subdirectories as postfix-files (Debian: /etc/postfix/postfix-files)
 * describes them, then marks the queue for a quick start. Returns false (and changes nothing that
 * the full check would not redo) when postfix-files cannot be read.
 */
async function prepareQueueDirectory(queueDir: string): Promise<boolean> {
  let spec: string;
  try {
    spec = await readFile(path.join(META_DIR, 'postfix-files'), 'utf8');
  } catch {
    return false;
  }
  const owner = accountIds('postfix');
  const setgid = groupId('postdrop');
  if (!owner || setgid === undefined) return false;
  try {
    for (const line of spec.split('\n')) {
      // $queue_directory/active:d:$mail_owner:-:700:ucr
      const m = /^\$queue_directory\/([a-z]+):d:([^:]+):([^:]+):([0-7]+):/.exec(line);
      if (!m) continue;
      const dir = path.join(queueDir, m[1]!);
      await mkdir(dir, { recursive: true });
      const uid = m[2] === '$mail_owner' ? owner.uid : 0;
      const gid = m[3] === '$setgid_group' ? setgid : 0;
      await chown(dir, uid, gid);
      await chmod(dir, parseInt(m[4]!, 8));
    }
    // postfix-script: "if [ -f $queue_directory/quick-start ]" → skip check-fatal/check-warn.
    await writeFile(path.join(queueDir, 'quick-start'), '');
    return true;
  } catch {
    return false;
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
