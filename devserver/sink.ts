/**
 * The embedded dev sink (`mailstage dev-server`, `mailstage demo`): an SMTP or LMTP server on
 * smtp-server that takes everything — any AUTH (PLAIN, LOGIN, CRAM-MD5, any credentials), STARTTLS
 * with a freshly generated certificate, any sender and recipient — and stores each message as an
 * `.eml` file, with `Return-Path` and `Delivered-To` added on top as a delivery agent would.
 */
import { promises as fsp } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import libmime from 'libmime';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { localhostCertificate } from './cert.js';

export interface DevServerOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /** Where the `.eml` files go (created if missing). */
  readonly dir: string;
  /** Speak LMTP (LHLO, one reply per recipient) instead of SMTP. */
  readonly lmtp?: boolean;
  /** Called once per stored message (the CLI prints a line). */
  readonly onMessage?: (stored: StoredMessage) => void;
}

export interface StoredMessage {
  readonly file: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly size: number;
  readonly subject?: string;
  readonly secure: boolean;
  readonly user?: string;
}

export interface DevServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly lmtp: boolean;
  /** How many messages were stored so far. */
  count(): number;
  close(): Promise<void>;
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const { key, cert } = await localhostCertificate();
  const dir = path.resolve(options.dir);
  await fsp.mkdir(dir, { recursive: true });
  const lmtp = options.lmtp ?? false;
  let stored = 0;
  // Names sort in arrival order and stay unique across restarts in the same folder.
  const prefix = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');

  const server = new SMTPServer({
    lmtp,
    key,
    cert,
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    size: 50 * 1024 * 1024,
    hideDSN: false,
    onAuth(auth, _session, cb) {
      cb(null, { user: auth.username ?? 'anonymous' });
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (err) => cb(err));
      stream.on('end', () => {
        const seq = ++stored;
        store(dir, `${prefix}-${String(seq).padStart(6, '0')}.eml`, session, Buffer.concat(chunks))
          .then((message) => {
            options.onMessage?.(message);
            const text = `Ok: stored as ${path.basename(message.file)}`;
            // LMTP wants one answer per recipient.
            if (lmtp) (cb as unknown as (e: null, r: string[]) => void)(null, message.to.map(() => text));
            else cb(null, text);
          })
          .catch((err: Error) => cb(Object.assign(new Error(`cannot store the message: ${err.message}`), { responseCode: 451 })));
      });
    },
  });
  server.on('error', () => { /* a client resetting its connection is not the sink's problem */ });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    const net = (server as unknown as { server: NodeJS.EventEmitter }).server;
    net.once('error', onError);
    server.listen(options.port ?? 0, host, () => {
      net.off('error', onError);
      resolve();
    });
  });
  const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  return {
    host,
    port,
    dir,
    lmtp,
    count: () => stored,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function store(dir: string, name: string, session: SMTPServerSession, data: Buffer): Promise<StoredMessage> {
  const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
  const to = session.envelope.rcptTo.map((r) => r.address);
  const trace = `Return-Path: <${from}>\r\nDelivered-To: ${to.join(', ')}\r\n`;
  const file = path.join(dir, name);
  await fsp.writeFile(file, Buffer.concat([Buffer.from(trace), data]));
  return {
    file,
    from,
    to,
    size: data.length,
    subject: subjectOf(data),
    secure: session.secure,
    ...(typeof session.user === 'string' ? { user: session.user } : {}),
  };
}

/** The Subject header, unfolded and decoded, for the log line. */
function subjectOf(data: Buffer): string | undefined {
  const head = data.subarray(0, Math.min(data.length, 64 * 1024)).toString('utf8');
  const end = head.search(/\r?\n\r?\n/);
  const match = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(end < 0 ? head : head.slice(0, end));
  const raw = match?.[1]?.replace(/\r?\n[ \t]+/g, ' ');
  if (raw === undefined) return undefined;
  try {
    return libmime.decodeWords(raw);
  } catch {
    return raw;
  }
}
