/**
 * The embedded dev sink (`mailstage dev-server`, `mailstage demo`): an SMTP or LMTP server on
 * smtp-server that takes everything — any AUTH (PLAIN, LOGIN, CRAM-MD5, any credentials), STARTTLS
 * with a freshly generated certificate, any sender and recipient — and stores each message as an
 * `.eml` file in its mailbox folder, with `Return-Path` and one `Delivered-To` per recipient added
 * on top as a delivery agent would. It keeps its own SIZE: a message over the advertised limit is
 * answered 552 and not stored. Messages stream to disk; none is ever held whole in memory.
 *
 * With `web`, the same process serves the inbox page and its JSON API on loopback (see web.ts).
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { localhostCertificate } from './cert.js';
import { decodeWords, fieldValues, parseHeaderFields } from './headers.js';
import { Mailbox, type MessageSource, type SkippedFile } from './mailbox.js';

/** What the sink advertises (EHLO SIZE) and enforces when no `size` is given: 50 MiB. */
export const DEFAULT_SIZE_LIMIT = 50 * 1024 * 1024;

export interface DevServerOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /** Where the `.eml` files go (created if missing). */
  readonly dir: string;
  /** Speak LMTP (LHLO, one reply per recipient) instead of SMTP. */
  readonly lmtp?: boolean;
  /** The SIZE advertised and enforced, in bytes (default 50 MiB). */
  readonly size?: number;
  /** Serve the web inbox on loopback: `{ port }` (0 = a free port). Off unless given. */
  readonly web?: { readonly port?: number } | false;
  /** Called once per stored message (the CLI prints a line). */
  readonly onMessage?: (stored: StoredMessage) => void;
  /** Called once per message refused for its size (the CLI prints a line). */
  readonly onRefused?: (refused: RefusedMessage) => void;
}

export interface StoredMessage {
  /** The inbox id (the file name without `.eml`). */
  readonly id: string;
  readonly file: string;
  readonly from: string;
  readonly to: readonly string[];
  /** Bytes of the message as received (without the trace headers the sink adds). */
  readonly size: number;
  readonly subject?: string;
  readonly secure: boolean;
  readonly user?: string;
}

export interface RefusedMessage {
  readonly from: string;
  readonly to: readonly string[];
  /** Bytes received before the sink stopped counting: more than `limit`. */
  readonly size: number;
  readonly limit: number;
}

export interface DevServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly lmtp: boolean;
  /** The SIZE limit in bytes. */
  readonly sizeLimit: number;
  /** `http://127.0.0.1:PORT/` when the web inbox runs. */
  readonly inboxUrl?: string;
  /** `.eml` files found in the folder on start that could not be indexed. */
  readonly skipped: readonly SkippedFile[];
  /** How many messages were stored since start. */
  count(): number;
  close(): Promise<void>;
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const { key, cert } = await localhostCertificate();
  const mailbox = await Mailbox.open(options.dir);
  const lmtp = options.lmtp ?? false;
  const sizeLimit = options.size ?? DEFAULT_SIZE_LIMIT;
  if (!Number.isSafeInteger(sizeLimit) || sizeLimit < 1) throw new RangeError(`size must be a positive integer, got ${sizeLimit}`);
  let stored = 0;

  const server = new SMTPServer({
    lmtp,
    key,
    cert,
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    size: sizeLimit,
    hideDSN: false,
    onAuth(auth, _session, cb) {
      cb(null, { user: auth.username ?? 'anonymous' });
    },
    onData(stream, session, cb) {
      const envelope = envelopeOf(session);
      mailbox.receive(stream as MessageSource, traceHeaders(envelope), sizeLimit).then(
        (result) => {
          if (result.kind === 'too-big') {
            options.onRefused?.({ ...envelope, size: result.messageBytes, limit: result.limit });
            // smtp-server answers 552 itself for a message over its `size`; this says the same in
            // case it did not count what the sink counted.
            cb(Object.assign(new Error(`5.3.4 Message too big: the limit is ${result.limit} bytes; not stored`), { responseCode: 552 }));
            return;
          }
          stored++;
          const { message, messageBytes, head } = result;
          options.onMessage?.({
            id: message.summary.id,
            file: message.file,
            ...envelope,
            size: messageBytes,
            subject: subjectOf(head),
            secure: session.secure,
            ...(typeof session.user === 'string' ? { user: session.user } : {}),
          });
          const text = `Ok: stored as ${message.summary.id}.eml`;
          // LMTP wants one answer per recipient.
          if (lmtp) (cb as unknown as (e: null, r: string[]) => void)(null, envelope.to.map(() => text));
          else cb(null, text);
        },
        (err: Error) => cb(Object.assign(new Error(`4.3.0 cannot store the message: ${err.message}`), { responseCode: 451 })),
      );
    },
  });
  server.on('error', () => { /* a client resetting its connection is not the sink's problem */ });
  const host = options.host ?? '127.0.0.1';
  await listen(server, options.port ?? 0, host);
  const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  const closeSmtp = (): Promise<void> => new Promise<void>((resolve) => server.close(() => resolve()));

  let inbox: { readonly url: string; close(): Promise<void> } | undefined;
  if (options.web) {
    try {
      const { startInbox } = await import('./web.js');
      inbox = await startInbox(mailbox, { port: options.web.port ?? 0, smtpUrl: `${lmtp ? 'lmtp' : 'smtp'}://${host}:${port}` });
    } catch (error) {
      await closeSmtp();
      throw error;
    }
  }
  return {
    host,
    port,
    dir: mailbox.dir,
    lmtp,
    sizeLimit,
    ...(inbox ? { inboxUrl: inbox.url } : {}),
    skipped: mailbox.skipped,
    count: () => stored,
    close: async () => {
      await Promise.all([closeSmtp(), inbox?.close()]);
    },
  };
}

/** Listens, turning EADDRINUSE and friends into a rejected promise (smtp-server would throw). */
async function listen(server: SMTPServer, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const net = (server as unknown as { server: NodeJS.EventEmitter }).server;
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is in use`, { cause: err }) : err);
    };
    net.once('error', onError);
    server.listen(port, host, () => {
      net.off('error', onError);
      resolve();
    });
  });
}

function envelopeOf(session: SMTPServerSession): { from: string; to: string[] } {
  return {
    from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
    to: session.envelope.rcptTo.map((r) => r.address),
  };
}

/** What a delivery agent puts on top: the envelope sender and one Delivered-To per recipient. */
function traceHeaders(envelope: { readonly from: string; readonly to: readonly string[] }): string {
  return `Return-Path: <${envelope.from}>\r\n${envelope.to.map((t) => `Delivered-To: ${t}\r\n`).join('')}`;
}

/** The Subject header, unfolded and decoded, for the log line. */
function subjectOf(head: Buffer): string | undefined {
  const subject = fieldValues(parseHeaderFields(head), 'subject')[0];
  return subject === undefined ? undefined : decodeWords(subject);
}
